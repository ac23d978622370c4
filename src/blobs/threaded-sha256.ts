// SHA-256 on a worker thread, so that hashing an upload overlaps with receiving and storing it:
// hashing was half of the upload path's main-thread time (profiled), and the loop sat idle for
// another quarter while it waited. Workers are kept for the next upload.
import { Worker } from 'node:worker_threads';

// An eval'd worker: it runs the same from src (tests) and dist, with nothing to resolve.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'digest') {
    parentPort.postMessage({ digest: hash.digest('hex') });
    hash = createHash('sha256');
  } else {
    hash.update(m);
    // The batch goes back for reuse: fresh 1 MiB buffers left to this thread's GC piled up (+96 MiB RSS).
    parentPort.postMessage({ hashed: m }, [m.buffer]);
  }
});
`;

/** Bytes sent to the worker at a time, and at most waiting there before `update` asks the caller to wait. */
const BATCH = 1024 * 1024;
const MAX_QUEUED = 4 * BATCH;
const KEEP_IDLE = 2;
const idle: Worker[] = [];

function spawn(): Worker {
  const w = new Worker(SOURCE, { eval: true });
  w.unref();
  return w;
}

export class ThreadedSha256 {
  private worker: Worker | null;
  private batch: Buffer | null = null;
  /** Batches the worker has hashed and handed back. */
  private readonly spare: Buffer[] = [];
  private used = 0;
  private queued = 0;
  /** Bytes reached the worker since its last digest: its hash holds them, so it cannot serve another upload. */
  private dirty = false;
  private failure: Error | null = null;
  private drained: (() => void) | null = null;
  private digested: { resolve: (d: string) => void; reject: (e: Error) => void } | null = null;

  constructor() {
    const w = idle.pop() ?? spawn();
    this.worker = w;
    w.on('message', (m: { hashed?: Uint8Array; digest?: string }) => {
      if (m.hashed !== undefined) {
        this.queued -= m.hashed.byteLength;
        if (m.hashed.buffer.byteLength === BATCH) this.spare.push(Buffer.from(m.hashed.buffer));
        if (this.queued <= MAX_QUEUED / 2) this.wake();
      } else if (m.digest !== undefined) {
        this.dirty = false;
        this.digested?.resolve(m.digest);
        this.digested = null;
      }
    });
    w.once('error', (err) => this.fail(err));
    w.once('exit', () => this.fail(new Error('the hashing thread exited')));
  }

  /** Queues bytes (copied); a promise when the caller should wait before sending more. */
  update(chunk: Buffer): Promise<void> | null {
    if (this.failure !== null) return Promise.reject(this.failure);
    let off = 0;
    while (off < chunk.length) {
      this.batch ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(BATCH);
      const n = Math.min(chunk.length - off, BATCH - this.used);
      chunk.copy(this.batch, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.used === BATCH) this.send();
    }
    if (this.queued <= MAX_QUEUED) return null;
    return new Promise<void>((resolve) => (this.drained = resolve));
  }

  /** The hex digest of everything passed to update. */
  digest(): Promise<string> {
    if (this.failure !== null) return Promise.reject(this.failure);
    this.send();
    return new Promise<string>((resolve, reject) => {
      this.digested = { resolve, reject };
      this.worker!.postMessage('digest');
    });
  }

  /** Gives the worker back (or ends it if it failed or is mid-hash). Idempotent. */
  release(): void {
    const w = this.worker;
    if (w === null) return;
    this.worker = null;
    w.removeAllListeners('message');
    w.removeAllListeners('error');
    w.removeAllListeners('exit');
    // A worker holding part of an abandoned upload would start the next one mid-hash.
    if (this.failure === null && !this.dirty && this.digested === null && idle.length < KEEP_IDLE) idle.push(w);
    else void w.terminate();
    this.fail(new Error('the hash was released'));
  }

  private send(): void {
    if (this.batch === null || this.used === 0) return;
    const bytes = this.used === BATCH ? this.batch : this.batch.subarray(0, this.used);
    this.queued += bytes.length;
    this.dirty = true;
    // Transferred, not copied: the worker owns the batch from here.
    this.worker!.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    this.batch = null;
    this.used = 0;
  }

  private wake(): void {
    const d = this.drained;
    this.drained = null;
    d?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.digested?.reject(this.failure);
    this.digested = null;
    this.wake();
  }
}
