// Job logs on a real SQLite queue and fs blob store: chunking, reading back, and output kept while
// the blob store fails (a strict wrapper that refuses writes while told to).
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../blobs/fs/fs-blob-store.js';
import type { BlobInfo, BlobStore, PutBlobOptions } from '../core/ports.js';
import { ManualClock } from './contract/job-queue-contract.js';
import { JobLogs } from './job-logs.js';
import type { JobQueue } from './job-queue.js';
import { openSqliteJobQueue } from './sqlite/sqlite-job-queue.js';

/** Passes through to a real blob store, except that `put` fails while `down`. */
class FlakyBlobs {
  down = false;
  puts = 0;
  constructor(private readonly inner: BlobStore) {}
  put(body: Readable, opts: PutBlobOptions): Promise<BlobInfo> {
    if (this.down) return Promise.reject(new Error('blob store down'));
    this.puts++;
    return this.inner.put(body, opts);
  }
  read(sha256: string): Promise<Readable> {
    return this.inner.read(sha256);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(): Promise<{ queue: JobQueue; blobs: FlakyBlobs; logs: JobLogs; jobId: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-joblogs-'));
  const queue = await openSqliteJobQueue({ path: join(dir, 'kiln.db'), clock: new ManualClock(), migrate: true });
  const blobs = new FlakyBlobs(await FsBlobStore.open(join(dir, 'blobs')));
  cleanups.push(async () => {
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  });
  const logs = new JobLogs(queue, blobs as unknown as BlobStore);
  const job = await queue.enqueue({ id: randomUUID(), type: 't', input: {}, maxAttempts: 1, timeoutSeconds: 60, priority: 0, createdBy: null });
  return { queue, blobs, logs, jobId: job.id };
}

async function text(logs: JobLogs, id: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of await logs.read(id)) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

describe('JobLogWriter and JobLogs', () => {
  it('stores output in chunks as it grows; readers get it back whole, in order', async () => {
    const { queue, logs, jobId } = await setup();
    const w = logs.writer(jobId, { flushBytes: 16, flushMs: 60_000 });
    w.line('first line of output');
    w.write(Buffer.from('second, '));
    w.write('raw\n');
    await w.flush();
    expect(await text(logs, jobId)).toBe('first line of output\nsecond, raw\n');
    w.line('after the flush');
    await w.close();
    w.line('ignored after close');
    await w.flush();
    const chunks = await queue.logChunks(jobId);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.reduce((n, c) => n + c.size, 0)).toBe('first line of output\nsecond, raw\nafter the flush\n'.length);
    expect(await text(logs, jobId)).toBe('first line of output\nsecond, raw\nafter the flush\n');
  });

  it('keeps output while the blob store fails and stores it, in order, once it answers', async () => {
    const { blobs, logs, jobId } = await setup();
    const errors: unknown[] = [];
    const w = logs.writer(jobId, { flushMs: 60_000, onError: (e) => errors.push(e) });
    blobs.down = true;
    w.line('one');
    await w.flush();
    w.line('two');
    await w.flush();
    expect(errors).toHaveLength(2);
    expect(await text(logs, jobId)).toBe('');
    blobs.down = false;
    w.line('three');
    await w.close();
    expect(await text(logs, jobId)).toBe('one\ntwo\nthree\n');
  });

  it('drops the oldest output beyond its buffer limit, and says so', async () => {
    const { blobs, logs, jobId } = await setup();
    const w = logs.writer(jobId, { flushMs: 60_000, flushBytes: 1 << 20, maxBufferedBytes: 10 });
    blobs.down = true;
    w.write('aaaaaaaa');
    await w.flush();
    w.write('bbbbbbbb');
    w.write('cccc');
    blobs.down = false;
    await w.close();
    expect(await text(logs, jobId)).toBe('[kiln] 16 bytes of output were lost while the log store was unavailable\ncccc');
  });

  it('an unknown job has no log', async () => {
    const { logs } = await setup();
    await expect(logs.read(randomUUID())).rejects.toMatchObject({ code: 'KILN_JOB_NOT_FOUND' });
    await expect(logs.follow(randomUUID(), new AbortController().signal)).rejects.toMatchObject({ code: 'KILN_JOB_NOT_FOUND' });
  });
});
