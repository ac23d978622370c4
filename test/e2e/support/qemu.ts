// Boots one QEMU (TCG) guest from the network and waits for it to power off, keeping its serial console in
// a log file. KVM does not work on the development VMs (kvm-pvm), so this is always TCG.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OVMF_CODE, OVMF_VARS } from './e2e-prerequisites.js';
import { alive } from './process-alive.js';

export type Firmware = 'bios' | 'uefi';

export interface VmOptions {
  /** Names the serial log (`<name>-<mac>.serial.log`). */
  name: string;
  firmware: Firmware;
  mac: string;
  /** slirp with a DHCP boot file (Kiln on host loopback is 10.0.2.2 to the guest), or a tap inside a namespace. */
  net: { kind: 'user'; bootfile: string } | { kind: 'tap'; netns: string; tap: string };
  nic?: 'virtio-net-pci' | 'e1000';
  /** false strips the NIC's iPXE option ROM, so the firmware's own PXE stack boots (OVMF native PXE). */
  ipxeRom?: boolean;
  memoryMiB?: number;
  /** From QEMU's start; a failed boot ends sooner (kernel panic=1 with -no-reboot). */
  timeoutMs?: number;
}

export interface VmRun {
  name: string;
  mac: string;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  serialLog: string;
  serial: string;
  qemuStderr: string;
}

export const DEFAULT_BOOT_TIMEOUT_MS = 90_000;
/** The lab measured three parallel TCG guests on two cores as the sweet spot; more only slows each one. */
const MAX_PARALLEL_VMS = 3;
const SLOT_DIR = join(tmpdir(), 'kiln-e2e-vm-slots');

export const ARTIFACTS_DIR = fileURLToPath(new URL('../.artifacts/', import.meta.url));

export function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}


/** A machine-wide slot (test files run in parallel workers): lock files holding the owner's pid. */
async function acquireVmSlot(): Promise<() => Promise<void>> {
  await mkdir(SLOT_DIR, { recursive: true });
  for (;;) {
    for (let i = 0; i < MAX_PARALLEL_VMS; i++) {
      const file = join(SLOT_DIR, `slot-${i}`);
      const token = `${process.pid} ${randomBytes(6).toString('hex')}`;
      try {
        await writeFile(file, token, { flag: 'wx' });
        return async () => {
          if ((await readFile(file, 'utf8').catch(() => '')) === token) await unlink(file).catch(() => undefined);
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number((await readFile(file, 'utf8').catch(() => '')).split(' ')[0]);
        // A worker that was killed mid-boot leaves its slot behind.
        if (Number.isInteger(owner) && owner > 0 && !alive(owner)) await unlink(file).catch(() => undefined);
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Old runs' serial logs go after a day; the current run's stay for reading. */
async function pruneArtifacts(): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const f of await readdir(ARTIFACTS_DIR).catch(() => [])) {
    const p = join(ARTIFACTS_DIR, f);
    const s = await stat(p).catch(() => null);
    if (s !== null && s.isFile() && s.mtimeMs < dayAgo) await rm(p, { force: true });
  }
}

function qemuArgs(o: VmOptions, serialLog: string, varsFile: string | null): string[] {
  const args = ['-accel', 'tcg', '-m', String(o.memoryMiB ?? 512), '-smp', '1', '-nographic', '-monitor', 'none', '-no-reboot'];
  // -nographic plus a serial chardev keeps firmware and iPXE text in the log; -display none would lose it.
  args.push('-chardev', `file,id=ser0,path=${serialLog}`, '-serial', 'chardev:ser0');
  if (o.firmware === 'uefi') {
    args.push('-machine', 'q35', '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${varsFile}`);
  }
  if (o.net.kind === 'user') args.push('-netdev', `user,id=n0,bootfile=${o.net.bootfile}`);
  else args.push('-netdev', `tap,id=n0,ifname=${o.net.tap},script=no,downscript=no`);
  args.push('-device', `${o.nic ?? 'virtio-net-pci'},netdev=n0,mac=${o.mac}${o.ipxeRom === false ? ',romfile=' : ''}`, '-boot', 'n');
  return args;
}

/** Boots the guest and resolves when QEMU exits (the test image powers off after its callback) or times out. */
export async function bootVm(o: VmOptions): Promise<VmRun> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  await pruneArtifacts();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const serialLog = join(ARTIFACTS_DIR, `${o.name}-${o.mac.replace(/:/g, '')}-${stamp}.serial.log`);
  const varsFile = o.firmware === 'uefi' ? join(tmpdir(), `kiln-e2e-ovmf-vars-${process.pid}-${randomBytes(4).toString('hex')}.fd`) : null;
  const release = await acquireVmSlot();
  try {
    if (varsFile !== null) await copyFile(OVMF_VARS, varsFile);
    const args = qemuArgs(o, serialLog, varsFile);
    const timeoutMs = o.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
    // coreutils timeout is a watchdog that outlives this worker: a killed test run cannot leave a guest
    // looping in iPXE. It passes our SIGTERM on to QEMU. `ip netns exec` execs it in place.
    const guarded = ['timeout', '--kill-after=5', String(Math.ceil(timeoutMs / 1000) + 15), 'qemu-system-x86_64', ...args];
    const [cmd, argv] = o.net.kind === 'tap' ? ['ip', ['netns', 'exec', o.net.netns, ...guarded]] : [guarded[0]!, guarded.slice(1)];
    const started = Date.now();
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuStderr = '';
    child.stderr.on('data', (d: Buffer) => (qemuStderr += d.toString()));
    let timedOut = false;
    const exitCode = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
      }, timeoutMs);
      child.on('error', (err) => {
        qemuStderr += String(err);
        clearTimeout(timer);
        resolve(null);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    const durationMs = Date.now() - started;
    const serial = existsSync(serialLog) ? await readFile(serialLog, 'latin1') : '';
    return { name: o.name, mac: o.mac, exitCode, timedOut, durationMs, serialLog, serial, qemuStderr };
  } finally {
    await release();
    if (varsFile !== null) await rm(varsFile, { force: true });
  }
}

/** The end of the serial log, without terminal escapes, for failure messages. */
export function serialTail(run: VmRun, lines = 40): string {
  // eslint-disable-next-line no-control-regex
  const clean = run.serial.replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '').replace(/\x1b[@-Z\\-_c]/g, '').replace(/\r/g, '');
  return clean.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');
}

/** A one-paragraph account of a boot for assertion messages: outcome, where the full log is, and its tail. */
export function describeRun(run: VmRun): string {
  const outcome = run.timedOut ? `timed out after ${Math.round(run.durationMs / 1000)} s (killed)` : `QEMU exited with ${run.exitCode} after ${Math.round(run.durationMs / 1000)} s`;
  return `${run.name} (${run.mac}): ${outcome}\nserial log: ${run.serialLog}${run.qemuStderr.trim() !== '' ? `\nqemu stderr: ${run.qemuStderr.trim()}` : ''}\n--- serial tail ---\n${serialTail(run)}`;
}

/** Fails with the boot's account (log path, tail) unless the serial log matches; a diff of a whole log helps nobody. */
export function expectSerial(run: VmRun, pattern: RegExp | string, what = 'the serial log'): void {
  const ok = typeof pattern === 'string' ? run.serial.includes(pattern) : pattern.test(run.serial);
  if (!ok) throw new Error(`${what} does not show ${String(pattern)}\n${describeRun(run)}`);
}
