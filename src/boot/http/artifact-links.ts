// URLs a compat client (ncore-api menu, pixiecore) hands to machines for one artifact: a presigned
// object-store URL when the blobs live in S3, else Kiln's own artifact URL with an expiring signature.
import type { Services } from '../../api/services.js';
import type { UrlSigner } from '../url-signer.js';

export interface ArtifactLinkOptions {
  signer: UrlSigner;
  ttlSeconds: number;
  /** The blob store can presign (S3). */
  presign: boolean;
}

export class ArtifactLinks {
  constructor(
    private readonly services: Services,
    private readonly opts: ArtifactLinkOptions,
  ) {}

  get ttlSeconds(): number {
    return this.opts.ttlSeconds;
  }

  /** The object store's own URL when it can presign; machines then fetch without passing through Kiln. */
  async url(base: string, artifact: { sha256: string; name: string }, mac: string): Promise<string> {
    if (this.opts.presign) return this.services.artifacts.presignedUrl(artifact.sha256, this.opts.ttlSeconds);
    const path = `/boot/artifacts/${artifact.sha256}/${encodeURIComponent(artifact.name)}`;
    const q = `mac=${mac}`;
    return `${base}${path}?${q}&${this.opts.signer.sign(`${path}?${q}`, this.services.clock.now().getTime())}`;
  }
}
