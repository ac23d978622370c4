// s3:// URLs as Kiln's configuration takes them; no SDK here, so reading the configuration stays cheap.

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isBucketName(name: string): boolean {
  return BUCKET_NAME.test(name)
    && !name.includes('..')
    && !/^\d{1,3}(\.\d{1,3}){3}$/.test(name)
    && !/^(xn--|sthree-|amzn-s3-demo-)/.test(name)
    && !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name);
}

export function normalizePrefix(prefix: string): string {
  return prefix.split('/').filter((s) => s !== '').join('/');
}

/** `s3://bucket` or `s3://bucket/some/prefix/`; null when it is not one or the bucket name is invalid. */
export function parseS3Url(url: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (m === null) return null;
  const bucket = m[1]!;
  if (!isBucketName(bucket)) return null;
  const prefix = normalizePrefix(m[2] ?? '');
  if (prefix.split('/').some((s) => s === '.' || s === '..')) return null;
  return { bucket, prefix };
}
