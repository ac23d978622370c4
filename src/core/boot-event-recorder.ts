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
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly opts: RecorderOptions,
  ) {}

  /** Queues an event; resolves once it is durable (callers on the hot path need not wait). */
  record(event: NewBootEvent): Promise<void> {
    this.pending.push(event);
    const durable = new Promise<void>((resolve) => this.waiters.push(resolve));
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
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length > 0) {
        try {
          await this.store.recordBootEvents(batch, { lastSeenResolutionMs: this.opts.lastSeenResolutionMs ?? 0 });
        } catch (err) {
          this.opts.onError(err, batch.length);
        }
      }
      for (const w of waiters) w();
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
