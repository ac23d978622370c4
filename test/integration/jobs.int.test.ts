// Jobs through the admin API of a real Kiln (SQLite, fs blobs, in-process worker): create, list,
// show, cancel, roles, errors, logs whole and followed live; a follower fed by a worker that is not
// the API's process; followers end when Kiln stops; and the `kiln job` CLI (from the sources).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/fs/fs-blob-store.js';
import { isAlive, pidsIn, until } from '../../src/jobs/contract/probes.js';
import type { Job } from '../../src/jobs/job.js';
import { JobLogs } from '../../src/jobs/job-logs.js';
import { jobRegistry } from '../../src/jobs/job-types.js';
import { SpawnProcessRunner } from '../../src/jobs/process-runner.js';
import { selfTestJob } from '../../src/jobs/self-test-job.js';
import { openSqliteJobQueue } from '../../src/jobs/sqlite/sqlite-job-queue.js';
import { Worker } from '../../src/jobs/worker.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const fast = { 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50', 'jobs.shutdownGraceSeconds': '0' };

async function create(k: TestKiln, body: Record<string, unknown>): Promise<Job> {
  const res = await k.api('/jobs', { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return json<Job>(res);
}

async function settled(k: TestKiln, id: string): Promise<Job> {
  return until(`job ${id} to finish`, async () => {
    const j = await json<Job>(await k.api(`/jobs/${id}`));
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  });
}

/** Reads a streamed response, calling `onText` with everything received so far after each chunk. */
async function readStream(res: Response, onText?: (text: string) => Promise<void>): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    await onText?.(text);
  }
  return text;
}

describe('jobs API', () => {
  let k: TestKiln;
  let viewer: string;

  beforeAll(async () => {
    k = await startTestKiln(fast);
    const t = await json<{ secret: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'looker', role: 'viewer' } }));
    viewer = t.secret;
  });
  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
  });

  it('lists the job types with their input schemas', async () => {
    const { items } = await json<{ items: { type: string; apiCreatable: boolean; inputSchema: { properties: Record<string, unknown> } }[] }>(await k.api('/job-types'));
    const selfTest = items.find((t) => t.type === 'self-test');
    expect(selfTest).toMatchObject({ apiCreatable: true });
    expect(Object.keys(selfTest!.inputSchema.properties)).toEqual(['seconds', 'processes', 'fail']);
  });

  it('creates a job that the in-process worker runs; shows it, its log, and lists it', async () => {
    const res = await k.api('/jobs', { method: 'POST', json: { type: 'self-test', input: { seconds: 0 } } });
    expect(res.status).toBe(201);
    const job = await json<Job>(res);
    expect(res.headers.get('location')).toBe(`/api/v1/jobs/${job.id}`);
    expect(job).toMatchObject({ type: 'self-test', status: 'queued', input: { seconds: 0, processes: 2, fail: false }, createdBy: 'admin', maxAttempts: 1 });
    const done = await settled(k, job.id);
    expect(done).toMatchObject({ status: 'succeeded', result: { seconds: 0, processes: 2 }, progress: 100, stage: 'done' });
    const log = await k.api(`/jobs/${job.id}/logs`);
    expect(log.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const text = await log.text();
    expect(text).toContain('sleepers done');
    expect(text.trimEnd().endsWith('[kiln] succeeded')).toBe(true);

    const listed = await json<{ items: Job[]; next: string | null }>(await k.api('/jobs?status=succeeded,failed&type=self-test&limit=100'));
    expect(listed.items.map((j) => j.id)).toContain(job.id);
    expect(listed.items.every((j) => j.status === 'succeeded' || j.status === 'failed')).toBe(true);
    const page = await json<{ items: Job[]; next: string | null }>(await k.api('/jobs?limit=1'));
    expect(page.items).toHaveLength(1);
    expect(page.next).toBe(page.items[0]!.id);
    expect((await k.api('/jobs?status=done')).status).toBe(400);
  });

  it('refuses unknown types, bad input and unknown fields, with their codes', async () => {
    const problem = async (body: unknown) => {
      const res = await k.api('/jobs', { method: 'POST', json: body });
      return { status: res.status, ...(await json<{ code: string; detail: string }>(res)) };
    };
    expect(await problem({ type: 'rm-rf' })).toMatchObject({ status: 400, code: 'KILN_JOB_TYPE_UNKNOWN' });
    const bad = await problem({ type: 'self-test', input: { seconds: 99999, extra: 1 } });
    expect(bad).toMatchObject({ status: 400, code: 'KILN_JOB_INPUT_INVALID' });
    expect(bad.detail).toContain('/seconds');
    expect(await problem({ type: 'self-test', command: 'sh' })).toMatchObject({ status: 400, code: 'KILN_REQUEST_INVALID' });
    expect(await problem({ type: 'self-test', timeoutSeconds: 0 })).toMatchObject({ status: 400, code: 'KILN_REQUEST_INVALID' });
    const missing = await k.api(`/jobs/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect((await json<{ code: string }>(missing)).code).toBe('KILN_JOB_NOT_FOUND');
    expect((await k.api(`/jobs/${randomUUID()}/logs`)).status).toBe(404);
    expect((await k.api(`/jobs/${randomUUID()}/logs?follow=1`)).status).toBe(404);
    expect((await k.api(`/jobs/${randomUUID()}/cancel`, { method: 'POST' })).status).toBe(404);
  });

  it('viewers read jobs and logs; creating and cancelling need an operator', async () => {
    const job = await create(k, { type: 'self-test', input: { seconds: 0 } });
    const as = { authorization: `Bearer ${viewer}` };
    expect((await k.api(`/jobs/${job.id}`, { headers: as })).status).toBe(200);
    expect((await k.api('/jobs', { headers: as })).status).toBe(200);
    expect((await k.api(`/jobs/${job.id}/logs`, { headers: as })).status).toBe(200);
    const denied = await k.api('/jobs', { method: 'POST', headers: as, json: { type: 'self-test' } });
    expect(denied.status).toBe(403);
    expect((await json<{ code: string }>(denied)).code).toBe('KILN_AUTH_FORBIDDEN');
    expect((await k.api(`/jobs/${job.id}/cancel`, { method: 'POST', headers: as })).status).toBe(403);
    expect((await k.api('/jobs', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    await settled(k, job.id);
  });

  it('cancel: 202, the running tree is killed; 409 once finished', async () => {
    const job = await create(k, { type: 'self-test', input: { seconds: 60, processes: 2 } });
    const pids = await until('the process tree', async () => {
      const p = pidsIn(await (await k.api(`/jobs/${job.id}/logs`)).text());
      return p.length === 3 ? p : null;
    });
    const res = await k.api(`/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect((await json<Job>(res)).cancelRequestedAt).not.toBeNull();
    expect(await settled(k, job.id)).toMatchObject({ status: 'cancelled', error: { code: 'KILN_JOB_CANCELLED' } });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
    expect((await k.api(`/jobs/${job.id}/cancel`, { method: 'POST' })).status).toBe(202);
    const done = await create(k, { type: 'self-test', input: { seconds: 0 } });
    await settled(k, done.id);
    const refused = await k.api(`/jobs/${done.id}/cancel`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect((await json<{ code: string }>(refused)).code).toBe('KILN_JOB_NOT_CANCELLABLE');
  });

  it('follow=1 streams the log while the job runs and ends when it has ended', async () => {
    const job = await create(k, { type: 'self-test', input: { seconds: 2, processes: 1 } });
    const res = await k.api(`/jobs/${job.id}/logs?follow=1`);
    expect(res.status).toBe(200);
    let seenWhileRunning = false;
    const text = await readStream(res, async (sofar) => {
      if (!seenWhileRunning && sofar.includes('sleeper pid')) seenWhileRunning = (await json<Job>(await k.api(`/jobs/${job.id}`))).status === 'running';
    });
    expect(seenWhileRunning).toBe(true);
    expect(text).toContain('sleepers done');
    expect(text.trimEnd().endsWith('[kiln] succeeded')).toBe(true);
    expect((await json<Job>(await k.api(`/jobs/${job.id}`))).status).toBe('succeeded');
    // A finished job's followed log is its whole log, at once.
    expect(await (await k.api(`/jobs/${job.id}/logs?follow=1`)).text()).toBe(text);
  });

  it('kiln job: create -f, list, show, logs, cancel (the CLI from its sources)', async () => {
    const cli = async (...args: string[]) => {
      const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KILN_'))), KILN_SERVER: k.kiln.adminUrl, KILN_TOKEN: k.token };
      return run(process.execPath, ['--import', join(ROOT, 'test/integration/jobs-support/register-ts.mjs'), join(ROOT, 'src/cli/kiln.ts'), ...args], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    };
    const ok = await cli('job', 'create', 'self-test', '--input', '{"seconds":0,"processes":1}', '-f');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('sleepers done');
    const failing = await cli('job', 'create', 'self-test', '--input', '{"seconds":0,"fail":true}', '-f');
    expect(failing.code).toBe(1);
    expect(failing.stderr).toContain('failed: KILN_JOB_FAILED self-test was asked to fail');
    const listed = JSON.parse((await cli('-o', 'json', 'job', 'list', '--status', 'failed')).stdout) as Job[];
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((j) => j.status === 'failed')).toBe(true);
    const shown = JSON.parse((await cli('-o', 'json', 'job', 'show', listed[0]!.id)).stdout) as Job;
    expect(shown.id).toBe(listed[0]!.id);
    expect((await cli('job', 'logs', listed[0]!.id)).stdout).toContain('[kiln] failed: self-test was asked to fail');
    const long = await create(k, { type: 'self-test', input: { seconds: 60, processes: 1 } });
    const cancelled = await cli('-o', 'json', 'job', 'cancel', long.id);
    expect(cancelled.code).toBe(0);
    expect((await settled(k, long.id)).status).toBe('cancelled');
    const missing = await cli('job', 'show', randomUUID());
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('KILN_JOB_NOT_FOUND');
  });
});

describe('jobs across processes and shutdown', () => {
  it('a worker that is not the API process writes; the API follows its log live', async () => {
    const k = await startTestKiln({ ...fast, 'jobs.inProcess': 'false' });
    const queue = await openSqliteJobQueue({ path: join(k.dataDir, 'kiln.db'), clock: { now: () => new Date() } });
    const logs = new JobLogs(queue, await FsBlobStore.open(join(k.dataDir, 'blobs')));
    const worker = new Worker({
      queue, logs, types: jobRegistry([selfTestJob]), concurrency: 1, leaseSeconds: 10, heartbeatSeconds: 1, pollIntervalMs: 50,
      workRoot: join(k.dataDir, 'elsewhere'), clock: { now: () => new Date() }, runner: new SpawnProcessRunner(), log: quiet,
    });
    try {
      const job = await create(k, { type: 'self-test', input: { seconds: 1, processes: 1 } });
      const following = k.api(`/jobs/${job.id}/logs?follow=1`).then((r) => readStream(r));
      // Nobody runs it yet: the API's Kiln has no worker.
      expect((await json<Job>(await k.api(`/jobs/${job.id}`))).status).toBe('queued');
      await worker.start();
      const text = await following;
      expect(text).toContain(`on worker ${worker.id}`);
      expect(text).toContain('sleepers done');
      expect((await json<Job>(await k.api(`/jobs/${job.id}`))).status).toBe('succeeded');
    } finally {
      await worker.stop(0);
      await queue.close();
      await k.stop();
      await removeDir(k.dataDir);
    }
  });

  it('stopping Kiln ends its log followers and returns its running job to the queue, cleanly', async () => {
    const k = await startTestKiln(fast);
    try {
      const job = await create(k, { type: 'self-test', input: { seconds: 60, processes: 1 } });
      const res = await k.api(`/jobs/${job.id}/logs?follow=1`);
      const reading = readStream(res);
      await until('the job to run', async () => (await json<Job>(await k.api(`/jobs/${job.id}`))).status === 'running');
      expect(await k.kiln.close()).toBe(true);
      expect(await reading).toContain(`self-test: attempt 1 of 1`);
      const queue = await openSqliteJobQueue({ path: join(k.dataDir, 'kiln.db'), clock: { now: () => new Date() } });
      expect(await queue.get(job.id)).toMatchObject({ status: 'queued', attempts: 0, error: { code: 'KILN_JOB_INTERRUPTED' } });
      await queue.close();
    } finally {
      await removeDir(k.dataDir);
    }
  });
});
