// IMS links and manifests: `s3://<bucket>/<key>` paths, the image manifest (version "1.0", artifacts
// with typed links, exactly one rootfs) and the deleted manifest a soft delete leaves behind.
import { KilnError } from '../../core/kiln-error.js';
import { MANIFEST_TYPES } from '../../core/recipes/image-manifest.js';
import type { ArtifactRole } from '../../core/types.js';
import type { ImsLink } from '../../core/ims/ims-records.js';

/** Where soft-deleted objects go (IMS's `deleted/` prefix, in the same bucket). */
export const DELETED_PREFIX = 'deleted/';
export const DELETED_MANIFEST_TYPE = 'application/vnd.cray.image.manifest';
export const MANIFEST_MEDIA_TYPE = 'application/json';
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export interface ObjectRef {
  bucket: string;
  key: string;
}

/** Checks an object key as S3 would take it, minus what only confuses: control characters, `//`, `.` and `..` segments. */
export function checkKey(key: string): string | null {
  if (key.length === 0 || Buffer.byteLength(key) > 1024) return 'keys are 1 to 1024 bytes';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'keys may not hold control characters';
  if (key.startsWith('/') || key.split('/').some((seg, i, all) => seg === '.' || seg === '..' || (seg === '' && i < all.length - 1))) {
    return 'keys may not start with "/" or hold empty, "." or ".." segments';
  }
  return null;
}

export function checkBucket(bucket: string): string | null {
  return BUCKET.test(bucket) ? null : 'bucket names are 3 to 63 lower-case letters, digits, "." and "-"';
}

/** `s3://bucket/key` → its parts; null when it is not such a path. */
export function parseS3Path(path: string): ObjectRef | null {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(path);
  if (m === null || checkBucket(m[1]!) !== null || checkKey(m[2]!) !== null) return null;
  return { bucket: m[1]!, key: m[2]! };
}

export function s3Path(ref: ObjectRef): string {
  return `s3://${ref.bucket}/${ref.key}`;
}

export function linkTo(ref: ObjectRef, etag: string): ImsLink {
  return { path: s3Path(ref), etag, type: 's3' };
}

export interface ManifestEntry {
  ref: ObjectRef;
  type: string;
  md5: string;
  etag: string;
}

/** Why a manifest is refused: IMS answers 400 for the rootfs count and 422 for the rest. */
export class ManifestProblem extends Error {
  constructor(
    message: string,
    readonly status: 400 | 422,
  ) {
    super(message);
  }
}

/** Reads an IMS image manifest; throws ManifestProblem. */
export function parseManifest(text: string): { created: string; entries: ManifestEntry[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ManifestProblem('the manifest is not JSON', 422);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ManifestProblem('the manifest is not a JSON object', 422);
  const m = doc as { version?: unknown; created?: unknown; artifacts?: unknown };
  if (m.version !== '1.0') throw new ManifestProblem(`manifest version ${JSON.stringify(m.version ?? null)} is not supported; want "1.0"`, 422);
  if (!Array.isArray(m.artifacts)) throw new ManifestProblem('the manifest artifacts must be a list', 422);
  const entries: ManifestEntry[] = [];
  for (const [i, a] of (m.artifacts as unknown[]).entries()) {
    const art = a as { type?: unknown; md5?: unknown; link?: { path?: unknown; type?: unknown; etag?: unknown } } | null;
    if (typeof art !== 'object' || art === null || typeof art.type !== 'string' || typeof art.link !== 'object' || art.link === null) {
      throw new ManifestProblem(`manifest artifact ${i} needs a type and a link`, 422);
    }
    if (art.link.type !== 's3' || typeof art.link.path !== 'string') throw new ManifestProblem(`manifest artifact ${i}: its link needs type "s3" and a path`, 422);
    const ref = parseS3Path(art.link.path);
    if (ref === null) throw new ManifestProblem(`manifest artifact ${i}: ${JSON.stringify(art.link.path.slice(0, 200))} is not an s3://bucket/key path`, 422);
    entries.push({ ref, type: art.type, md5: typeof art.md5 === 'string' ? art.md5 : '', etag: typeof art.link.etag === 'string' ? art.link.etag : '' });
  }
  const rootfs = entries.filter((e) => e.type === MANIFEST_TYPES.rootfs).length;
  if (rootfs !== 1) throw new ManifestProblem(`the manifest must list exactly one rootfs (${MANIFEST_TYPES.rootfs}); it lists ${rootfs}`, 400);
  return { created: typeof m.created === 'string' ? m.created : '', entries };
}

/** The entries of a manifest Kiln wrote or took earlier, skipping what it cannot read (deletes go on regardless). */
export function manifestEntries(text: string): ManifestEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  const artifacts = (doc as { artifacts?: unknown } | null)?.artifacts;
  if (!Array.isArray(artifacts)) return [];
  const out: ManifestEntry[] = [];
  for (const a of artifacts as { type?: unknown; md5?: unknown; link?: { path?: unknown; etag?: unknown } }[]) {
    const ref = typeof a?.link?.path === 'string' ? parseS3Path(a.link.path) : null;
    if (ref !== null) out.push({ ref, type: typeof a.type === 'string' ? a.type : '', md5: typeof a.md5 === 'string' ? a.md5 : '', etag: typeof a.link?.etag === 'string' ? a.link.etag : '' });
  }
  return out;
}

export function manifestDocument(created: string, entries: readonly ManifestEntry[]): string {
  const artifacts = entries.map((e) => ({ link: linkTo(e.ref, e.etag), type: e.type, md5: e.md5 }));
  return `${JSON.stringify({ version: '1.0', created, artifacts }, null, 2)}\n`;
}

export function roleOfType(type: string): ArtifactRole {
  if (type === MANIFEST_TYPES.kernel) return 'kernel';
  if (type === MANIFEST_TYPES.initrd) return 'initrd';
  if (type === MANIFEST_TYPES.rootfs) return 'rootfs';
  return 'other';
}

export function typeOfRole(role: ArtifactRole): string | null {
  return role === 'other' ? null : MANIFEST_TYPES[role];
}

export function deletedKey(key: string): string {
  return `${DELETED_PREFIX}${key}`;
}

/** The key an undelete restores; KILN_IMS_CONFLICT for a key that was never moved. */
export function undeletedKey(key: string): string {
  if (!key.startsWith(DELETED_PREFIX)) throw new KilnError('KILN_IMS_CONFLICT', `object ${key} is not under ${DELETED_PREFIX}; it cannot be undeleted`);
  return key.slice(DELETED_PREFIX.length);
}
