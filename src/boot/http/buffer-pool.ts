// Reusable buffers of one size for the artifact path. A fresh buffer per chunk cost page faults,
// zeroing and garbage collection (11% of the Range path's CPU in GC alone, profiled).
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    /** Buffers kept when idle; more may be lent at once, the extra ones are left to the GC. */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.keep && buf.length === this.size) this.free.push(buf);
  }
}
