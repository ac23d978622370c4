// Paths inside a root filesystem being built, resolved as the image will see them: symlinks are
// followed within the root (an absolute target starts again at the root, `..` stops at it), never
// out to the build host. Archives are untrusted; `/boot/vmlinuz -> /etc/shadow` must not pick up
// the host's file.
import { lstat, readlink } from 'node:fs/promises';
import { join, sep } from 'node:path';

const MAX_LINKS = 40;

/**
 * The host path of `path` inside `root` (an absolute, real directory). Components that do not exist
 * are taken literally; with `followLast` false a final symlink is returned as itself.
 */
export async function resolveInRoot(root: string, path: string, followLast = true): Promise<string> {
  const queue = path.split('/').filter((p) => p !== '' && p !== '.');
  let cur: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '..') {
      cur.pop();
      continue;
    }
    const candidate = join(root, ...cur, part);
    const st = await lstat(candidate).catch(() => null);
    if (st !== null && st.isSymbolicLink() && (queue.length > 0 || followLast)) {
      if (++hops > MAX_LINKS) throw new Error(`too many levels of symbolic links resolving /${path} in the image`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) cur = [];
      queue.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    cur.push(part);
  }
  return join(root, ...cur);
}

/** `hostPath` relative to `root` as the image sees it (`/usr/lib/x`), or null when outside. */
export function inRootPath(root: string, hostPath: string): string | null {
  if (hostPath === root) return '/';
  if (!hostPath.startsWith(root + sep)) return null;
  return hostPath.slice(root.length);
}
