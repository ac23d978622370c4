// Artifact bytes kept in memory once read. In a boot storm thousands of machines fetch the same
// kernel and initrd; without this every MiB sent cost a read syscall, a thread-pool round trip and a
// copy out of the page cache, per machine. Blobs are content-addressed, so a cached chunk can never
// be stale: a chunk is only ever dropped to stay within the budget.

export interface HotChunkOptions {
  /** Bytes of chunks kept at most; 0 turns the cache off. */
  budgetBytes: number;
  /** Chunk size: reads and cache entries are aligned to it. */
  chunkBytes: number;
  /** Larger blobs are not cached (one big image streamed once must not evict a whole fleet's kernels). */
  maxBlobBytes: number;
}

/** Fills `buffer` completely with the blob's bytes from `position` on; rejects if it cannot. */
export type FillChunk = (buffer: Buffer, position: number) => Promise<void>;

/** A blob's bytes as aligned, shared, read-only chunks. */
export interface ChunkedBytes {
  readonly chunkBytes: number;
  /** Chunk `index` (the last one may be shorter). Callers must not write into it. */
  chunk(index: number): Promise<Buffer>;
}

interface Entry {
  bytes: Promise<Buffer>;
  length: number;
}

export class HotChunks {
  /** Key `sha256:index`; Map order is the recency order (oldest first). */
  private readonly entries = new Map<string, Entry>();
  private held = 0;

  constructor(private readonly opts: HotChunkOptions) {
    if (!(opts.chunkBytes > 0)) throw new RangeError('chunkBytes must be positive');
  }

  get chunkBytes(): number {
    return this.opts.chunkBytes;
  }

  /** Bytes held now (loading chunks included). */
  get bytesHeld(): number {
    return this.held;
  }

  admits(blobSize: number): boolean {
    return this.opts.budgetBytes > 0 && blobSize > 0 && blobSize <= this.opts.maxBlobBytes;
  }

  /** The blob's chunks, read through `fill` on a miss; undefined when the blob is not cached (see admits). */
  bytesOf(sha256: string, blobSize: number, fill: FillChunk): ChunkedBytes | undefined {
    if (!this.admits(blobSize)) return undefined;
    return { chunkBytes: this.opts.chunkBytes, chunk: (index) => this.chunk(sha256, blobSize, index, fill) };
  }

  /** Concurrent requests for a missing chunk share one read. A failed read is not cached. */
  private chunk(sha256: string, blobSize: number, index: number, fill: FillChunk): Promise<Buffer> {
    const key = `${sha256}:${index}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.bytes;
    }
    const start = index * this.opts.chunkBytes;
    const length = Math.min(this.opts.chunkBytes, blobSize - start);
    if (!Number.isInteger(index) || index < 0 || length <= 0) return Promise.reject(new RangeError(`chunk ${index} is outside a blob of ${blobSize} bytes`));
    const buffer = Buffer.allocUnsafeSlow(length);
    const entry: Entry = { bytes: fill(buffer, start).then(() => buffer), length };
    this.entries.set(key, entry);
    this.held += length;
    entry.bytes.catch(() => this.drop(key, entry));
    this.evict(key);
    return entry.bytes;
  }

  private drop(key: string, entry: Entry): void {
    if (this.entries.get(key) !== entry) return;
    this.entries.delete(key);
    this.held -= entry.length;
  }

  /** Drops the least recently used chunks until the budget holds; never `keep`, the one just asked for. */
  private evict(keep: string): void {
    for (const [key, entry] of this.entries) {
      if (this.held <= this.opts.budgetBytes) return;
      if (key !== keep) this.drop(key, entry);
    }
  }
}
