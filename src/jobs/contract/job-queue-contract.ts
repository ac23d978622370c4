// The JobQueue contract: every adapter (SQLite, PostgreSQL) must pass this suite. Time is a manual
// clock the tests move, so lease expiry and retry back-off are exact and never wait.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../core/error-catalogue.js';
import { KilnError } from '../../core/kiln-error.js';
import type { Clock } from '../../core/ports.js';
import type { Job, NewJob } from '../job.js';
import type { JobQueue } from '../job-queue.js';

/** A clock that stands still until told to move. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = '2030-01-01T00:00:00.000Z') {
    this.t = Date.parse(start);
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
  iso(offsetSeconds = 0): string {
    return new Date(this.t + offsetSeconds * 1000).toISOString();
  }
}

/** One empty database; `open` may be called several times for queues sharing it (several processes). */
export interface JobQueueDatabase {
  open(clock: Clock): Promise<JobQueue>;
  drop(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<KilnError> {
  const err = await p.then(
    (v) => new Error(`expected ${code}, but it resolved to ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe(code);
  return err as KilnError;
}

export function describeJobQueueContract(name: string, createDatabase: () => Promise<JobQueueDatabase>): void {
  describe(`JobQueue contract: ${name}`, () => {
    let db: JobQueueDatabase;
    let clock: ManualClock;
    const opened: JobQueue[] = [];
    let q: JobQueue;

    async function open(): Promise<JobQueue> {
      const queue = await db.open(clock);
      opened.push(queue);
      return queue;
    }

    async function fresh(): Promise<JobQueue> {
      db = await createDatabase();
      clock = new ManualClock();
      q = await open();
      return q;
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((x) => x.close()));
      await db?.drop();
    });

    const newJob = (over: Partial<NewJob> = {}): NewJob => ({
      id: randomUUID(), type: 'build', input: { n: 1 }, maxAttempts: 2, timeoutSeconds: 60, priority: 0, createdBy: 'alice', ...over,
    });

    it('stores a job as queued and reads it back', async () => {
      await fresh();
      const j = await q.enqueue(newJob({ input: { suite: 'bookworm', packages: ['a', 'b'] }, priority: 3 }));
      expect(j).toMatchObject({
        type: 'build', status: 'queued', stage: null, progress: null, input: { suite: 'bookworm', packages: ['a', 'b'] }, result: null, error: null,
        attempts: 0, maxAttempts: 2, timeoutSeconds: 60, priority: 3, workerId: null, leaseExpiresAt: null, cancelRequestedAt: null,
        createdBy: 'alice', createdAt: clock.iso(), runAfter: clock.iso(), startedAt: null, finishedAt: null, updatedAt: clock.iso(),
      });
      expect(await q.get(j.id)).toEqual(j);
      expect(await q.get(randomUUID())).toBeNull();
    });

    it('claims the highest priority first, then the oldest, only of the given types, each once', async () => {
      await fresh();
      const a = await q.enqueue(newJob());
      clock.advance(1);
      const b = await q.enqueue(newJob({ priority: 5 }));
      clock.advance(1);
      const c = await q.enqueue(newJob());
      const other = await q.enqueue(newJob({ type: 'customize', priority: 9 }));
      const order: string[] = [];
      for (;;) {
        const j = await q.claim('w1', ['build'], 30);
        if (j === null) break;
        order.push(j.id);
      }
      expect(order).toEqual([b.id, a.id, c.id]);
      expect((await q.get(other.id))!.status).toBe('queued');
      expect(await q.claim('w1', [], 30)).toBeNull();
      const claimed = await q.claim('w2', ['customize', 'build'], 30);
      expect(claimed).toMatchObject({
        id: other.id, status: 'running', attempts: 1, workerId: 'w2', leaseExpiresAt: clock.iso(30), startedAt: clock.iso(), updatedAt: clock.iso(),
      });
    });

    it('heartbeats extend the lease of the holder only; stage and progress are recorded', async () => {
      await fresh();
      const j = await q.enqueue(newJob());
      await q.claim('w1', ['build'], 30);
      clock.advance(20);
      expect(await q.heartbeat(j.id, 'w1', 30)).toEqual({ cancelRequested: false });
      expect((await q.get(j.id))!.leaseExpiresAt).toBe(clock.iso(30));
      await rejectsWith(q.heartbeat(j.id, 'w2', 30), 'KILN_JOB_LEASE_LOST');
      await rejectsWith(q.heartbeat(randomUUID(), 'w1', 30), 'KILN_JOB_NOT_FOUND');
      await q.report(j.id, 'w1', { stage: 'building_image' });
      await q.report(j.id, 'w1', { progress: 42.4 });
      await q.report(j.id, 'w1', { progress: 250 });
      expect(await q.get(j.id)).toMatchObject({ stage: 'building_image', progress: 100 });
      await q.report(j.id, 'w1', { progress: -3 });
      expect((await q.get(j.id))!.progress).toBe(0);
      await rejectsWith(q.report(j.id, 'w2', { stage: 'x' }), 'KILN_JOB_LEASE_LOST');
    });

    it('completes with a result; a finished job is no longer held by anyone', async () => {
      await fresh();
      const j = await q.enqueue(newJob());
      await q.claim('w1', ['build'], 30);
      clock.advance(3);
      const done = await q.complete(j.id, 'w1', { version: '2', artifacts: 3 });
      expect(done).toMatchObject({ status: 'succeeded', result: { version: '2', artifacts: 3 }, error: null, progress: 100, finishedAt: clock.iso(), leaseExpiresAt: null, workerId: 'w1' });
      await rejectsWith(q.complete(j.id, 'w1', {}), 'KILN_JOB_LEASE_LOST');
      await rejectsWith(q.heartbeat(j.id, 'w1', 30), 'KILN_JOB_LEASE_LOST');
      expect(await q.claim('w2', ['build'], 30)).toBeNull();
    });

    it('a failed attempt is retried from retryAt while attempts remain, then fails for good', async () => {
      await fresh();
      const j = await q.enqueue(newJob({ maxAttempts: 2 }));
      await q.claim('w1', ['build'], 30);
      const err = { code: 'KILN_JOB_FAILED', message: 'mirror unreachable' };
      const again = await q.fail(j.id, 'w1', err, { retryAt: clock.iso(10) });
      expect(again).toMatchObject({ status: 'queued', error: err, attempts: 1, workerId: null, leaseExpiresAt: null, runAfter: clock.iso(10), finishedAt: null });
      expect(await q.claim('w1', ['build'], 30)).toBeNull();
      clock.advance(10);
      const second = await q.claim('w2', ['build'], 30);
      expect(second).toMatchObject({ id: j.id, attempts: 2, workerId: 'w2', error: err });
      const failed = await q.fail(j.id, 'w2', { code: 'KILN_JOB_FAILED', message: 'still unreachable' }, { retryAt: clock.iso() });
      expect(failed).toMatchObject({ status: 'failed', attempts: 2, error: { message: 'still unreachable' }, finishedAt: clock.iso() });
      const one = await q.enqueue(newJob({ maxAttempts: 5 }));
      await q.claim('w1', ['build'], 30);
      expect(await q.fail(one.id, 'w1', err)).toMatchObject({ status: 'failed', attempts: 1 });
      await rejectsWith(q.fail(one.id, 'w1', err), 'KILN_JOB_LEASE_LOST');
    });

    it('release gives the job back without counting the attempt', async () => {
      await fresh();
      const j = await q.enqueue(newJob({ maxAttempts: 1 }));
      await q.claim('w1', ['build'], 30);
      const back = await q.release(j.id, 'w1', { code: 'KILN_JOB_INTERRUPTED', message: 'worker w1 stopped' });
      expect(back).toMatchObject({ status: 'queued', attempts: 0, workerId: null, error: { code: 'KILN_JOB_INTERRUPTED' } });
      expect(await q.claim('w2', ['build'], 30)).toMatchObject({ id: j.id, attempts: 1 });
    });

    it('expired leases: queued again while attempts remain, then failed with the reason; never stuck running', async () => {
      await fresh();
      const j = await q.enqueue(newJob({ maxAttempts: 2 }));
      await q.claim('w1', ['build'], 10);
      clock.advance(10);
      expect(await q.expireLeases()).toEqual([]);
      clock.advance(1);
      const [requeued] = await q.expireLeases();
      expect(requeued).toMatchObject({ id: j.id, status: 'queued', attempts: 1, workerId: null, leaseExpiresAt: null, error: { code: 'KILN_JOB_LEASE_EXPIRED' } });
      expect(requeued!.error!.message).toContain('worker w1 stopped renewing its lease during attempt 1 of 2');
      await rejectsWith(q.heartbeat(j.id, 'w1', 10), 'KILN_JOB_LEASE_LOST');
      await q.claim('w2', ['build'], 10);
      clock.advance(5);
      await q.heartbeat(j.id, 'w2', 10);
      clock.advance(9);
      expect(await q.expireLeases()).toEqual([]);
      clock.advance(2);
      const [failed] = await q.expireLeases();
      expect(failed).toMatchObject({ id: j.id, status: 'failed', attempts: 2, finishedAt: clock.iso(), error: { code: 'KILN_JOB_LEASE_EXPIRED' } });
      expect(failed!.error!.message).toContain('no attempts left');
      expect(await q.list({ status: ['running'], limit: 10 })).toEqual([]);
    });

    it('cancel: a queued job at once, a running one through its worker, a finished one never', async () => {
      await fresh();
      const queued = await q.enqueue(newJob());
      const running = await q.enqueue(newJob());
      const c = await q.requestCancel(queued.id);
      expect(c).toMatchObject({ status: 'cancelled', finishedAt: clock.iso(), cancelRequestedAt: clock.iso(), error: { code: 'KILN_JOB_CANCELLED' } });
      expect(await q.requestCancel(queued.id)).toMatchObject({ status: 'cancelled' });
      expect(await q.claim('w1', ['build'], 30)).toMatchObject({ id: running.id });
      expect(await q.heartbeat(running.id, 'w1', 30)).toEqual({ cancelRequested: false });
      clock.advance(1);
      expect(await q.requestCancel(running.id)).toMatchObject({ status: 'running', cancelRequestedAt: clock.iso() });
      expect(await q.requestCancel(running.id)).toMatchObject({ status: 'running' });
      expect(await q.heartbeat(running.id, 'w1', 30)).toEqual({ cancelRequested: true });
      const stopped = await q.cancelled(running.id, 'w1', { code: 'KILN_JOB_CANCELLED', message: 'stopped' });
      expect(stopped).toMatchObject({ status: 'cancelled', finishedAt: clock.iso(), leaseExpiresAt: null });
      const done = await q.enqueue(newJob());
      await q.claim('w1', ['build'], 30);
      await q.complete(done.id, 'w1', null);
      await rejectsWith(q.requestCancel(done.id), 'KILN_JOB_NOT_CANCELLABLE');
      await rejectsWith(q.requestCancel(randomUUID()), 'KILN_JOB_NOT_FOUND');
    });

    it('a running job asked to cancel whose worker died ends cancelled, not retried', async () => {
      await fresh();
      const j = await q.enqueue(newJob({ maxAttempts: 3 }));
      await q.claim('w1', ['build'], 10);
      await q.requestCancel(j.id);
      clock.advance(11);
      const [moved] = await q.expireLeases();
      expect(moved).toMatchObject({ id: j.id, status: 'cancelled', error: { code: 'KILN_JOB_CANCELLED' } });
      expect(await q.claim('w2', ['build'], 10)).toBeNull();
    });

    it('lists newest first, filtered by status and type, in pages that cover every job once', async () => {
      await fresh();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await q.enqueue(newJob({ type: i % 2 === 0 ? 'build' : 'customize' }))).id);
        clock.advance(1);
      }
      await q.claim('w1', ['build'], 30);
      expect((await q.list({ limit: 100 })).map((j) => j.id)).toEqual([...ids].reverse());
      expect((await q.list({ type: 'customize', limit: 100 })).map((j) => j.id)).toEqual([ids[5], ids[3], ids[1]]);
      expect((await q.list({ status: ['running'], limit: 100 })).map((j) => j.id)).toEqual([ids[0]]);
      expect((await q.list({ status: ['running', 'queued'], type: 'build', limit: 100 })).map((j) => j.id)).toEqual([ids[6], ids[4], ids[2], ids[0]]);
      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await q.list({ limit: 3, after });
        seen.push(...page.map((j) => j.id));
        if (page.length < 3) break;
        after = page[page.length - 1]!.id;
      }
      expect(seen).toEqual([...ids].reverse());
    });

    it('log chunks: appended in order with their offsets, read from a sequence number on', async () => {
      await fresh();
      const j = await q.enqueue(newJob());
      const a = await q.appendLogChunk(j.id, { sha256: 'a'.repeat(64), size: 10 });
      const b = await q.appendLogChunk(j.id, { sha256: 'b'.repeat(64), size: 5 });
      const c = await q.appendLogChunk(j.id, { sha256: 'a'.repeat(64), size: 10 });
      expect([a, b, c].map((x) => [x.seq, x.start, x.size])).toEqual([[0, 0, 10], [1, 10, 5], [2, 15, 10]]);
      expect(await q.logChunks(j.id)).toEqual([a, b, c]);
      expect(await q.logChunks(j.id, { afterSeq: 0 })).toEqual([b, c]);
      expect(await q.logChunks(j.id, { afterSeq: 0, limit: 1 })).toEqual([b]);
      const other = await q.enqueue(newJob());
      expect(await q.logChunks(other.id)).toEqual([]);
      await rejectsWith(q.appendLogChunk(randomUUID(), { sha256: 'c'.repeat(64), size: 1 }), 'KILN_JOB_NOT_FOUND');
    });

    it('concurrent claimers on separate connections never get the same job (4 x 50)', async () => {
      await fresh();
      const queues = [q, await open(), await open(), await open()];
      const ids = new Set<string>();
      for (let i = 0; i < 50; i++) ids.add((await q.enqueue(newJob())).id);
      const claimedBy = await Promise.all(
        queues.map(async (queue, w) => {
          const mine: Job[] = [];
          for (;;) {
            const j = await queue.claim(`w${w}`, ['build'], 30);
            if (j === null) return mine;
            mine.push(j);
          }
        }),
      );
      const all = claimedBy.flat().map((j) => j.id);
      expect(all.length).toBe(50);
      expect(new Set(all)).toEqual(ids);
      for (const [w, mine] of claimedBy.entries()) for (const j of mine) expect((await q.get(j.id))!.workerId).toBe(`w${w}`);
    });
  });
}
