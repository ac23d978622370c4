// A real `kiln serve` (the built binary, SQLite and fs blobs in a temp dir) for the e2e suite: on host
// loopback for slirp guests, or inside a lab network namespace; seeded only through its HTTP API.
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestImage } from '../../../src/demo/build-boot-image.js';
import { IPXE_DIR } from './e2e-prerequisites.js';

const KILN_BIN = fileURLToPath(new URL('../../../bin/kiln.js', import.meta.url));

export interface MachineView {
  id: string;
  macs: string[];
  state: string;
  profile: string | null;
  nextBoot: string | null;
}

export interface BootEventView {
  id: number;
  kind: string;
  at: string;
  detail: Record<string, unknown>;
}

export interface E2eKiln {
  adminUrl: string;
  /** Boot listener as Kiln printed it (for slirp guests, 127.0.0.1:<port> is 10.0.2.2:<port>). */
  bootUrl: string;
  dataDir: string;
  stderr(): string;
  /** Admin API call; throws with the problem body unless the status is 2xx. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export interface StartKilnOptions {
  /** Run inside this network namespace (`ip netns exec`); the admin listen address must be reachable from here. */
  netns?: string;
  /** Extra `kiln serve` flags; without --listen, Kiln listens on a random loopback port. */
  args?: string[];
}

export async function startE2eKiln(opts: StartKilnOptions = {}): Promise<E2eKiln> {
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-e2e-data-'));
  const args = [KILN_BIN, 'serve', '--data-dir', dataDir, '--log-level', 'info', ...(opts.args ?? [])];
  if (!args.includes('--listen')) args.push('--listen', '127.0.0.1:0');
  const [cmd, argv] = opts.netns !== undefined ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    // Keep the log bounded: a long boot storm would otherwise grow it without limit.
    err = (err + d.toString()).slice(-256 * 1024);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const { adminUrl, bootUrl } = await new Promise<{ adminUrl: string; bootUrl: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`kiln did not start within 30 s:\n${err}`)), 30_000);
      child.stderr.on('data', () => {
        const m = /admin API (http:\/\/[^/\s]+)\/api\/v1.*?boot (http:\/\/[^/\s]+)\/boot\.ipxe/.exec(err);
        if (m !== null) {
          clearTimeout(t);
          resolve({ adminUrl: m[1]!, bootUrl: m[2]! });
        }
      });
      void exited.then((code) => {
        clearTimeout(t);
        reject(new Error(`kiln exited with ${code} before serving:\n${err}`));
      });
    });
    const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      let payload: Buffer | string | undefined;
      if (Buffer.isBuffer(body)) {
        headers['content-type'] = 'application/octet-stream';
        payload = body;
      } else if (body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(body);
      }
      const res = await fetch(`${adminUrl}/api/v1${path}`, { method, headers, body: payload });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    };
    return { adminUrl, bootUrl, dataDir, stderr: () => err, api, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface SeededImage {
  image: string;
  kernelSha: string;
  initrdSha: string;
  rootfsSha: string;
}

/**
 * The test image as an operator would push it: artifacts uploaded, a version with kernel and initrd (and,
 * for a live image, a `rootfs` artifact, which Kiln's script hands the kernel as `kiln.rootfs=<url>`),
 * promoted to `stable`. `panic=1` makes a failed boot end QEMU at once (-no-reboot).
 */
export async function seedTestImage(k: E2eKiln, image: TestImage, name = 'e2e', opts: { live?: boolean } = {}): Promise<SeededImage> {
  const upload = async (path: string) => (await k.api<{ sha256: string }>('POST', '/artifacts', await readFile(path))).sha256;
  const [kernelSha, initrdSha, rootfsSha] = await Promise.all([upload(image.kernel), upload(image.initrd), upload(image.rootfs)]);
  await k.api('POST', '/images', { name, description: 'Kiln e2e test image (Debian kernel, busybox initramfs, squashfs live root)' });
  await k.api('POST', `/images/${name}/versions`, {
    version: '1',
    cmdline: 'console=ttyS0 panic=1 quiet',
    artifacts: [
      { name: 'vmlinuz', role: 'kernel', sha256: kernelSha },
      { name: 'initrd.img', role: 'initrd', sha256: initrdSha },
      ...(opts.live === true ? [{ name: 'rootfs.squashfs', role: 'rootfs', sha256: rootfsSha }] : []),
    ],
  });
  await k.api('POST', `/images/${name}/channels/stable/promote`, { version: '1' });
  return { image: name, kernelSha, initrdSha, rootfsSha };
}

export async function createProfile(k: E2eKiln, name: string, image: string, kernelArgs: string[] = []): Promise<void> {
  await k.api('POST', '/profiles', { name, image: { image, channel: 'stable' }, kernelArgs });
}

export async function addMachine(k: E2eKiln, mac: string, profile: string): Promise<MachineView> {
  await k.api('POST', '/machines', { macs: [mac] });
  return k.api<MachineView>('PUT', `/machines/${mac}/assignment`, { profile });
}

export async function getMachine(k: E2eKiln, mac: string): Promise<MachineView> {
  return k.api<MachineView>('GET', `/machines/${mac}`);
}

export async function machineEvents(k: E2eKiln, mac: string): Promise<BootEventView[]> {
  return (await k.api<{ items: BootEventView[] }>('GET', `/machines/${mac}/events?limit=1000`)).items;
}

/**
 * A TFTP root with real copies of Debian's iPXE binaries: Kiln's TFTP jail refuses symlinks that leave the
 * root, and Debian's /usr/lib/ipxe/ipxe.efi is one (into /boot). Remove it with the returned function.
 */
export async function prepareTftpRoot(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-e2e-tftp-'));
  for (const f of ['snponly.efi', 'undionly.kpxe']) await copyFile(join(IPXE_DIR, f), join(dir, f));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
