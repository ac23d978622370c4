// ETags for revisioned resources. Strong ETags: the revision changes on every write.

export function etagOf(kind: string, key: string, revision: number): string {
  return `"${kind}.${Buffer.from(key).toString('base64url')}.${revision}"`;
}

/** Parses an If-Match value back to a revision for the given resource; -1 when it names another resource or is malformed (never matches). */
export function revisionFromIfMatch(ifMatch: string | undefined, kind: string, key: string): number | undefined {
  if (ifMatch === undefined) return undefined;
  const v = ifMatch.trim();
  if (v === '*') return undefined;
  const prefix = `"${kind}.${Buffer.from(key).toString('base64url')}.`;
  if (!v.startsWith(prefix) || !v.endsWith('"')) return -1;
  const n = Number(v.slice(prefix.length, -1));
  return Number.isInteger(n) && n >= 0 ? n : -1;
}
