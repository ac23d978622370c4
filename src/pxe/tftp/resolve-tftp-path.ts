// Maps a requested TFTP file name into the server root. Rules: backslashes are separators (Windows-style
// clients send `boot\x64\pxe.com`); a leading `/` is dropped, so `/undionly.kpxe` and `undionly.kpxe`
// are the same file under the root; any `..` segment is refused outright, even one that would stay inside;
// and the real path (symlinks resolved) must still lie under the root's real path.
import { realpath } from 'node:fs/promises';
import path from 'node:path';

/** Returns the root-relative path (`a/b.efi`), or null for a name that is refused before touching the disk. */
export function normalizeTftpPath(requested: string): string | null {
  // Control characters are never part of a boot file name and only make logs and paths misleading.
  for (let i = 0; i < requested.length; i++) {
    const c = requested.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return null;
  }
  const segments = requested.replaceAll('\\', '/').split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0 || segments.includes('..')) return null;
  return segments.join('/');
}

export type ResolvedTftpPath = { kind: 'file'; path: string } | { kind: 'not-found' } | { kind: 'denied'; reason: string };

/**
 * `rootReal` must already be a real path (see realpath at server start). Symlinks inside the root that
 * point outside it are refused: e.g. Debian's /usr/lib/ipxe/ipxe.efi links to /boot, so copy such files in.
 */
export async function resolveTftpPath(rootReal: string, relative: string): Promise<ResolvedTftpPath> {
  let real: string;
  try {
    real = await realpath(path.join(rootReal, relative));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'not-found' };
    return { kind: 'denied', reason: code ?? 'unreadable' };
  }
  const prefix = rootReal.endsWith(path.sep) ? rootReal : rootReal + path.sep;
  if (!real.startsWith(prefix)) return { kind: 'denied', reason: 'resolves outside the root' };
  return { kind: 'file', path: real };
}
