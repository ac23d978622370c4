// What `kiln demo` needs on this host, and the Debian packages that provide it.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { findTestKernel } from './build-boot-image.js';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

function onPath(name: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).concat(['/usr/sbin', '/sbin']).some((d) => existsSync(join(d, name)));
}

/** Missing prerequisites as `what (package)` lines; empty when the demo can run. */
export function missingForDemo(firmware: 'bios' | 'uefi'): { what: string; pkg: string }[] {
  const checks: { what: string; pkg: string; ok: boolean }[] = [
    { what: 'qemu-system-x86_64', pkg: 'qemu-system-x86', ok: onPath('qemu-system-x86_64') },
    { what: "QEMU's iPXE network boot ROM", pkg: 'ipxe-qemu', ok: existsSync('/usr/lib/ipxe/qemu/efi-virtio.rom') || existsSync('/usr/share/qemu/pxe-virtio.rom') },
    { what: 'a Debian kernel in /boot with its modules', pkg: 'linux-image-amd64', ok: findTestKernel() !== null },
    { what: 'a static busybox (/bin/busybox)', pkg: 'busybox-static', ok: existsSync('/bin/busybox') },
    { what: 'cpio', pkg: 'cpio', ok: onPath('cpio') },
    { what: 'mksquashfs', pkg: 'squashfs-tools', ok: onPath('mksquashfs') },
  ];
  if (firmware === 'uefi') checks.push({ what: OVMF_CODE, pkg: 'ovmf', ok: existsSync(OVMF_CODE) });
  return checks.filter((c) => !c.ok).map(({ what, pkg }) => ({ what, pkg }));
}
