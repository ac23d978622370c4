// Expiring HMAC signatures for boot artifact URLs, so artifacts can be fetched without a token
// but only through URLs Kiln handed out.
import { createHmac, timingSafeEqual } from 'node:crypto';

export class UrlSigner {
  constructor(
    private readonly key: Buffer,
    private readonly ttlSeconds: number,
  ) {}

  private mac(path: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${path}\n${expires}`).digest('base64url');
  }

  /** Query string (without `?`) that authorises `path` until now + ttl. */
  sign(path: string, nowMs: number): string {
    const expires = Math.floor(nowMs / 1000) + this.ttlSeconds;
    return `exp=${expires}&sig=${this.mac(path, expires)}`;
  }

  verify(path: string, exp: string | undefined, sig: string | undefined, nowMs: number): boolean {
    if (exp === undefined || sig === undefined || !/^\d{1,12}$/.test(exp)) return false;
    const expires = Number(exp);
    if (expires * 1000 < nowMs) return false;
    const want = Buffer.from(this.mac(path, expires));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}
