// What the end-to-end suite needs from the host, and the skip-or-fail decision: locally a missing piece
// skips with the Debian package to install; in CI (CI set, packages installed by ensure-ready) it fails.
import { accessSync, constants, closeSync, existsSync, openSync, readSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { findTestKernel } from '../../../src/demo/build-boot-image.js';

import { OVMF_CODE, OVMF_VARS } from '../../../src/demo/demo-prerequisites.js';

export { OVMF_CODE, OVMF_VARS };
export const BUSYBOX = '/bin/busybox';
export const IPXE_DIR = '/usr/lib/ipxe';

interface Requirement {
  what: string;
  /** Debian package that provides it, or null for things no package fixes (root). */
  pkg: string | null;
  ok: () => boolean;
}

export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** A dynamically linked busybox cannot run in the initramfs (no libc there); Debian's busybox-static is static. */
export function isStaticElf(path: string): boolean {
  if (!existsSync(path)) return false;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF64 only
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    closeSync(fd);
  }
}

const exe = (name: string, pkg: string): Requirement => ({ what: `${name} on PATH`, pkg, ok: () => findExecutable(name) !== null });
const file = (path: string, pkg: string): Requirement => ({ what: path, pkg, ok: () => existsSync(path) });

/** Everything a QEMU netboot over slirp needs (cases BIOS, UEFI, live image, next boot). */
const VM: Requirement[] = [
  { what: 'root (loop devices, image building)', pkg: null, ok: () => process.getuid?.() === 0 },
  exe('qemu-system-x86_64', 'qemu-system-x86'),
  file(join(IPXE_DIR, 'qemu', 'pxe-virtio.rom'), 'ipxe-qemu'),
  file(join(IPXE_DIR, 'qemu', 'efi-virtio.rom'), 'ipxe-qemu'),
  file(OVMF_CODE, 'ovmf'),
  file(OVMF_VARS, 'ovmf'),
  { what: 'a Debian kernel in /boot with its modules in /lib/modules', pkg: 'linux-image-amd64', ok: () => findTestKernel() !== null },
  { what: `a statically linked ${BUSYBOX}`, pkg: 'busybox-static', ok: () => isStaticElf(BUSYBOX) },
  exe('cpio', 'cpio'),
  exe('mksquashfs', 'squashfs-tools'),
];

/** The network-namespace lab adds taps, a plain DHCP server and the PXE boot binaries. */
const LAB: Requirement[] = [
  ...VM,
  file('/dev/net/tun', 'a kernel with TUN/TAP'),
  exe('ip', 'iproute2'),
  exe('dnsmasq', 'dnsmasq-base'),
  file(join(IPXE_DIR, 'snponly.efi'), 'ipxe'),
  file(join(IPXE_DIR, 'undionly.kpxe'), 'ipxe'),
];

export type E2eNeeds = 'vm' | 'lab';

/** Why these e2e tests cannot run here (with the Debian packages to install), or null. */
export function e2eUnavailableReason(needs: E2eNeeds): string | null {
  const missing = (needs === 'lab' ? LAB : VM).filter((r) => !r.ok());
  if (missing.length === 0) return null;
  const pkgs = [...new Set(missing.map((r) => r.pkg).filter((p): p is string => p !== null))];
  const what = missing.map((r) => r.what).join('; ');
  return `missing ${what}${pkgs.length > 0 ? ` (apt-get install ${pkgs.join(' ')})` : ''}`;
}

export function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false';
}

/**
 * Gate for a describe block: `{ skip, title }`. Locally a missing prerequisite skips the block and says
 * why in its title and on stderr; in CI it throws, so the e2e suite can never pass by not running.
 */
export function e2eGate(needs: E2eNeeds, title: string): { skip: boolean; title: string } {
  const reason = e2eUnavailableReason(needs);
  if (reason === null) return { skip: false, title };
  if (isCi()) throw new Error(`CI must run the end-to-end tests (${title}), but: ${reason}`);
  process.stderr.write(`\n  e2e "${title}" skipped: ${reason}\n\n`);
  return { skip: true, title: `${title} (skipped: ${reason})` };
}
