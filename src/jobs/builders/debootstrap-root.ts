// Root filesystems from a debootstrap recipe: debootstrap into the work directory (downloaded packages
// kept in a cache shared by the worker's builds), then the recipe's post-install script in a chroot with
// /proc mounted in a private mount namespace (gone when the script ends, whatever happens) and services
// kept from starting. What debootstrap copies from the build host (hostname, resolv.conf) is reset.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DebootstrapSpec } from '../../core/recipes/debootstrap-spec.js';
import type { Arch } from '../../core/types.js';
import { runTool, type BuildContext } from './build-tools.js';
import { resolveInRoot } from './root-path.js';

const DEBIAN_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64' };

// Runs the script as root in the new root, with a clean environment and /proc mounted; the mount
// lives in this command's own mount namespace, so no stop can leave it behind.
const POST_INSTALL = [
  'set -e',
  'mount -t proc proc "$1/proc"',
  'exec chroot "$1" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive INITRD="$2" /bin/sh -e /tmp/kiln-post-install.sh',
].join('\n');

const POLICY_RC = '#!/bin/sh\n# Kiln image build: no services start while packages are installed.\nexit 101\n';

export interface DebootstrapOptions {
  spec: DebootstrapSpec;
  arch: Arch;
  root: string;
  /** Package cache shared between builds (debootstrap --cache-dir); null: none. */
  cacheDir: string | null;
  /** false: the kernel packages make no initrd of their own (INITRD=No); the build generates one. */
  imageInitrd: boolean;
}

export async function buildDebootstrapRoot(ctx: BuildContext, o: DebootstrapOptions): Promise<void> {
  const { spec } = o;
  const include = [...new Set([...spec.packages, ...(spec.kernelPackage !== null ? [spec.kernelPackage] : [])])];
  const args = [`--arch=${DEBIAN_ARCH[o.arch]}`, `--components=${spec.components.join(',')}`];
  if (spec.variant !== 'default') args.push(`--variant=${spec.variant}`);
  if (include.length > 0) args.push(`--include=${include.join(',')}`);
  if (spec.exclude.length > 0) args.push(`--exclude=${spec.exclude.join(',')}`);
  const env = { INITRD: o.imageInitrd ? 'Yes' : 'No', DEBIAN_FRONTEND: 'noninteractive' };
  if (o.cacheDir !== null) {
    const cache = join(o.cacheDir, 'debootstrap', DEBIAN_ARCH[o.arch]);
    await mkdir(cache, { recursive: true, mode: 0o700 });
    // One debootstrap at a time writes the cache (it keeps partial downloads there); flock waits for the other.
    await runTool(ctx, 'flock', [join(cache, '.lock'), 'debootstrap', ...args, `--cache-dir=${cache}`, spec.suite, o.root, spec.mirror], { env });
  } else {
    await runTool(ctx, 'debootstrap', [...args, spec.suite, o.root, spec.mirror], { env });
  }
  ctx.progress(50);

  // Looked up inside the root: the script may have made them links (to /run/..., say).
  const files = async () => Promise.all(['etc/hostname', 'etc/resolv.conf'].map(async (f) => {
    const path = await resolveInRoot(o.root, f);
    return { path, text: await readFile(path, 'utf8').catch(() => null) };
  }));
  const hostCopies = await files();
  if (spec.postInstall.trim() !== '') {
    const policy = join(o.root, 'usr/sbin/policy-rc.d');
    await writeFile(policy, POLICY_RC, { mode: 0o755 });
    await writeFile(join(o.root, 'tmp/kiln-post-install.sh'), spec.postInstall, { mode: 0o700 });
    try {
      ctx.log.line('[build] running the recipe\'s postInstall script in the new root');
      await runTool(ctx, 'unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', POST_INSTALL, 'kiln-post-install', o.root, env.INITRD], { env });
    } finally {
      await rm(policy, { force: true });
      await rm(join(o.root, 'tmp/kiln-post-install.sh'), { force: true });
    }
  }
  // The image is not the build host: its hostname and resolver come from where it boots.
  const [hostname, resolv] = await files();
  if (hostname!.text !== null && hostname!.text === hostCopies[0]!.text) await writeFile(hostname!.path, 'localhost\n');
  if (resolv!.text !== null && resolv!.text === hostCopies[1]!.text) await rm(resolv!.path, { force: true });
  // apt-get clean: the downloaded .debs are in the cache, not needed in the image.
  await runTool(ctx, 'find', [join(o.root, 'var/cache/apt/archives'), '-maxdepth', '2', '-type', 'f', '-name', '*.deb', '-delete'], { quiet: true, okExitCodes: [0, 1] });
}
