// A version's manifest (an artifact listing sha256 and size of the others) rewritten for a version
// whose rootfs changed: whatever shape the manifest has, every record of the old rootfs is pointed at
// the new one, so a customized version never carries a manifest describing its parent.

export interface ManifestRootfs {
  sha256: string;
  size: number;
  /** Only needed when the manifest records md5 sums (IMS's format does). */
  md5?: string | undefined;
}

/** True for the artifact that is a version's manifest (`manifest.json`, role other). */
export function isManifestArtifact(a: { name: string; role: string }): boolean {
  return a.role === 'other' && /(^|[-_.])manifest\.json$/i.test(a.name);
}

/** True when some record of the manifest carries an `md5` beside the old rootfs' sha256. */
export function manifestWantsMd5(doc: unknown, oldSha256: string): boolean {
  if (Array.isArray(doc)) return doc.some((x) => manifestWantsMd5(x, oldSha256));
  if (doc === null || typeof doc !== 'object') return false;
  const o = doc as Record<string, unknown>;
  if (o.sha256 === oldSha256 && 'md5' in o) return true;
  return Object.values(o).some((x) => manifestWantsMd5(x, oldSha256));
}

/**
 * Replaces the old rootfs by the new one everywhere in `doc`: objects whose `sha256` is the old one
 * get the new sha256 (and `size`, `md5` when they have those fields); strings holding the old
 * sha256 (links) get the new one; a top-level `created` becomes `at`. `replaced` counts the
 * records changed: 0 means the manifest does not describe the rootfs at all.
 */
export function refreshManifest(doc: unknown, oldSha256: string, rootfs: ManifestRootfs, at: string): { doc: unknown; replaced: number } {
  let replaced = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.includes(oldSha256) ? v.split(oldSha256).join(rootfs.sha256) : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const o = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x)]));
    if ((v as Record<string, unknown>).sha256 === oldSha256) {
      replaced++;
      if ('size' in o) o.size = rootfs.size;
      if ('md5' in o && rootfs.md5 !== undefined) o.md5 = rootfs.md5;
    }
    return o;
  };
  const out = walk(doc);
  if (out !== null && typeof out === 'object' && !Array.isArray(out) && typeof (out as Record<string, unknown>).created === 'string') (out as Record<string, unknown>).created = at;
  return { doc: out, replaced };
}

/** `value` with every string holding one of the map's old digests rewritten to the new one (version metadata naming its manifest). */
export function replaceDigests<T>(value: T, replacements: ReadonlyMap<string, string>): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let out = v;
      for (const [from, to] of replacements) if (out.includes(from)) out = out.split(from).join(to);
      return out;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, walk(x)]));
  };
  return walk(value) as T;
}
