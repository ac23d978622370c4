// Job logs as blobs: a writer buffers output and stores it as a chunk blob every second (or 64 KiB),
// indexed in the queue; readers concatenate the chunks, and followers poll the index until the job
// ends. Nothing lives only in memory, so a worker on one machine writes what a replica on another streams.
import { Readable } from 'node:stream';
import type { BlobStore } from '../core/ports.js';
import { KilnError } from '../core/kiln-error.js';
import { isFinished } from './job.js';
import type { JobQueue } from './job-queue.js';

export interface JobLogWriterOptions {
  /** Buffered output is stored at least this often (default 1000 ms). */
  flushMs?: number;
  /** ...and as soon as this much is buffered (default 64 KiB). */
  flushBytes?: number;
  /** Held back while the store is unavailable; beyond this the oldest output is dropped (default 8 MiB). */
  maxBufferedBytes?: number;
  onError?: (err: unknown) => void;
}

/** What a job writes to: lines of its own and its commands' raw output. */
export interface JobLog {
  /** Appends `text` and a newline. */
  line(text: string): void;
  /** Appends output as it is. */
  write(chunk: string | Buffer): void;
}

export class JobLogWriter implements JobLog {
  private buffered: Buffer[] = [];
  private size = 0;
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly flushMs: number;
  private readonly flushBytes: number;
  private readonly maxBuffered: number;

  constructor(
    private readonly queue: JobQueue,
    private readonly blobs: BlobStore,
    private readonly jobId: string,
    private readonly opts: JobLogWriterOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? 1000;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
  }

  line(text: string): void {
    this.write(`${text}\n`);
  }

  write(chunk: string | Buffer): void {
    if (this.closed) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (b.length === 0) return;
    this.buffered.push(b);
    this.size += b.length;
    while (this.size > this.maxBuffered && this.buffered.length > 1) {
      const old = this.buffered.shift()!;
      this.size -= old.length;
      this.dropped += old.length;
    }
    if (this.size >= this.flushBytes) void this.flush();
    else if (this.timer === null) this.timer = setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Stores what is buffered; resolves when it is in the index (or failed and is buffered again). */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.chain = this.chain.then(() => this.store());
    return this.chain;
  }

  private async store(): Promise<void> {
    if (this.size === 0 && this.dropped === 0) return;
    const parts = this.buffered;
    const size = this.size;
    const dropped = this.dropped;
    this.buffered = [];
    this.size = 0;
    this.dropped = 0;
    const note = dropped > 0 ? [Buffer.from(`[kiln] ${dropped} bytes of output were lost while the log store was unavailable\n`)] : [];
    const body = Buffer.concat([...note, ...parts]);
    try {
      const blob = await this.blobs.put(Readable.from([body]), { expectedSize: body.length });
      await this.queue.appendLogChunk(this.jobId, blob);
    } catch (err) {
      this.opts.onError?.(err);
      // Kept for the next flush, ahead of anything written meanwhile.
      this.buffered = [...parts, ...this.buffered];
      this.size += size;
      this.dropped += dropped;
      if (!this.closed && this.timer === null) this.timer = setTimeout(() => void this.flush(), this.flushMs);
    }
  }

  /** Final flush; later writes are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    // A few tries: the end of a log is what people read first.
    for (let i = 0; i < 3; i++) {
      await this.flush();
      if (this.size === 0) break;
      await new Promise((r) => setTimeout(r, 250 * (i + 1)));
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Reading logs back: whole, or followed live until the job ends. */
export class JobLogs {
  constructor(
    private readonly queue: JobQueue,
    private readonly blobs: BlobStore,
    private readonly opts: { pollMs?: number } = {},
  ) {}

  writer(jobId: string, opts?: JobLogWriterOptions): JobLogWriter {
    return new JobLogWriter(this.queue, this.blobs, jobId, opts);
  }

  /** Appends one line at once (the lease sweeper's notes; not for output in bulk). */
  async appendLine(jobId: string, text: string): Promise<void> {
    const w = this.writer(jobId);
    w.line(text);
    await w.close();
  }

  /** The log as stored so far. KILN_JOB_NOT_FOUND. */
  async read(jobId: string): Promise<Readable> {
    await this.mustExist(jobId);
    return Readable.from(this.chunks(jobId, null));
  }

  /**
   * The stored log, then whatever is added, until the job has finished and everything it wrote has
   * been sent, or `signal` aborts (client gone, server stopping). KILN_JOB_NOT_FOUND.
   */
  async follow(jobId: string, signal: AbortSignal): Promise<Readable> {
    await this.mustExist(jobId);
    return Readable.from(this.chunks(jobId, signal));
  }

  private async mustExist(jobId: string): Promise<void> {
    if ((await this.queue.get(jobId)) === null) throw new KilnError('KILN_JOB_NOT_FOUND', `no job ${jobId}`);
  }

  private async *chunks(jobId: string, follow: AbortSignal | null): AsyncGenerator<Buffer> {
    let after: number | undefined;
    for (;;) {
      // Status before chunks: a worker stores its last output before it records the end, so once
      // the end is seen, one more read of the index has all of it.
      const finished = follow === null || isFinished((await this.queue.get(jobId))?.status ?? 'failed');
      const chunks = await this.queue.logChunks(jobId, { afterSeq: after, limit: 100 });
      for (const c of chunks) {
        const stream = await this.blobs.read(c.sha256);
        for await (const part of stream) yield part as Buffer;
        after = c.seq;
      }
      if (chunks.length === 100) continue;
      if (finished || follow === null || follow.aborted) return;
      await sleep(this.opts.pollMs ?? 500, follow);
      if (follow.aborted) return;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
