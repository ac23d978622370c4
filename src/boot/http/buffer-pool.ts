// Reusable buffers for the artifact path. A fresh buffer per chunk cost page faults, zeroing and
// garbage collection (11% of the Range path's CPU in GC alone, profiled); pooled ones cost none.
// Sizes are powers of two so that a few classes cover every chunk size the path picks.
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();

  constructor(
    /** Bytes kept per size class when idle; more may be lent at once, the extra ones are left to the GC. */
    private readonly keepBytes: number,
  ) {}

  take(size: number): Buffer {
    return this.free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  give(buf: Buffer): void {
    let list = this.free.get(buf.length);
    if (list === undefined) this.free.set(buf.length, (list = []));
    if ((list.length + 1) * buf.length <= this.keepBytes) list.push(buf);
  }
}
