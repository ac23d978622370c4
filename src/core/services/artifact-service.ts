// Artifacts: streaming, verified uploads into the blob store, and their records.
import type { Readable } from 'node:stream';
import { KilnError } from '../kiln-error.js';
import type { BlobReader, BlobStore, ByteRange, Clock, PutBlobOptions, Store } from '../ports.js';
import type { ChunkedBytes, HotChunks } from '../hot-chunks.js';
import type { Artifact } from '../types.js';
import { validateSha256 } from '../validate.js';

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export class ArtifactService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    /** Keeps the bytes of small, hot artifacts (kernels, initrds) in memory; null: every read goes to the blob store. */
    private readonly hot: HotChunks | null = null,
  ) {}

  /** Stores the bytes once (identical content is deduplicated by its sha256) and records the artifact. */
  async upload(body: Readable, opts: PutBlobOptions & { mediaType?: string | undefined }): Promise<{ artifact: Artifact; created: boolean }> {
    if (opts.expectedSha256 !== undefined) validateSha256(opts.expectedSha256);
    const mediaType = (opts.mediaType ?? 'application/octet-stream').toLowerCase();
    if (!MEDIA_TYPE.test(mediaType)) throw new KilnError('KILN_REQUEST_INVALID', `invalid media type ${JSON.stringify(mediaType.slice(0, 80))}`);
    const info = await this.blobs.put(body, opts);
    const existing = await this.store.getArtifact(info.sha256);
    const artifact = existing ?? (await this.store.putArtifact({ sha256: info.sha256, size: info.size, mediaType, createdAt: this.clock.now().toISOString() }));
    // A purge running at the same moment may have trashed these very bytes after our put: bring them
    // back (see ImageService.collectGarbage for the other half of this handshake).
    if ((await this.blobs.stat(info.sha256)) === null) await this.blobs.restore(info.sha256);
    return { artifact, created: existing === null };
  }

  async get(sha256: string): Promise<Artifact> {
    validateSha256(sha256);
    const a = await this.store.getArtifact(sha256);
    if (a === null) throw new KilnError('KILN_ARTIFACT_NOT_FOUND', `no artifact ${sha256}`);
    return a;
  }

  async list(): Promise<Artifact[]> {
    return this.store.listArtifacts();
  }

  /** A URL fetching the bytes straight from the blob store; KILN_UNAVAILABLE when the store cannot make one. */
  async presignedUrl(sha256: string, ttlSeconds: number): Promise<string> {
    if (this.blobs.presignedUrl === undefined) throw new KilnError('KILN_UNAVAILABLE', 'this blob store cannot hand out direct URLs');
    return this.blobs.presignedUrl(sha256, ttlSeconds);
  }

  async read(sha256: string, range?: ByteRange): Promise<Readable> {
    return this.blobs.read(sha256, range);
  }

  /** Random access to the bytes, when the blob store keeps local files (see BlobStore.openReader). */
  reader(sha256: string): (() => Promise<BlobReader>) | undefined {
    const blobs = this.blobs;
    return blobs.openReader === undefined ? undefined : () => blobs.openReader!(sha256);
  }

  /** The bytes as shared in-memory chunks, when this artifact is small enough to keep there. */
  chunks(sha256: string, size: number): ChunkedBytes | undefined {
    return this.hot?.bytesOf(sha256, size, (buffer, position) => this.fill(sha256, buffer, position));
  }

  private async fill(sha256: string, buffer: Buffer, position: number): Promise<void> {
    const short = (got: number) => new Error(`blob ${sha256} ended ${buffer.length - got} bytes early at ${position + got}`);
    if (this.blobs.openReader !== undefined) {
      const reader = await this.blobs.openReader(sha256);
      try {
        let got = 0;
        while (got < buffer.length) {
          const n = await reader.read(got === 0 ? buffer : buffer.subarray(got), buffer.length - got, position + got);
          if (n === 0) throw short(got);
          got += n;
        }
      } finally {
        reader.release();
      }
      return;
    }
    // Remote stores: one ranged read per chunk, so a storm asks the store for each chunk once.
    let got = 0;
    for await (const piece of await this.blobs.read(sha256, { start: position, end: position + buffer.length - 1 })) {
      const b = piece as Buffer;
      if (got + b.length > buffer.length) throw new Error(`blob ${sha256}: the store returned more bytes than asked for at ${position}`);
      b.copy(buffer, got);
      got += b.length;
    }
    if (got < buffer.length) throw short(got);
  }
}
