// The logger shape the PXE listeners take (a pino logger fits), and a per-key limiter so that a flood of
// bad packets costs a few log lines per minute instead of one per packet.

export interface PxeLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  debug(obj: Record<string, unknown>, msg: string): void;
}

export interface LogLimiterOptions {
  /** Lines allowed per key in each window. */
  burst?: number;
  windowMs?: number;
  now?: () => number;
}

export class LogLimiter {
  private readonly burst: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly windows = new Map<string, { start: number; logged: number; suppressed: number }>();

  constructor(opts: LogLimiterOptions = {}) {
    this.burst = opts.burst ?? 10;
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Returns the fields to log (with `suppressed` set when lines were dropped since the last one), or null
   * when this line is over the limit. Keys are few and fixed (one per kind of problem), so the map stays small.
   */
  admit(key: string, fields: Record<string, unknown>): Record<string, unknown> | null {
    const now = this.now();
    let w = this.windows.get(key);
    if (w === undefined || now - w.start >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(key, w);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    if (w.logged >= this.burst) {
      w.suppressed++;
      return null;
    }
    w.logged++;
    return fields;
  }
}
