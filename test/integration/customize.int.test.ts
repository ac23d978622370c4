// Customize sessions end to end on a real Kiln (SQLite, fs blobs, in-process worker): a real squashfs
// rootfs, the real sshd in a namespace container, the real `ssh` client with keys made by ssh-keygen.
// Write a file, say done, find it in the new version's squashfs; a wrong key is refused; the marker
// file finishes too; cancel leaves no version, no mount, no process and no work directory. Once more
// with the store on PostgreSQL, where "done" travels through the database.
//
// The rootfs is built from the host's static busybox (a shell and coreutils, 1 MB, no network): the
// session's sshd is the worker's, so the image needs no SSH server of its own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustomizeSession, PublicKey } from '../../src/core/types.js';
import type { ImageVersion } from '../../src/core/types.js';
import { isAlive, until } from '../../src/jobs/contract/probes.js';
import type { Job } from '../../src/jobs/job.js';
import { BUSYBOX, findExecutable, isCi, isStaticElf } from '../e2e/support/e2e-prerequisites.js';
import { freshPgDatabase, pgUrl } from '../support/pg.js';
import { json, removeDir, startTestKiln, upload, type TestKiln } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

// ---------------------------------------------------------------- prerequisites

function unavailableReason(): string | null {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (namespaces, mounts)');
  for (const [exe, pkg] of [['unshare', 'util-linux'], ['mksquashfs', 'squashfs-tools'], ['unsquashfs', 'squashfs-tools'], ['ssh', 'openssh-client'], ['ssh-keygen', 'openssh-client']] as const) {
    if (findExecutable(exe) === null) missing.push(`${exe} (apt-get install ${pkg})`);
  }
  if (findExecutable('sshd') === null) missing.push('sshd (apt-get install openssh-server)');
  if (!isStaticElf(BUSYBOX)) missing.push(`a static ${BUSYBOX} (apt-get install busybox-static)`);
  return missing.length === 0 ? null : `missing ${missing.join('; ')}`;
}
const reason = unavailableReason();
if (reason !== null && isCi()) throw new Error(`CI must run the customize tests, but: ${reason}`);
if (reason !== null) process.stderr.write(`\n  customize tests skipped: ${reason}\n\n`);

// ---------------------------------------------------------------- helpers

interface View {
  job: Job;
  session: CustomizeSession | null;
  sshCommand: string | null;
}

/** A root filesystem of the host's static busybox: enough for a login shell, echo, touch and sleep. */
async function buildRootfs(dir: string): Promise<string> {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'root', 'proc', 'sys', 'dev', 'run', 'tmp']) await mkdir(join(root, d), { recursive: true, mode: 0o755 });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'touch', 'sleep', 'id', 'rm']) await symlink('busybox', join(root, 'bin', applet));
  await writeFile(join(root, 'etc', 'hostname'), 'kiln-test\n');
  const out = join(dir, 'rootfs.sqfs');
  await run('mksquashfs', [root, out, '-comp', 'zstd', '-noappend', '-no-progress', '-quiet']);
  return out;
}

/** A kernel for the version: the host's when readable (the session never boots it), else bytes. */
async function kernelBytes(): Promise<Buffer> {
  const boot = (await readdir('/boot').catch(() => [] as string[])).filter((f) => f.startsWith('vmlinuz-')).sort();
  for (const f of boot) {
    const b = await readFile(join('/boot', f)).catch(() => null);
    if (b !== null) return b;
  }
  return randomBytes(64 * 1024);
}

async function keygen(dir: string, name: string): Promise<{ path: string; pub: string }> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', path]);
  return { path, pub: await readFile(`${path}.pub`, 'utf8') };
}

function sshArgs(key: string, v: View, extra: string[] = []): string[] {
  const c = v.session!.connection!;
  return ['-i', key, '-p', String(c.port), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', ...extra, `${c.user}@${c.host}`];
}

/** Runs the real ssh client; resolves with its exit status and output. */
async function ssh(key: string, v: View, command: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('ssh', [...sshArgs(key, v, extra), command]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Processes whose environment says they run for this job (what the worker started, sshd included). */
async function jobProcesses(jobId: string): Promise<{ pid: number; pgid: number }[]> {
  const out: { pid: number; pgid: number }[] = [];
  for (const p of (await readdir('/proc')).filter((x) => /^\d+$/.test(x))) {
    const env = await readFile(`/proc/${p}/environ`).catch(() => null);
    if (env === null || !env.toString('latin1').split('\0').includes(`KILN_JOB_ID=${jobId}`)) continue;
    const st = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => null);
    if (st === null) continue;
    out.push({ pid: Number(p), pgid: Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[2]) });
  }
  return out;
}

const groupExists = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};

async function mountsMentioning(...needles: string[]): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => needles.some((n) => l.includes(n)));
}

// ---------------------------------------------------------------- through the API

const viewOf = async (k: TestKiln, id: string) => json<View>(await k.api(`/jobs/${id}/customize`));

/** Waits until the job's sshd listens; fails at once (with the job's log) if the job ends first. */
const readyOf = (k: TestKiln, id: string) => until(`customize job ${id} to wait on the user`, async () => {
  const v = await viewOf(k, id);
  if (v.job.status !== 'running' && v.job.status !== 'queued') throw new Error(`job ${id} ${v.job.status}: ${JSON.stringify(v.job.error)}\n${await (await k.api(`/jobs/${id}/logs`)).text()}`);
  return v.sshCommand !== null ? v : null;
}, 60_000);

const settledOf = (k: TestKiln, id: string) => until(`job ${id} to finish`, async () => {
  const j = await json<Job>(await k.api(`/jobs/${id}`));
  return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
}, 60_000);

async function startOn(k: TestKiln, image: string, version: string, body: Record<string, unknown>): Promise<Job> {
  const res = await k.api(`/images/${image}/versions/${version}/customize`, { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`customize failed: ${res.status} ${await res.text()}`);
  return json<Job>(res);
}

/** A version's rootfs, downloaded through the API into `file`. */
async function rootfsFileOf(k: TestKiln, v: ImageVersion, file: string): Promise<string> {
  const a = v.artifacts.find((x) => x.role === 'rootfs')!;
  await writeFile(file, Buffer.from(await (await k.api(`/artifacts/${a.sha256}`)).arrayBuffer()));
  return file;
}

/** Image `name` version 1: kernel, initrd, the busybox rootfs and a manifest of the three. */
async function seedImage(k: TestKiln, dir: string, name: string): Promise<ImageVersion> {
  const squashfs = await readFile(await buildRootfs(dir));
  const kernel = await upload(k, await kernelBytes());
  const initrd = await upload(k, randomBytes(4096));
  const rootfs = await upload(k, squashfs);
  const manifest = { version: '1.0', created: '2030-01-01T00:00:00Z', artifacts: [kernel, initrd, rootfs].map((a) => ({ sha256: a.sha256, size: a.size })) };
  const man = await upload(k, Buffer.from(JSON.stringify(manifest)));
  await k.api('/images', { method: 'POST', json: { name } });
  const res = await k.api(`/images/${name}/versions`, {
    method: 'POST',
    json: {
      version: '1', cmdline: 'console=ttyS0 quiet', metadata: { manifest: man.sha256 },
      artifacts: [
        { name: 'vmlinuz', role: 'kernel', sha256: kernel.sha256 }, { name: 'initrd.img', role: 'initrd', sha256: initrd.sha256 },
        { name: 'rootfs.squashfs', role: 'rootfs', sha256: rootfs.sha256 }, { name: 'manifest.json', role: 'other', sha256: man.sha256 },
      ],
    },
  });
  if (res.status !== 201) throw new Error(`version failed: ${res.status} ${await res.text()}`);
  return json<ImageVersion>(res);
}

// ---------------------------------------------------------------- the suite

describe.skipIf(reason !== null)('image customize over SSH', () => {
  let k: TestKiln;
  let dir: string;
  let user: { path: string; pub: string };
  let stranger: { path: string; pub: string };
  let original: ImageVersion;
  const image = 'custom';

  const view = (id: string) => viewOf(k, id);
  const ready = (id: string) => readyOf(k, id);
  const settled = (id: string) => settledOf(k, id);
  const start = (body: Record<string, unknown>, version = '1') => startOn(k, image, version, body);
  const rootfsFile = (v: ImageVersion, name: string) => rootfsFileOf(k, v, join(dir, name));
  const versions = async () => (await json<{ items: ImageVersion[] }>(await k.api(`/images/${image}/versions`))).items.map((v) => v.version);

  beforeAll(async () => {
    k = await startTestKiln({ 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    dir = await mkdtemp(join(tmpdir(), 'kiln-customize-'));
    user = await keygen(dir, 'user');
    stranger = await keygen(dir, 'stranger');
    expect((await k.api('/public-keys', { method: 'POST', json: { name: 'tester', publicKey: user.pub } })).status).toBe(201);
    original = await seedImage(k, dir, image);
  });

  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (dir !== undefined) await removeDir(dir);
  });

  it('refuses what cannot be customized before queuing a job', async () => {
    const problem = async (path: string, body: unknown) => {
      const res = await k.api(path, { method: 'POST', json: body });
      return [res.status, (await json<{ code: string }>(res)).code];
    };
    expect(await problem(`/images/${image}/versions/1/customize`, { publicKey: 'nobody' })).toEqual([404, 'KILN_PUBLIC_KEY_NOT_FOUND']);
    expect(await problem(`/images/${image}/versions/9/customize`, { publicKey: 'tester' })).toEqual([404, 'KILN_VERSION_NOT_FOUND']);
    expect(await problem(`/images/${image}/versions/1/customize`, { publicKey: 'tester', newVersion: '1' })).toEqual([409, 'KILN_VERSION_EXISTS']);
    const kernelOnly = await k.api(`/images/${image}/versions`, { method: 'POST', json: { version: 'bare', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: original.artifacts[0]!.sha256 }] } });
    expect(kernelOnly.status).toBe(201);
    expect(await problem(`/images/${image}/versions/bare/customize`, { publicKey: 'tester' })).toEqual([400, 'KILN_CUSTOMIZE_NO_ROOTFS']);
    const other = await json<Job>(await k.api('/jobs', { method: 'POST', json: { type: 'self-test', input: { seconds: 0 } } }));
    expect(await problem(`/jobs/${other.id}/done`, {})).toEqual([404, 'KILN_CUSTOMIZE_NOT_FOUND']);
    await settled(other.id);
  });

  it('ssh in with the registered key, write a file, say done: a new version holds it, the rest kept', async () => {
    const job = await start({ publicKey: 'tester', newVersion: '2', promote: 'stable' });
    const v = await ready(job.id);
    expect(v.job.stage).toBe('waiting_on_user');
    expect(v.session).toMatchObject({ image, version: '1', publicKeyFingerprint: (await json<PublicKey>(await k.api('/public-keys/tester'))).fingerprint, doneRequestedAt: null });
    const c = v.session!.connection!;
    expect(c).toMatchObject({ host: '127.0.0.1', user: 'root' });
    expect(c.port).toBeGreaterThanOrEqual(32200);
    expect(c.port).toBeLessThanOrEqual(32299);
    expect(v.sshCommand).toBe(`ssh -o HostKeyAlias=kiln-customize-${job.id} -p ${c.port} root@127.0.0.1`);
    // Done is refused until the session is ready (it is now) and repeats harmlessly; first, a stranger.
    const refused = await ssh(stranger.path, v, 'true');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toContain('Permission denied (publickey)');
    const wrote = await ssh(user.path, v, 'echo hello > /etc/kiln-customized && cat /etc/hostname && id -u', ['-v']);
    expect(wrote.code).toBe(0);
    expect(wrote.stdout).toBe('kiln-test\n0\n');
    // The host key the client saw is the one Kiln published.
    expect(wrote.stderr).toContain(`Server host key: ssh-ed25519 ${c.hostKeyFingerprint}`);
    // Every mount of the session lives in its own namespace: the host sees none.
    expect(await mountsMentioning(job.id, '/run/sshd')).toEqual([]);

    const done = await k.api(`/jobs/${job.id}/done`, { method: 'POST', json: {} });
    expect(done.status).toBe(202);
    expect((await json<View>(done)).session?.doneRequestedAt).not.toBeNull();
    const finished = await settled(job.id);
    expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');
    expect(finished.result).toMatchObject({ image, version: '2', from: '1', promoted: 'stable' });

    const next = await json<ImageVersion>(await k.api(`/images/${image}/versions/2`));
    const byName = (ver: ImageVersion) => Object.fromEntries(ver.artifacts.map((a) => [a.name, a]));
    expect(next.cmdline).toBe(original.cmdline);
    expect(next.metadata).toEqual({ manifest: byName(next)['manifest.json']!.sha256, customizedFrom: { version: '1', job: job.id } });
    expect(byName(next).vmlinuz!.sha256).toBe(byName(original).vmlinuz!.sha256);
    expect(byName(next)['initrd.img']!.sha256).toBe(byName(original)['initrd.img']!.sha256);
    expect(byName(next)['rootfs.squashfs']!.sha256).not.toBe(byName(original)['rootfs.squashfs']!.sha256);
    const file = await rootfsFile(next, 'v2.sqfs');
    expect((await run('unsquashfs', ['-cat', file, 'etc/kiln-customized'])).stdout).toBe('hello\n');
    const manifest = JSON.parse(Buffer.from(await (await k.api(`/artifacts/${byName(next)['manifest.json']!.sha256}`)).arrayBuffer()).toString()) as { artifacts: { sha256: string; size: number }[] };
    expect(manifest.artifacts.map((a) => a.sha256)).toContain(byName(next)['rootfs.squashfs']!.sha256);
    expect(manifest.artifacts.find((a) => a.sha256 === byName(next)['rootfs.squashfs']!.sha256)!.size).toBe((await stat(file)).size);
    expect((await json<{ version: string; history: { actor: string }[] }>(await k.api(`/images/${image}/channels/stable`)))).toMatchObject({ version: '2', history: [{ actor: 'admin' }] });

    const after = await view(job.id);
    expect([after.sshCommand, after.session?.connection]).toEqual([null, null]);
    const late = await k.api(`/jobs/${job.id}/done`, { method: 'POST', json: {} });
    expect([late.status, (await json<{ code: string }>(late)).code]).toEqual([409, 'KILN_CUSTOMIZE_NOT_WAITING']);
    expect(await readdir(join(k.dataDir, 'work'))).toEqual([]);
  });

  it('creating /tmp/complete inside finishes the session too; the marker is not saved', async () => {
    const job = await start({ publicKey: 'tester' }, '2');
    const v = await ready(job.id);
    expect((await ssh(user.path, v, 'echo again >> /etc/kiln-customized && touch /tmp/complete')).code).toBe(0);
    const finished = await settled(job.id);
    expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');
    const made = (finished.result as { version: string }).version;
    expect(made).toBe('4');
    const file = await rootfsFile(await json<ImageVersion>(await k.api(`/images/${image}/versions/${made}`)), 'v4.sqfs');
    expect((await run('unsquashfs', ['-cat', file, 'etc/kiln-customized'])).stdout).toBe('hello\nagain\n');
    expect((await run('unsquashfs', ['-ls', file])).stdout).not.toContain('tmp/complete');
  });

  it('cancel while waiting on the user: sessions cut, no version, no mount, no process, no work directory', async () => {
    const before = await versions();
    const job = await start({ publicKey: 'tester', newVersion: 'never' });
    const v = await ready(job.id);
    const workDir = join(k.dataDir, 'work', `${job.id}.1`);
    expect((await stat(workDir)).isDirectory()).toBe(true);
    // A user still logged in, running something: cancel must end it too.
    const session: ChildProcess = spawn('ssh', [...sshArgs(user.path, v), 'touch /tmp/started; sleep 600'], { stdio: 'ignore' });
    const sessionEnded = new Promise<number | null>((r) => session.once('exit', (code) => r(code)));
    await until('the ssh session to run', async () => (await stat(join(workDir, 'root', 'tmp', 'started')).catch(() => null)) !== null);
    const procs = await jobProcesses(job.id);
    expect(procs.length).toBeGreaterThanOrEqual(2);
    const groups = [...new Set(procs.map((p) => p.pgid))];

    expect((await k.api(`/jobs/${job.id}/cancel`, { method: 'POST' })).status).toBe(202);
    const finished = await settled(job.id);
    expect(finished.status).toBe('cancelled');
    expect(await sessionEnded).toBe(255);
    for (const p of procs) expect(await isAlive(p.pid), `pid ${p.pid}`).toBe(false);
    for (const g of groups) expect(groupExists(g), `process group ${g}`).toBe(false);
    expect(await jobProcesses(job.id)).toEqual([]);
    expect(await mountsMentioning(job.id, '/run/sshd')).toEqual([]);
    expect(await stat(workDir).catch(() => null)).toBeNull();
    expect(await versions()).toEqual(before);
    expect((await view(job.id)).session?.connection).toBeNull();
  });

  it('kiln image customize prints the ssh command; kiln image customize-done saves (the CLI from its sources)', async () => {
    const cli = async (...args: string[]) => {
      const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KILN_'))), KILN_SERVER: k.kiln.adminUrl, KILN_TOKEN: k.token };
      return run(process.execPath, ['--import', join(ROOT, 'test/integration/jobs-support/register-ts.mjs'), join(ROOT, 'src/cli/kiln.ts'), ...args], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    };
    const started = await cli('image', 'customize', image, '1', '--key', 'tester', '--new-version', 'cli');
    expect(started.code, started.stderr).toBe(0);
    const ssh = /(ssh -o HostKeyAlias=kiln-customize-(\S+) -p (\d+) root@127\.0\.0\.1)/.exec(started.stdout);
    expect(ssh, started.stdout).not.toBeNull();
    expect(started.stderr).toContain(`kiln image customize-done ${ssh![2]!}`);
    const v = await view(ssh![2]!);
    expect(v.session?.connection?.port).toBe(Number(ssh![3]));
    const done = await cli('-o', 'json', 'image', 'customize-done', ssh![2]!);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ job: { status: 'succeeded', result: { version: 'cli' } } });
  });
});

describe.skipIf(reason !== null || pgUrl === null)('image customize with the store on PostgreSQL', () => {
  it('done reaches the worker through PostgreSQL; the new version holds the change', async () => {
    const k = await startTestKiln({ 'database.url': await freshPgDatabase('customize'), 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    const dir = await mkdtemp(join(tmpdir(), 'kiln-customize-pg-'));
    try {
      const user = await keygen(dir, 'user');
      expect((await k.api('/public-keys', { method: 'POST', json: { name: 'tester', publicKey: user.pub } })).status).toBe(201);
      await seedImage(k, dir, 'pg-image');
      const job = await startOn(k, 'pg-image', '1', { publicKey: 'tester' });
      const v = await readyOf(k, job.id);
      expect((await ssh(user.path, v, 'echo from-pg > /etc/kiln-customized')).code).toBe(0);
      expect((await k.api(`/jobs/${job.id}/done`, { method: 'POST', json: {} })).status).toBe(202);
      const finished = await settledOf(k, job.id);
      expect(finished.status, JSON.stringify(finished.error)).toBe('succeeded');
      const made = await json<ImageVersion>(await k.api(`/images/pg-image/versions/${(finished.result as { version: string }).version}`));
      expect((await run('unsquashfs', ['-cat', await rootfsFileOf(k, made, join(dir, 'pg.sqfs')), 'etc/kiln-customized'])).stdout).toBe('from-pg\n');
    } finally {
      await k.stop();
      await removeDir(k.dataDir);
      await removeDir(dir);
    }
  });
});
