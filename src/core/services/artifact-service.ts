// Artifacts: streaming, verified uploads into the blob store, and their records.
import type { Readable } from 'node:stream';
import { KilnError } from '../kiln-error.js';
import type { BlobReader, BlobStore, ByteRange, Clock, PutBlobOptions, Store } from '../ports.js';
import type { Artifact } from '../types.js';
import { validateSha256 } from '../validate.js';

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

export class ArtifactService {
  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
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
}
