// Cookies without a plugin: parse the Cookie header, write Set-Cookie values. Only what login needs.

/** The value of cookie `name` from a Cookie header, or null. The first occurrence wins, as in browsers' order. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  const raw = Array.isArray(header) ? header.join('; ') : header;
  if (raw === undefined) return null;
  for (const pair of raw.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value;
  }
  return null;
}

export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
  secure: boolean;
  path?: string;
}

/** Values must be cookie-octets already (Kiln's are base64url or hex), so nothing is escaped here. */
const COOKIE_VALUE = /^[A-Za-z0-9._~-]*$/;

/** A Set-Cookie value: HttpOnly and SameSite=Lax always (no script reads it; cross-site POSTs do not carry it). */
export function serializeCookie(name: string, value: string, opts: CookieOptions): string {
  if (!COOKIE_VALUE.test(value)) throw new Error(`cookie ${name}: value is not base64url or hex`);
  const parts = [`${name}=${value}`, `Path=${opts.path ?? '/'}`, `Max-Age=${Math.max(0, Math.floor(opts.maxAge))}`, 'HttpOnly', 'SameSite=Lax'];
  if (opts.maxAge <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (opts.secure) parts.push('Secure');
  return parts.join('; ');
}
