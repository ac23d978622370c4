// Artifacts: streaming, verified uploads into the blob store, and their records.
import type { Readable } from 'node:stream';
import { KilnError } from '../kiln-error.js';
import type { BlobStore, ByteRange, Clock, PutBlobOptions, Store } from '../ports.js';
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
    if (existing !== null) return { artifact: existing, created: false };
    const artifact = await this.store.putArtifact({ sha256: info.sha256, size: info.size, mediaType, createdAt: this.clock.now().toISOString() });
    return { artifact, created: true };
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

  async read(sha256: string, range?: ByteRange): Promise<Readable> {
    return this.blobs.read(sha256, range);
  }
}
