// One QEMU (software emulation) guest that network-boots from a Kiln over QEMU's user networking,
// its serial console streamed to the caller. User networking needs no root and no bridge.
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OVMF_CODE, OVMF_VARS } from './demo-prerequisites.js';

export interface DemoVm {
  /** Resolves with QEMU's exit code when the guest powers off (or is stopped). */
  exited: Promise<number | null>;
  stop(): void;
}

export async function startDemoVm(o: { mac: string; bootUrl: string; firmware: 'bios' | 'uefi'; kvm: boolean; onSerial: (chunk: Buffer) => void }): Promise<DemoVm> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-demo-vm-'));
  // Software emulation by default: it works everywhere (some nested-virtualisation KVMs hang iPXE).
  const args = ['-accel', o.kvm ? 'kvm' : 'tcg', '-m', '512', '-smp', '1', '-nographic', '-monitor', 'none', '-no-reboot', '-serial', 'stdio'];
  if (o.firmware === 'uefi') {
    await copyFile(OVMF_VARS, join(dir, 'vars.fd'));
    args.push('-machine', 'q35', '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${join(dir, 'vars.fd')}`);
  }
  // QEMU's DHCP hands the firmware's iPXE this URL: Kiln's chain script, which asks for the MAC's own.
  args.push('-netdev', `user,id=n0,bootfile=${o.bootUrl}`, '-device', `virtio-net-pci,netdev=n0,mac=${o.mac}`, '-boot', 'n');
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', o.onSerial);
  child.stderr.on('data', o.onSerial);
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code));
  }).finally(() => rm(dir, { recursive: true, force: true }));
  return { exited, stop: () => child.kill('SIGTERM') };
}
