// Test harness: a real Kiln (SQLite + fs blobs in a temp dir) listening on a random loopback port.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/server/config.js';
import { startKiln, type RunningKiln } from '../../src/server/start-kiln.js';

export interface TestKiln {
  kiln: RunningKiln;
  dataDir: string;
  token: string;
  api: (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;
  stop: () => Promise<void>;
  restart: (flags?: Record<string, string>) => Promise<TestKiln>;
}

export async function startTestKiln(flags: Record<string, string> = {}, dataDir?: string): Promise<TestKiln> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'kiln-test-')));
  const config = loadConfig({ env: {}, flags: { listen: '127.0.0.1:0', dataDir: dir, ...flags }, cwd: dir });
  const kiln = await startKiln(config, pino({ level: process.env.KILN_TEST_LOG ?? 'silent' }));
  const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${kiln.adminUrl}/api/v1${path}`, { ...init, headers, body });
  };
  const self: TestKiln = {
    kiln,
    dataDir: dir,
    token,
    api,
    stop: async () => {
      await kiln.close();
    },
    restart: async (more = {}) => {
      await kiln.close();
      return startTestKiln({ ...flags, ...more }, dir);
    },
  };
  return self;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function randomBlob(size: number): { bytes: Buffer; sha256: string } {
  const bytes = randomBytes(size);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Uploads bytes and returns the artifact record. */
export async function upload(k: TestKiln, bytes: Buffer): Promise<{ sha256: string; size: number }> {
  const res = await k.api('/artifacts', { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  if (res.status !== 201 && res.status !== 200) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return json(res);
}

/** An image with one version (kernel + initrd) promoted to `stable`, a profile on that channel. */
export async function seedBootable(k: TestKiln, opts: { image?: string; profile?: string; kernel?: Buffer; initrd?: Buffer; version?: string } = {}) {
  const image = opts.image ?? 'debian';
  const profile = opts.profile ?? 'worker';
  const kernel = opts.kernel ?? randomBytes(256 * 1024);
  const initrd = opts.initrd ?? randomBytes(512 * 1024);
  const k1 = await upload(k, kernel);
  const i1 = await upload(k, initrd);
  if ((await k.api(`/images/${image}`)).status === 404) await k.api('/images', { method: 'POST', json: { name: image } });
  const v = await k.api(`/images/${image}/versions`, {
    method: 'POST',
    json: { version: opts.version ?? '1', cmdline: 'console=ttyS0', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k1.sha256 }, { name: 'initrd.img', role: 'initrd', sha256: i1.sha256 }] },
  });
  if (v.status !== 201) throw new Error(`version failed: ${v.status} ${await v.text()}`);
  await k.api(`/images/${image}/channels/stable/promote`, { method: 'POST', json: { version: opts.version ?? '1' } });
  if ((await k.api(`/profiles/${profile}`)).status === 404) {
    await k.api('/profiles', { method: 'POST', json: { name: profile, image: { image, channel: 'stable' }, kernelArgs: ['quiet'] } });
  }
  return { kernel, initrd, kernelSha: k1.sha256, initrdSha: i1.sha256 };
}

export interface KilnProcess {
  pid: number;
  url: string;
  dataDir: string;
  token: string;
  stderr: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** A real `kiln serve` child process (the built binary), for tests that measure or signal the server itself. */
export async function startKilnProcess(args: string[] = [], existingDataDir?: string, opts: { env?: Record<string, string>; token?: string } = {}): Promise<KilnProcess> {
  const { spawn } = await import('node:child_process');
  const dataDir = existingDataDir ?? (await mkdtemp(join(tmpdir(), 'kiln-proc-')));
  const bin = new URL('../../bin/kiln.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...opts.env } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`kiln did not start:\n${err}`)), 20_000);
    child.stderr.on('data', () => {
      const m = /admin API (http:\/\/[^/\s]+)\/api\/v1/.exec(err);
      if (m !== null) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`kiln exited with ${code}:\n${err}`)));
  });
  // A replica joining a shared database finds the admin token made by the first one.
  const token = opts.token ?? (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  return {
    pid: child.pid!,
    url,
    dataDir,
    token,
    stderr: () => err,
    stop: (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
  };
}

/** Peak resident set size of a process, in bytes (Linux). */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}
