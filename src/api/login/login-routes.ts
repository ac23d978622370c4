// Browser login: /auth/login → identity provider → /auth/callback → session cookie; /auth/logout, /auth/me.
// BrowserLogin holds the flow so BAAS's /user/login/github routes run the very same login.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../../core/kiln-error.js';
import type { User } from '../../core/types.js';
import { attachUsers, authenticate, checkSameOrigin, SESSION_COOKIE } from '../auth.js';
import { readCookie, serializeCookie } from '../cookies.js';
import type { Services } from '../services.js';
import { OidcLogin, PENDING_LOGIN_TTL_MS, type LoginProviderConfig, type PendingLogin } from './oidc-login.js';

export interface LoginRouteOptions {
  services: Services;
  /** null: login is off (login.provider none). */
  provider: LoginProviderConfig | null;
  /** Base URL the browser reaches Kiln at (callback URL); null: from the request's Host. */
  publicUrl: string | null;
  secureCookie: boolean;
  /** http issuers are allowed (tests, loopback providers). */
  allowInsecureHttp: boolean;
}

/** Holds the pending login between /login and /callback: sealed (AES-256-GCM), so the browser can neither read nor forge it. */
export const PENDING_COOKIE = 'kiln_login';
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

interface Pending {
  login: PendingLogin;
  /** Local path to send the browser to afterwards. */
  returnTo: string;
}

/** Only a path on this host: an absolute or protocol-relative URL would make Kiln an open redirect. */
export function safeReturnPath(value: unknown, fallback: string): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]{0,1023}$/.test(value) ? value : fallback;
}

export class BrowserLogin {
  private client: Promise<OidcLogin> | null = null;
  private key: Promise<Buffer> | null = null;

  constructor(private readonly opts: LoginRouteOptions) {
    attachUsers(opts.services.tokens, opts.services.users);
  }

  /** The provider's authorization URL and the Set-Cookie that keeps the pending login. */
  async begin(req: FastifyRequest, callbackPath: string, returnTo: string): Promise<{ url: string; cookie: string }> {
    const { url, pending } = await (await this.oidc()).begin(`${this.baseUrl(req)}${callbackPath}`);
    const value = await this.seal({ login: pending, returnTo });
    return { url, cookie: serializeCookie(PENDING_COOKIE, value, { maxAge: PENDING_LOGIN_TTL_MS / 1000, secure: this.opts.secureCookie }) };
  }

  /** Completes the callback: the user logged in and the Set-Cookie headers (session on, pending off). */
  async finish(req: FastifyRequest): Promise<{ user: User; returnTo: string; cookies: string[] }> {
    const sealed = readCookie(req.headers.cookie, PENDING_COOKIE);
    if (sealed === null) throw new KilnError('KILN_LOGIN_FAILED', 'no login is pending in this browser (cookies blocked, or it took longer than 10 minutes); start again');
    const pending = await this.unseal(sealed);
    const client = await this.oidc();
    const identity = await client.finish(new URL(req.url, 'http://callback.invalid'), pending.login);
    const s = this.opts.services;
    const user = await s.users.loginExternal(identity);
    const { secret, session } = await s.users.startSession(user.name);
    const maxAge = (Date.parse(session.expiresAt) - Date.parse(session.createdAt)) / 1000;
    return {
      user,
      returnTo: pending.returnTo,
      cookies: [
        serializeCookie(SESSION_COOKIE, secret, { maxAge, secure: this.opts.secureCookie }),
        serializeCookie(PENDING_COOKIE, '', { maxAge: 0, secure: this.opts.secureCookie }),
      ],
    };
  }

  /** Ends the request's session (if any) and returns the Set-Cookie that removes it. */
  async logout(req: FastifyRequest): Promise<string> {
    const secret = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (secret !== null) await this.opts.services.users.endSession(secret);
    return serializeCookie(SESSION_COOKIE, '', { maxAge: 0, secure: this.opts.secureCookie });
  }

  /** Created on first use, not at start: discovery needs the provider up; a failure is retried by the next login. */
  private oidc(): Promise<OidcLogin> {
    const provider = this.opts.provider;
    if (provider === null) return Promise.reject(new KilnError('KILN_LOGIN_DISABLED', 'browser login is off (login.provider none)'));
    this.client ??= OidcLogin.create(provider, { allowInsecureHttp: this.opts.allowInsecureHttp, clock: this.opts.services.clock }).catch((err: unknown) => {
      this.client = null;
      throw err;
    });
    return this.client;
  }

  private baseUrl(req: FastifyRequest): string {
    if (this.opts.publicUrl !== null) return this.opts.publicUrl.replace(/\/+$/, '');
    const host = req.host;
    if (!HOST.test(host)) throw new KilnError('KILN_REQUEST_INVALID', 'the Host header is not a host name; set publicUrl');
    return `${req.protocol}://${host}`;
  }

  private async cipherKey(): Promise<Buffer> {
    this.key ??= this.opts.services.users.loginCookieKey().then((secret) => createHash('sha256').update(`kiln login cookie\0${secret}`).digest());
    return this.key.catch((err: unknown) => {
      this.key = null;
      throw err;
    });
  }

  private async seal(p: Pending): Promise<string> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await this.cipherKey(), iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(p), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  private async unseal(value: string): Promise<Pending> {
    const raw = Buffer.from(value, 'base64url');
    try {
      if (raw.length < 29 || raw.length > 8192) throw new Error('length');
      const decipher = createDecipheriv('aes-256-gcm', await this.cipherKey(), raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
      const p = JSON.parse(text) as Partial<Pending>;
      if (typeof p.login !== 'object' || p.login === null) throw new Error('shape');
      return { login: p.login, returnTo: safeReturnPath(p.returnTo, '/') };
    } catch {
      throw new KilnError('KILN_LOGIN_FAILED', 'the pending login cookie is not one Kiln made; start again');
    }
  }
}

export const loginRoutes: FastifyPluginAsync<LoginRouteOptions> = async (app, opts) => {
  const login = new BrowserLogin(opts);
  const s = opts.services;
  const callbackPath = `${app.prefix}/callback`;

  app.get('/login', async (req: FastifyRequest<{ Querystring: { return?: string } }>, reply: FastifyReply) => {
    const { url, cookie } = await login.begin(req, callbackPath, safeReturnPath(req.query.return, `${app.prefix}/me`));
    return reply.header('set-cookie', cookie).header('cache-control', 'no-store').redirect(url, 302);
  });

  app.get('/callback', async (req, reply) => {
    const { returnTo, cookies } = await login.finish(req);
    return reply.header('set-cookie', cookies).header('cache-control', 'no-store').redirect(returnTo, 302);
  });

  app.post('/logout', async (req, reply) => {
    checkSameOrigin(req);
    return reply.header('set-cookie', await login.logout(req)).code(204).send();
  });

  app.get('/me', async (req) => {
    const who = await authenticate(s.tokens, req);
    if (who === null || who.kind === 'machine' || who.user === null) throw new KilnError('KILN_AUTH_REQUIRED', 'log in at /auth/login, or send a token that acts for a user');
    const u = who.user;
    return { name: u.name, displayName: u.displayName, email: u.email, role: who.role, via: who.kind === 'session' ? 'session' : 'token' };
  });
};
