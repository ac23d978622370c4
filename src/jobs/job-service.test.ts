// JobService's rules over a real SQLite queue: which types may be started how, input checked with
// defaults applied, limits on timeouts and attempts; and the registry's own rules.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from 'typebox';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../core/ports.js';
import { ManualClock } from './contract/job-queue-contract.js';
import { JobLogs } from './job-logs.js';
import { JobService } from './job-service.js';
import { defineJobType, jobRegistry } from './job-types.js';
import { selfTestJob } from './self-test-job.js';
import { openSqliteJobQueue } from './sqlite/sqlite-job-queue.js';

const internalJob = defineJobType({
  type: 'internal-build', description: 'started by Kiln only', inputSchema: Type.Object({ image: Type.String() }, { additionalProperties: false }),
  apiCreatable: false, timeoutSeconds: 600, maxAttempts: 2, run: async () => null,
});
const strayJob = defineJobType({ ...internalJob, type: 'stray' });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function service(): Promise<JobService> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-jobsvc-'));
  const queue = await openSqliteJobQueue({ path: join(dir, 'kiln.db'), clock: new ManualClock(), migrate: true });
  cleanups.push(async () => {
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  });
  // Strict: nothing here reads or writes logs.
  const noBlobs = new Proxy({}, { get: (_t, p) => { throw new Error(`unexpected blob store call ${String(p)}`); } }) as BlobStore;
  return new JobService(queue, jobRegistry([selfTestJob, internalJob]), new JobLogs(queue, noBlobs), { id: () => randomUUID(), secret: () => '' }, new ManualClock());
}

describe('JobService', () => {
  it("creates API types with the type's defaults and the input's defaults filled in", async () => {
    const s = await service();
    const woken: string[] = [];
    s.onEnqueued((j) => woken.push(j.id));
    const j = await s.create('self-test', { seconds: 5 }, { actor: 'op' });
    expect(j).toMatchObject({ type: 'self-test', input: { seconds: 5, processes: 2, fail: false }, timeoutSeconds: 3900, maxAttempts: 1, priority: 0, createdBy: 'op' });
    expect(woken).toEqual([j.id]);
    const custom = await s.create('self-test', {}, { actor: null, timeoutSeconds: 30, maxAttempts: 4, priority: 7 });
    expect(custom).toMatchObject({ timeoutSeconds: 30, maxAttempts: 4, priority: 7 });
  });

  it('keeps Kiln-only types away from the API; Kiln starts them with typed input', async () => {
    const s = await service();
    await expect(s.create('internal-build', { image: 'debian' }, { actor: 'op' })).rejects.toMatchObject({ code: 'KILN_JOB_TYPE_NOT_CREATABLE' });
    await expect(s.create('nope', {}, { actor: 'op' })).rejects.toMatchObject({ code: 'KILN_JOB_TYPE_UNKNOWN' });
    expect(await s.start(internalJob, { image: 'debian' }, { actor: 'ims' })).toMatchObject({ type: 'internal-build', maxAttempts: 2, input: { image: 'debian' } });
    await expect(s.start(strayJob, { image: 'x' }, { actor: 'ims' })).rejects.toMatchObject({ code: 'KILN_JOB_TYPE_UNKNOWN' });
    expect(s.listTypes().map((t) => [t.type, t.apiCreatable])).toEqual([['internal-build', false], ['self-test', true]]);
  });

  it('checks input, timeouts and attempts', async () => {
    const s = await service();
    await expect(s.create('self-test', { seconds: -1 }, { actor: null })).rejects.toMatchObject({ code: 'KILN_JOB_INPUT_INVALID' });
    await expect(s.create('self-test', { command: 'rm -rf /' }, { actor: null })).rejects.toMatchObject({ code: 'KILN_JOB_INPUT_INVALID' });
    await expect(s.create('self-test', {}, { actor: null, timeoutSeconds: 0 })).rejects.toMatchObject({ code: 'KILN_REQUEST_INVALID' });
    await expect(s.create('self-test', {}, { actor: null, maxAttempts: 1000 })).rejects.toMatchObject({ code: 'KILN_REQUEST_INVALID' });
    await expect(s.get(randomUUID())).rejects.toMatchObject({ code: 'KILN_JOB_NOT_FOUND' });
    expect(await s.list({ limit: 10 })).toEqual([]);
  });

  it('the registry takes each type once, under a valid name', () => {
    expect(() => jobRegistry([selfTestJob, selfTestJob])).toThrow(/registered twice/);
    expect(() => jobRegistry([{ ...selfTestJob, type: 'Bad Name' }])).toThrow(/job type name/);
  });
});

describe('JobService without a queue', () => {
  it('answers KILN_UNAVAILABLE', async () => {
    const s = JobService.unavailable({ id: () => 'x', secret: () => 'y' }, new ManualClock());
    await expect(s.list({ limit: 1 })).rejects.toMatchObject({ code: 'KILN_UNAVAILABLE' });
    await expect(s.readLog('x')).rejects.toMatchObject({ code: 'KILN_UNAVAILABLE' });
    expect(s.listTypes()).toEqual([]);
  });
});
