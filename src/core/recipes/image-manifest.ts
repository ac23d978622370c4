// The image manifest a build stores with each version, in Cray IMS's format (version "1.0", one entry
// per artifact with its type, exactly one rootfs) plus Kiln's sha256, size and name per artifact, so
// IMS clients and Kiln read the same document. Links point at Kiln's artifact API.
import { KilnError } from '../kiln-error.js';
import type { ArtifactRole } from '../types.js';

export const MANIFEST_VERSION = '1.0';

/** IMS artifact types by role; the manifest itself is `application/json`. */
export const MANIFEST_TYPES = {
  kernel: 'application/vnd.cray.image.kernel',
  initrd: 'application/vnd.cray.image.initrd',
  rootfs: 'application/vnd.cray.image.rootfs.squashfs',
  parameters: 'application/vnd.cray.image.parameters.boot',
} as const;

export interface ManifestArtifact {
  name: string;
  role: ArtifactRole;
  type: string;
  sha256: string;
  md5: string;
  size: number;
  link: { path: string; etag: string; type: 'kiln' };
}

export interface ImageManifest {
  version: typeof MANIFEST_VERSION;
  created: string;
  artifacts: ManifestArtifact[];
}

export function manifestArtifact(a: { name: string; role: ArtifactRole; type: string; sha256: string; md5: string; size: number }): ManifestArtifact {
  return { ...a, link: { path: `/api/v1/artifacts/${a.sha256}`, etag: a.sha256, type: 'kiln' } };
}

/** The manifest document; throws unless it has exactly one rootfs (IMS's rule). */
export function buildImageManifest(created: string, artifacts: ManifestArtifact[]): ImageManifest {
  const m: ImageManifest = { version: MANIFEST_VERSION, created, artifacts };
  checkImageManifest(m);
  return m;
}

/** Checks a manifest read back (IMS clients may send one); KILN_VERSION_INVALID with the reason. */
export function checkImageManifest(doc: unknown): ImageManifest {
  const bad = (why: string) => new KilnError('KILN_VERSION_INVALID', `image manifest: ${why}`);
  if (typeof doc !== 'object' || doc === null) throw bad('not an object');
  const m = doc as Partial<ImageManifest>;
  if (m.version !== MANIFEST_VERSION) throw bad(`version must be "${MANIFEST_VERSION}"`);
  if (!Array.isArray(m.artifacts)) throw bad('artifacts must be a list');
  for (const a of m.artifacts) {
    if (typeof a !== 'object' || a === null || typeof a.type !== 'string' || typeof a.link !== 'object' || a.link === null || typeof a.link.path !== 'string') throw bad('each artifact needs a type and a link with a path');
  }
  const rootfs = m.artifacts.filter((a) => a.type === MANIFEST_TYPES.rootfs).length;
  if (rootfs !== 1) throw bad(`exactly one rootfs wanted, got ${rootfs}`);
  return m as ImageManifest;
}
