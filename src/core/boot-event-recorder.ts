// Batches boot events so a storm of thousands of machines costs one write transaction per tick, not per request.
import type { NewBootEvent, Store } from './ports.js';

export interface RecorderOptions {
  /** Longest time an event waits before it is written. */
  flushIntervalMs: number;
  /** Write at once when this many events are waiting. */
  maxBatch: number;
  /** A machine's stored last seen is rewritten by stateless events at most this often (0: always). */
  lastSeenResolutionMs?: number;
  onError: (err: unknown, dropped: number) => void;
}

export class BootEventRecorder {
  private pending: NewBootEvent[] = [];
  /** Settles when the pending batch is written; one promise per batch, not per event (hot path). */
  private durable: { promise: Promise<void>; resolve: () => void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    /** Where batches go: the store, or in a SQLite cluster the primary process, which writes for all workers. */
    private readonly store: Pick<Store, 'recordBootEvents'>,
    private readonly opts: RecorderOptions,
  ) {}

  /** Queues an event; resolves once it is durable (callers on the hot path need not wait). */
  record(event: NewBootEvent): Promise<void> {
    this.pending.push(event);
    if (this.durable === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.durable = { promise, resolve };
    }
    const durable = this.durable.promise;
    if (this.pending.length >= this.opts.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushIntervalMs);
    return durable;
  }

  /** Writes everything queued so far. Batches are written one after another, in order. */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.pending;
    const durable = this.durable;
    this.pending = [];
    this.durable = null;
    this.flushing = this.flushing.then(async () => {
      if (batch.length > 0) {
        try {
          await this.store.recordBootEvents(batch, { lastSeenResolutionMs: this.opts.lastSeenResolutionMs ?? 0 });
        } catch (err) {
          this.opts.onError(err, batch.length);
        }
      }
      durable?.resolve();
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
