// BAAS test support: a real OpenID provider (oidc-provider) whose client is registered once Kiln's
// port is known, a browser (cookie jar, manual redirects) and a small BAAS client.
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { startOpenIdProvider as startSharedProvider } from '../support/openid-provider.js';

export const CLIENT_ID = 'kiln-baas';
export const CLIENT_SECRET = 'kiln-baas-test-secret';

/** People the provider knows: login name → claims. */
export const PEOPLE: Record<string, { preferred_username: string; name: string; email: string }> = {
  'alice-id': { preferred_username: 'alice', name: 'Alice Liddell', email: 'alice@example.test' },
  'bob-id': { preferred_username: 'bob', name: 'Bob Builder', email: 'bob@example.test' },
  'carol-id': { preferred_username: 'Carol', name: 'Carol Danvers', email: 'carol@example.test' },
};

export interface OpenIdProvider {
  issuer: string;
  /** Registers the BAAS tests' client with these redirect URIs and starts answering. */
  register(redirectUris: string[]): Promise<void>;
  close(): Promise<void>;
}

/** The shared OpenID provider with the BAAS tests' client and people. */
export async function startOpenIdProvider(): Promise<OpenIdProvider> {
  const op = await startSharedProvider();
  return {
    issuer: op.issuer,
    register: (redirectUris) => op.register({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris, accounts: PEOPLE }),
    close: () => op.close(),
  };
}

export interface SetCookie {
  name: string;
  value: string;
  attrs: string[];
}

export function parseSetCookie(header: string): SetCookie {
  const [pair = '', ...attrs] = header.split(';').map((p) => p.trim());
  const eq = pair.indexOf('=');
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs };
}

/** A browser's part: a cookie jar (one host, paths ignored) and redirects followed by hand. */
export class Browser {
  readonly cookies = new Map<string, string>();
  readonly seen: SetCookie[] = [];

  async request(url: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const req: RequestInit = { ...init, redirect: 'manual', headers };
    if (init.form !== undefined) {
      req.method = 'POST';
      req.body = new URLSearchParams(init.form);
    }
    const res = await fetch(url, req);
    for (const raw of res.headers.getSetCookie()) {
      const c = parseSetCookie(raw);
      this.seen.push(c);
      const gone = c.value === '' || c.attrs.some((a) => /^max-age=0$/i.test(a));
      if (gone) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return res;
  }

  /**
   * Follows redirects from `url` through the provider's login and consent pages (logging in as
   * `account`) until a response is not a redirect; returns it.
   */
  async login(url: string, account: string): Promise<Response> {
    for (let hop = 0; hop < 16; hop++) {
      const res = await this.request(url);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        url = new URL(location, url).href;
        continue;
      }
      const text = await res.clone().text();
      const prompt = /name="prompt" value="(\w+)"/.exec(text)?.[1];
      if (res.status !== 200 || prompt === undefined) return res;
      const form: Record<string, string> = prompt === 'login' ? { prompt, login: account, password: 'anything' } : { prompt };
      const submitted = await this.request(url, { form });
      expect(submitted.status, await submitted.clone().text()).toBeGreaterThanOrEqual(300);
      url = new URL(submitted.headers.get('location')!, url).href;
    }
    throw new Error('the login never settled');
  }
}

/** Multipart body with one file part, as Go's mime/multipart writes it. */
export function multipartBody(file: Buffer, boundary = `kiln${randomBytes(8).toString('hex')}`): { body: Buffer; contentType: string } {
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="image.img"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, file, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}
