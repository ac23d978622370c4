// Finds what boots a root filesystem: its kernel (Debian /boot/vmlinuz-<v>, Fedora and Arch
// /usr/lib/modules/<v>/vmlinuz, a bare /boot/vmlinuz), the modules that match it, and its own initrd.
// Everything is looked up inside the root (root-path.ts), and a kernel must look like one.
import { open, readdir, stat } from 'node:fs/promises';
import { KilnError } from '../../core/kiln-error.js';
import type { Arch } from '../../core/types.js';
import { resolveInRoot } from './root-path.js';

export interface BootFiles {
  /** Host path of the kernel (inside the root). */
  kernel: string;
  /** The kernel's release (`6.1.0-50-amd64`), from its file name or its header. */
  release: string;
  /** Host path of /lib/modules/<release>, or null when the image has no modules for it. */
  modulesDir: string | null;
  /** Host path of the image's own initrd for this kernel, or null. */
  initrd: string | null;
}

const byRelease = (a: string, b: string) => b.localeCompare(a, undefined, { numeric: true });

async function isFile(path: string): Promise<boolean> {
  const s = await stat(path).catch(() => null);
  return s !== null && s.isFile();
}

async function readHead(path: string, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** True when the file starts like a kernel the firmware or iPXE can boot for `arch`. */
export async function looksLikeKernel(path: string, arch: Arch): Promise<boolean> {
  const head = await readHead(path, 1024).catch(() => Buffer.alloc(0));
  if (arch === 'x86_64') return head.length >= 0x206 && head.toString('latin1', 0x202, 0x206) === 'HdrS'; // bzImage setup header
  // arm64 Image ("ARM\x64" at 0x38) or an EFI zboot/PE image ("MZ").
  return (head.length >= 0x3c && head.readUInt32LE(0x38) === 0x644d5241) || head.toString('latin1', 0, 2) === 'MZ';
}

/** The release string a bzImage carries in its setup header (`kernel_version`), or null. */
export async function bzImageRelease(path: string): Promise<string | null> {
  const head = await readHead(path, 0x4000).catch(() => Buffer.alloc(0));
  if (head.length < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
  const ptr = head.readUInt16LE(0x20e);
  if (ptr === 0) return null;
  const at = ptr + 0x200;
  if (at >= head.length) return null;
  const end = head.indexOf(0, at);
  const text = head.toString('latin1', at, end === -1 ? Math.min(head.length, at + 256) : end);
  const release = text.split(' ')[0] ?? '';
  return /^[A-Za-z0-9._+-]{1,128}$/.test(release) ? release : null;
}

async function moduleReleases(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const dir of ['lib/modules', 'usr/lib/modules']) {
    const host = await resolveInRoot(root, dir);
    const names = await readdir(host).catch(() => [] as string[]);
    for (const n of names) {
      if (out.has(n) || !/^[A-Za-z0-9._+-]{1,128}$/.test(n)) continue;
      const d = await resolveInRoot(root, `${dir}/${n}`);
      if ((await stat(d).catch(() => null))?.isDirectory() === true) out.set(n, d);
    }
  }
  return out;
}

async function firstFile(root: string, candidates: readonly string[]): Promise<string | null> {
  for (const c of candidates) {
    const p = await resolveInRoot(root, c);
    if (await isFile(p)) return p;
  }
  return null;
}

/** The newest bootable kernel of the root with its modules and initrd; KILN_BUILD_NO_KERNEL when there is none. */
export async function findBootFiles(root: string, arch: Arch): Promise<BootFiles> {
  const modules = await moduleReleases(root);
  const initrdFor = (v: string) => firstFile(root, [`boot/initrd.img-${v}`, `boot/initramfs-${v}.img`, `boot/initrd-${v}`, `usr/lib/modules/${v}/initramfs.img`, `lib/modules/${v}/initrd`]);
  // Kernels with modules first: that is what a package manager installs.
  for (const release of [...modules.keys()].sort(byRelease)) {
    const kernel = await firstFile(root, [`boot/vmlinuz-${release}`, `usr/lib/modules/${release}/vmlinuz`, `lib/modules/${release}/vmlinuz`, `boot/Image-${release}`]);
    if (kernel !== null && (await looksLikeKernel(kernel, arch))) return { kernel, release, modulesDir: modules.get(release)!, initrd: await initrdFor(release) };
  }
  // A kernel dropped into /boot by hand (a rootfs archive): any vmlinuz-*, else vmlinuz / bzImage.
  const bootNames = (await readdir(await resolveInRoot(root, 'boot')).catch(() => [] as string[])).filter((n) => n.startsWith('vmlinuz-')).sort((a, b) => byRelease(a.slice(8), b.slice(8)));
  for (const name of [...bootNames, 'vmlinuz', 'bzImage', 'Image']) {
    const kernel = await firstFile(root, [`boot/${name}`]);
    if (kernel === null || !(await looksLikeKernel(kernel, arch))) continue;
    const release = name.startsWith('vmlinuz-') ? name.slice(8) : ((arch === 'x86_64' ? await bzImageRelease(kernel) : null) ?? 'unknown');
    return { kernel, release, modulesDir: modules.get(release) ?? null, initrd: await initrdFor(release) };
  }
  throw new KilnError(
    'KILN_BUILD_NO_KERNEL',
    `the root filesystem has no ${arch} kernel: nothing bootable at /boot/vmlinuz-<release>, /usr/lib/modules/<release>/vmlinuz or /boot/vmlinuz (debootstrap recipes get one from kernelPackage; archives must contain it)`,
  );
}
