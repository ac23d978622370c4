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
  /** `mac`: the machine the URL is for (its artifact events land in that machine's timeline); null for none. */
  async url(base: string, artifact: { sha256: string; name: string }, mac: string | null): Promise<string> {
    if (this.opts.presign) return this.services.artifacts.presignedUrl(artifact.sha256, this.opts.ttlSeconds);
    const path = `/boot/artifacts/${artifact.sha256}/${encodeURIComponent(artifact.name)}`;
    // The artifact route verifies `<path>?mac=<mac or nothing>`.
    const signature = this.opts.signer.sign(`${path}?mac=${mac ?? ''}`, this.services.clock.now().getTime());
    return `${base}${path}?${mac !== null ? `mac=${mac}&` : ''}${signature}`;
  }
}
