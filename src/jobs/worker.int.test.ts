// The Worker with everything real: SQLite, the fs blob store, `sh` and `sleep` process trees. Cancel,
// timeout and shutdown must leave no process and no work directory behind; pids are checked in /proc.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from 'typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../blobs/fs/fs-blob-store.js';
import type { Clock, IdSource } from '../core/ports.js';
import { isAlive, pidsIn, until } from './contract/probes.js';
import type { Job } from './job.js';
import { JobLogs } from './job-logs.js';
import type { JobQueue } from './job-queue.js';
import { JobService } from './job-service.js';
import { defineJobType, jobRegistry, RetryableJobError, type JobTypes } from './job-types.js';
import { SpawnProcessRunner } from './process-runner.js';
import { selfTestJob } from './self-test-job.js';
import { openSqliteJobQueue } from './sqlite/sqlite-job-queue.js';
import { Worker, type WorkerOptions } from './worker.js';

const clock: Clock = { now: () => new Date() };
const ids: IdSource = { id: () => randomUUID(), secret: () => randomUUID() };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

// ---------------------------------------------------------------- test job types

const gates = new Map<string, () => void>();
let runningGates = 0;
let maxRunningGates = 0;
const gateJob = defineJobType({
  type: 'gate', description: 'waits until the test opens it', inputSchema: Type.Object({}), apiCreatable: true, timeoutSeconds: 60, maxAttempts: 1,
  async run(ctx) {
    runningGates++;
    maxRunningGates = Math.max(maxRunningGates, runningGates);
    try {
      await new Promise<void>((resolve) => gates.set(ctx.job.id, resolve));
    } finally {
      runningGates--;
    }
    return { opened: true };
  },
});
const flakyJob = defineJobType({
  type: 'flaky', description: 'fails its first attempts', inputSchema: Type.Object({ failures: Type.Integer() }), apiCreatable: true, timeoutSeconds: 60, maxAttempts: 3,
  retryDelaySeconds: 0,
  async run(ctx) {
    ctx.log.line(`attempt ${ctx.job.attempts}`);
    if (ctx.job.attempts <= ctx.input.failures) throw new RetryableJobError(`not yet (attempt ${ctx.job.attempts})`);
    return { attempt: ctx.job.attempts };
  },
});
const stubbornJob = defineJobType({
  type: 'stubborn', description: 'a process tree that ignores SIGTERM', inputSchema: Type.Object({}), apiCreatable: true, timeoutSeconds: 60, maxAttempts: 1,
  async run(ctx) {
    await ctx.run('sh', ['-c', 'trap "" TERM; sleep 60 & echo "sleeper pid $!"; echo "shell pid $$"; wait']);
    return null;
  },
});
const writerJob = defineJobType({
  type: 'writer', description: 'writes into its work directory and reports where', inputSchema: Type.Object({}), apiCreatable: true, timeoutSeconds: 60, maxAttempts: 1,
  async run(ctx) {
    ctx.stage('writing');
    ctx.progress(50);
    await ctx.run('sh', ['-c', 'mkdir -p sub && echo hello > sub/file && pwd']);
    return { workDir: ctx.workDir };
  },
});
const testTypes: JobTypes = jobRegistry([selfTestJob, gateJob, flakyJob, stubbornJob, writerJob]);

// ---------------------------------------------------------------- harness

interface Harness {
  dir: string;
  queue: JobQueue;
  service: JobService;
  worker: Worker;
  workRoot: string;
  log(id: string): Promise<string>;
  settled(id: string): Promise<Job>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(over: Partial<WorkerOptions> = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-worker-'));
  const queue = await openSqliteJobQueue({ path: join(dir, 'kiln.db'), clock, migrate: true });
  const blobs = await FsBlobStore.open(join(dir, 'blobs'));
  const logs = new JobLogs(queue, blobs, { pollMs: 50 });
  const service = new JobService(queue, testTypes, logs, ids, clock);
  const workRoot = join(dir, 'work');
  const worker = new Worker({
    queue, logs, types: testTypes, concurrency: 1, leaseSeconds: 10, heartbeatSeconds: 1, pollIntervalMs: 25, workRoot, clock,
    runner: new SpawnProcessRunner(), log: quiet, killGraceMs: 500, ...over,
  });
  service.onEnqueued(() => worker.wake());
  await worker.start();
  cleanups.push(async () => {
    await worker.stop(0);
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  });
  const log = async (id: string) => {
    const chunks: Buffer[] = [];
    for await (const c of await logs.read(id)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const settled = (id: string) => until(`job ${id} to finish`, async () => {
    const j = await service.get(id);
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  });
  return { dir, queue, service, worker, workRoot, log, settled };
}

// ---------------------------------------------------------------- tests

describe('Worker', () => {
  it('runs a self-test to success: result, stage, progress, log, and no work directory left', async () => {
    const h = await harness();
    const job = await h.service.create('self-test', { seconds: 0, processes: 2 }, { actor: 'tester' });
    const done = await h.settled(job.id);
    expect(done).toMatchObject({ status: 'succeeded', result: { seconds: 0, processes: 2 }, stage: 'done', progress: 100, attempts: 1, error: null });
    const log = await h.log(job.id);
    expect(log).toContain('self-test: attempt 1 of 1 on worker');
    expect(log).toContain('[kiln] stage: sleeping');
    expect(pidsIn(log)).toHaveLength(3);
    expect(log).toContain('sleepers done');
    expect(log.trimEnd().endsWith('[kiln] succeeded')).toBe(true);
    expect(await readdir(h.workRoot)).toEqual([]);
  });

  it('gives each attempt a private work directory and removes it afterwards', async () => {
    const h = await harness();
    const job = await h.service.create('writer', {}, { actor: null });
    const done = await h.settled(job.id);
    const workDir = (done.result as { workDir: string }).workDir;
    expect(workDir).toBe(join(h.workRoot, `${job.id}.1`));
    expect(await h.log(job.id)).toContain(`${workDir}\n`);
    expect(await readdir(h.workRoot)).toEqual([]);
  });

  it('cancel of a running job kills its whole process tree and removes its work directory', async () => {
    const h = await harness();
    const job = await h.service.create('self-test', { seconds: 60, processes: 3 }, { actor: 'tester' });
    const pids = await until('the process tree in the log', async () => {
      const p = pidsIn(await h.log(job.id));
      return p.length === 4 ? p : null;
    });
    for (const pid of pids) expect(await isAlive(pid)).toBe(true);
    expect(await readdir(h.workRoot)).toEqual([`${job.id}.1`]);
    expect((await h.service.cancel(job.id)).status).toBe('running');
    const done = await h.settled(job.id);
    expect(done).toMatchObject({ status: 'cancelled', error: { code: 'KILN_JOB_CANCELLED' } });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
    expect(await readdir(h.workRoot)).toEqual([]);
    expect(await h.log(job.id)).toContain('[kiln] cancelled');
  });

  it('a job that outlives its timeout fails; a tree ignoring SIGTERM gets SIGKILL', async () => {
    const h = await harness();
    const job = await h.service.create('stubborn', {}, { actor: null, timeoutSeconds: 1 });
    const pids = await until('the process tree in the log', async () => {
      const p = pidsIn(await h.log(job.id));
      return p.length === 2 ? p : null;
    });
    const done = await h.settled(job.id);
    expect(done).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'KILN_JOB_TIMEOUT', message: 'ran longer than its timeout of 1 s' } });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
    expect(await readdir(h.workRoot)).toEqual([]);
  });

  it('retries what the type calls retryable, and records the last error of a failure', async () => {
    const h = await harness();
    const ok = await h.service.create('flaky', { failures: 2 }, { actor: null });
    expect(await h.settled(ok.id)).toMatchObject({ status: 'succeeded', attempts: 3, result: { attempt: 3 } });
    expect((await h.log(ok.id)).match(/^attempt \d$/gm)).toEqual(['attempt 1', 'attempt 2', 'attempt 3']);
    const bad = await h.service.create('flaky', { failures: 5 }, { actor: null });
    expect(await h.settled(bad.id)).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'KILN_JOB_FAILED', message: 'not yet (attempt 3)' } });
    const once = await h.service.create('self-test', { seconds: 0, fail: true }, { actor: null });
    expect(await h.settled(once.id)).toMatchObject({ status: 'failed', attempts: 1, error: { message: 'self-test was asked to fail' } });
  });

  it('runs only the types it is given, and refuses types it does not know', async () => {
    const h = await harness({ only: ['flaky'] });
    const skipped = await h.service.create('self-test', { seconds: 0 }, { actor: null });
    const taken = await h.service.create('flaky', { failures: 0 }, { actor: null });
    expect((await h.settled(taken.id)).status).toBe('succeeded');
    expect((await h.service.get(skipped.id)).status).toBe('queued');
    await h.service.cancel(skipped.id);
    const logs = new JobLogs(h.queue, null as never);
    expect(() => new Worker({ queue: h.queue, logs, types: testTypes, only: ['image-build'], concurrency: 1, leaseSeconds: 10, heartbeatSeconds: 1, pollIntervalMs: 25, workRoot: h.workRoot, clock, runner: new SpawnProcessRunner(), log: quiet }))
      .toThrow(/jobs.types: unknown job types image-build/);
  });

  it('refuses stored input its type does not accept', async () => {
    const h = await harness();
    const job = await h.queue.enqueue({ id: randomUUID(), type: 'self-test', input: { seconds: 'soon' }, maxAttempts: 3, timeoutSeconds: 60, priority: 0, createdBy: null });
    const done = await h.settled(job.id);
    expect(done).toMatchObject({ status: 'failed', error: { code: 'KILN_JOB_INPUT_INVALID' } });
    expect(done.error!.message).toContain('/seconds');
  });

  it('runs at most `concurrency` jobs at once', async () => {
    const h = await harness({ concurrency: 2 });
    maxRunningGates = 0;
    const jobs = await Promise.all([1, 2, 3].map(() => h.service.create('gate', {}, { actor: null })));
    await until('two gates running', async () => gates.size === 2);
    expect((await h.service.list({ status: ['queued'], limit: 10 })).map((j) => j.id)).toEqual([jobs[2]!.id]);
    for (const j of jobs.slice(0, 2)) gates.get(j.id)!();
    await until('the third gate', async () => gates.has(jobs[2]!.id));
    gates.get(jobs[2]!.id)!();
    for (const j of jobs) expect((await h.settled(j.id)).status).toBe('succeeded');
    expect(maxRunningGates).toBe(2);
    gates.clear();
  });

  it('shutting down: a job that finishes within the grace period succeeds; one that does not goes back to the queue, its processes gone', async () => {
    const h = await harness();
    const quick = await h.service.create('gate', {}, { actor: null });
    await until('the gate to run', async () => gates.has(quick.id));
    const stopping = h.worker.stop(20_000);
    gates.get(quick.id)!();
    await stopping;
    expect((await h.service.get(quick.id)).status).toBe('succeeded');
    gates.clear();

    const h2 = await harness();
    const slow = await h2.service.create('self-test', { seconds: 60, processes: 1 }, { actor: null });
    const pids = await until('the process tree in the log', async () => {
      const p = pidsIn(await h2.log(slow.id));
      return p.length === 2 ? p : null;
    });
    await h2.worker.stop(100);
    const back = await h2.service.get(slow.id);
    expect(back).toMatchObject({ status: 'queued', attempts: 0, workerId: null, error: { code: 'KILN_JOB_INTERRUPTED' } });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
    expect(await readdir(h2.workRoot)).toEqual([]);
    expect(await h2.log(slow.id)).toContain('[kiln] interrupted; back in the queue for another worker');
  });
});
