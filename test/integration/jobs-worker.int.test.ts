// `kiln worker` as real processes (run from the TypeScript sources, not dist/) sharing one SQLite
// database and blob directory with this test: a worker killed with -9 leaves its jobs to be retried
// or failed once their leases expire, and the next worker on the host kills what the dead one left
// running and removes its work directories.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/fs/fs-blob-store.js';
import { isAlive, pidsIn, until } from '../../src/jobs/contract/probes.js';
import type { Job } from '../../src/jobs/job.js';
import { JobLogs } from '../../src/jobs/job-logs.js';
import type { JobQueue } from '../../src/jobs/job-queue.js';
import { JobService } from '../../src/jobs/job-service.js';
import { jobRegistry } from '../../src/jobs/job-types.js';
import { selfTestJob } from '../../src/jobs/self-test-job.js';
import { openSqliteJobQueue } from '../../src/jobs/sqlite/sqlite-job-queue.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGISTER = join(ROOT, 'test/integration/jobs-support/register-ts.mjs');
const KILN = join(ROOT, 'src/cli/kiln.ts');

interface WorkerProcess {
  child: ChildProcess;
  id: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** A `kiln worker` child; resolves once it says it runs jobs. */
async function startWorker(dataDir: string, args: string[] = []): Promise<WorkerProcess> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KILN_')));
  const child = spawn(process.execPath, [
    '--import', REGISTER, KILN, 'worker', '--data-dir', dataDir, '--log-level', 'warn',
    '--jobs-lease-seconds', '2', '--jobs-heartbeat-seconds', '1', '--jobs-poll-interval-ms', '50', ...args,
  ], { cwd: dataDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const id = await until('the worker to start', async () => {
    if (child.exitCode !== null) throw new Error(`kiln worker exited with ${child.exitCode}:\n${err}`);
    return /Kiln worker (\S+) is running jobs/.exec(err)?.[1] ?? null;
  }, 45_000);
  return { child, id, stderr: () => err, exited };
}

describe('kiln worker processes', () => {
  let dataDir: string;
  let queue: JobQueue;
  let service: JobService;
  let logs: JobLogs;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'kiln-workers-'));
    queue = await openSqliteJobQueue({ path: join(dataDir, 'kiln.db'), clock: { now: () => new Date() }, migrate: true });
    logs = new JobLogs(queue, await FsBlobStore.open(join(dataDir, 'blobs')), { pollMs: 50 });
    service = new JobService(queue, jobRegistry([selfTestJob]), logs, { id: () => randomUUID(), secret: () => randomUUID() }, { now: () => new Date() });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await queue.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const text = async (id: string) => {
    const parts: Buffer[] = [];
    for await (const c of await logs.read(id)) parts.push(c as Buffer);
    return Buffer.concat(parts).toString('utf8');
  };
  const treeOf = (id: string, n: number) => until(`job ${id}'s process tree in its log`, async () => {
    const p = pidsIn(await text(id));
    return p.length === n ? p : null;
  });
  const statusOf = (id: string, want: Job['status'], attempts?: number) => until(`job ${id} to be ${want}`, async () => {
    const j = await service.get(id);
    return j.status === want && (attempts === undefined || j.attempts === attempts) ? j : null;
  });

  it('a worker killed with -9: its jobs are retried or failed after the lease, its leftovers cleaned by the next worker', async () => {
    const retried = await service.create('self-test', { seconds: 120, processes: 2 }, { actor: 'test', maxAttempts: 2, priority: 1 });
    const doomed = await service.create('self-test', { seconds: 120, processes: 1 }, { actor: 'test', maxAttempts: 1 });

    const first = await startWorker(dataDir, ['--jobs-concurrency', '2']);
    children.push(first.child);
    const firstPid = first.child.pid!;
    expect(first.id).toContain(`/${firstPid}/`);
    const orphans = [...(await treeOf(retried.id, 3)), ...(await treeOf(doomed.id, 2))];
    expect((await service.get(retried.id)).workerId).toBe(first.id);
    const oldDirs = [join(dataDir, 'work', `${retried.id}.1`), join(dataDir, 'work', `${doomed.id}.1`)];
    for (const d of oldDirs) expect(existsSync(d)).toBe(true);

    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    // Its commands run in process groups of their own: killing the worker does not kill them.
    for (const pid of orphans) expect(await isAlive(pid)).toBe(true);

    const second = await startWorker(dataDir);
    children.push(second.child);
    // The new worker on this host recognises the dead one: its processes and directories go.
    await until('the orphans to be killed', async () => (await Promise.all(orphans.map(isAlive))).every((alive) => !alive));
    await until('the old work directories to go', async () => oldDirs.every((d) => !existsSync(d)));

    const failed = await statusOf(doomed.id, 'failed');
    expect(failed.error).toMatchObject({ code: 'KILN_JOB_LEASE_EXPIRED' });
    expect(failed.error!.message).toContain(`worker ${first.id} stopped renewing its lease during attempt 1 of 1`);
    expect(failed.error!.message).toContain('no attempts left');

    const again = await statusOf(retried.id, 'running', 2);
    expect(again.workerId).toBe(second.id);
    const secondTree = await until('the second attempt to start its processes', async () => {
      const p = pidsIn(await text(retried.id));
      return p.length === 6 ? p.slice(3) : null;
    });
    const log = await text(retried.id);
    expect(log).toContain(`[kiln] worker ${first.id} stopped renewing its lease during attempt 1 of 2`);
    expect(log).toContain(`self-test: attempt 2 of 2 on worker ${second.id}`);

    await service.cancel(retried.id);
    expect(await statusOf(retried.id, 'cancelled')).toMatchObject({ attempts: 2, error: { code: 'KILN_JOB_CANCELLED' } });
    for (const pid of secondTree) expect(await isAlive(pid)).toBe(false);
    expect(existsSync(join(dataDir, 'work', `${retried.id}.2`))).toBe(false);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('SIGTERM while a job runs: it goes back to the queue and the worker exits cleanly', async () => {
    const job = await service.create('self-test', { seconds: 120, processes: 1 }, { actor: 'test' });
    const w = await startWorker(dataDir, ['--jobs-shutdown-grace-seconds', '0']);
    children.push(w.child);
    const pids = await until('the job to start', async () => {
      const p = pidsIn(await text(job.id));
      return p.length === 2 ? p : null;
    });
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(await service.get(job.id)).toMatchObject({ status: 'queued', attempts: 0, error: { code: 'KILN_JOB_INTERRUPTED' } });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
    await service.cancel(job.id);
  });
});
