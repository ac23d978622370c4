// OidcLogin against a real OpenID provider (oidc-provider) and a local stand-in for GitHub's OAuth endpoints.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../core/ports.js';
import { startOpenIdProvider as startSharedProvider } from '../../../test/support/openid-provider.js';
import { OidcLogin, PENDING_LOGIN_TTL_MS, type LoginIdentity, type PendingLogin } from './oidc-login.js';

const CLIENT_ID = 'kiln';
const CLIENT_SECRET = 'kiln-test-secret';
const REDIRECT_URI = 'http://127.0.0.1:1/login/callback';

interface Running {
  base: string;
  close(): Promise<void>;
}

/** Listens on a random loopback port; the handler is set once the address (and so the issuer) is known. */
async function listen(makeHandler: (base: string) => RequestListener | Promise<RequestListener>): Promise<Running> {
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  handler = await makeHandler(base);
  return {
    base,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}

async function startOpenIdProvider(): Promise<Running> {
  const op = await startSharedProvider();
  await op.register({
    clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [REDIRECT_URI],
    accounts: { 'alice-id': { preferred_username: 'alice', name: 'Alice Liddell', email: 'alice@example.test' } },
  });
  return { base: op.issuer, close: () => op.close() };
}

/** A browser's part: follows redirects by hand and carries cookies (paths ignored, which only sends more). */
class Browser {
  private readonly cookies = new Map<string, string>();

  async request(url: string, form?: Record<string, string>): Promise<Response> {
    const headers: Record<string, string> = { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
    const init: RequestInit = { redirect: 'manual', headers };
    if (form !== undefined) {
      init.method = 'POST';
      init.body = new URLSearchParams(form);
    }
    const res = await fetch(url, init);
    for (const c of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const expired = pair.slice(eq + 1) === '' || attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
    return res;
  }
}

/**
 * Plays the user at oidc-provider's development login and consent pages until the provider
 * redirects to REDIRECT_URI; `deny` aborts at the first page instead.
 */
async function authorize(authorizeUrl: string, choice: 'approve' | 'deny' = 'approve'): Promise<URL> {
  const browser = new Browser();
  let url = authorizeUrl;
  for (let hop = 0; hop < 12; hop++) {
    const res = await browser.request(url);
    if (res.status === 200) {
      const prompt = /name="prompt" value="(\w+)"/.exec(await res.text())?.[1];
      if (choice === 'deny') {
        url = `${url}/abort`;
        continue;
      }
      const form: Record<string, string> = prompt === 'login' ? { prompt, login: 'alice-id', password: 'anything' } : { prompt: prompt ?? '' };
      const submitted = await browser.request(url, form);
      url = new URL(submitted.headers.get('location')!, url).href;
      continue;
    }
    expect(res.status, await res.clone().text()).toBeGreaterThanOrEqual(300);
    url = new URL(res.headers.get('location')!, url).href;
    if (url.startsWith(REDIRECT_URI)) return new URL(url);
  }
  throw new Error('the provider never redirected back');
}

class TestClock implements Clock {
  ms = Date.now();
  now(): Date {
    return new Date(this.ms);
  }
}

async function loginFailure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toMatchObject({ code: 'KILN_LOGIN_FAILED' });
  return err as { code: string; message: string };
}

describe('OidcLogin with an OpenID Connect provider', () => {
  let op: Running;
  let login: OidcLogin;
  const clock = new TestClock();

  beforeAll(async () => {
    op = await startOpenIdProvider();
    login = await OidcLogin.create({ kind: 'oidc', issuer: op.base, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }, { allowInsecureHttp: true, clock });
  });
  afterAll(() => op.close());

  it('asks for a code with PKCE S256, state and nonce', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const q = new URL(url).searchParams;
    expect(url.startsWith(`${op.base}/auth?`)).toBe(true);
    expect(Object.fromEntries(q)).toMatchObject({
      client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid profile email',
      state: pending.state, nonce: pending.nonce, code_challenge_method: 'S256',
    });
    expect(q.get('code_challenge')).toBe(createHash('sha256').update(pending.codeVerifier).digest('base64url'));
    expect(pending).toMatchObject({ redirectUri: REDIRECT_URI, createdAt: clock.ms });
  });

  it('completes the login and says who logged in (profile claims from userinfo)', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url);
    expect(callback.searchParams.get('state')).toBe(pending.state);
    // The transport may see its own host (behind a proxy): only the query matters.
    const seenByServer = new URL(`http://kiln.internal:8080/login/callback${callback.search}`);
    expect(await login.finish(seenByServer, pending)).toEqual<LoginIdentity>({
      provider: op.base, subject: 'alice-id', username: 'alice', email: 'alice@example.test', name: 'Alice Liddell',
    });
  });

  it('refuses a callback whose state is not the pending one', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url);
    callback.searchParams.set('state', 'forged');
    expect((await loginFailure(login.finish(callback, pending))).message).toMatch(/state/);
  });

  it('refuses a replayed code', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url);
    await login.finish(callback, pending);
    expect((await loginFailure(login.finish(callback, pending))).message).toMatch(/invalid_grant/);
  });

  it('reports a denial at the provider', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url, 'deny');
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect((await loginFailure(login.finish(callback, pending))).message).toMatch(/access_denied/);
  });

  it('refuses a login pending for longer than ten minutes', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url);
    clock.ms += PENDING_LOGIN_TTL_MS + 1;
    expect((await loginFailure(login.finish(callback, pending))).message).toMatch(/10 minutes/);
  });

  it('refuses a pending login without its verifier', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await authorize(url);
    const broken = { ...pending, codeVerifier: undefined } as unknown as PendingLogin;
    expect((await loginFailure(login.finish(callback, { ...broken, createdAt: clock.ms }))).message).toMatch(/malformed/);
  });

  it('reports an issuer that cannot be reached as unavailable', async () => {
    const gone = await listen(() => (_req, res) => res.writeHead(404).end());
    await gone.close();
    await expect(OidcLogin.create({ kind: 'oidc', issuer: gone.base, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }, { allowInsecureHttp: true }))
      .rejects.toMatchObject({ code: 'KILN_UNAVAILABLE' });
  });

  it('refuses an http issuer unless allowed', async () => {
    await expect(OidcLogin.create({ kind: 'oidc', issuer: op.base, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }))
      .rejects.toMatchObject({ code: 'KILN_CONFIG_INVALID' });
  });
});

interface GithubDouble extends Running {
  tokenRequests: number;
}

/** GitHub's three OAuth endpoints as they behave for an OAuth app (errors from the token endpoint come with 200). */
async function startGithubDouble(): Promise<GithubDouble> {
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const tokens = new Set<string>();
  const user = { login: 'octocat', id: 583231, name: 'The Octocat', email: null };
  const emails = [
    { email: 'octo@old.example.test', primary: false, verified: true },
    { email: 'octocat@example.test', primary: true, verified: true },
  ];
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const readForm = async (req: IncomingMessage): Promise<URLSearchParams> => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    return new URLSearchParams(body);
  };
  const double = { tokenRequests: 0 } as GithubDouble;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://github.test');
    const q = url.searchParams;
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const expected = q.get('client_id') === CLIENT_ID && q.get('scope') === 'read:user user:email' && q.get('code_challenge_method') === 'S256';
      if (!expected) return json(res, 400, { message: `unexpected authorization request ${url.search}` });
      const code = randomBytes(10).toString('hex');
      codes.set(code, { challenge: q.get('code_challenge')!, redirectUri: q.get('redirect_uri')! });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.href }).end();
    } else if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      double.tokenRequests++;
      // Without this header GitHub answers form-encoded, which an OAuth client cannot read as JSON.
      if (req.headers.accept !== 'application/json') return json(res, 406, { message: 'send Accept: application/json' });
      const form = await readForm(req);
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const good = form.get('client_id') === CLIENT_ID && form.get('client_secret') === CLIENT_SECRET && grant !== undefined
        && grant.redirectUri === form.get('redirect_uri') && createHash('sha256').update(verifier).digest('base64url') === grant.challenge;
      if (!good) return json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      const token = `gho_${randomBytes(16).toString('hex')}`;
      tokens.add(token);
      json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
    } else if (req.method === 'GET' && url.pathname.startsWith('/api/v3/user')) {
      const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      if (bearer === undefined || !tokens.has(bearer)) return json(res, 401, { message: 'Bad credentials' });
      if (req.headers['user-agent'] === undefined) return json(res, 403, { message: 'User-Agent required' });
      if (url.pathname === '/api/v3/user') json(res, 200, user);
      else if (url.pathname === '/api/v3/user/emails') json(res, 200, emails);
      else json(res, 404, { message: 'Not Found' });
    } else {
      json(res, 404, { message: 'Not Found' });
    }
  };
  const running = await listen(() => (req, res) => {
    handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  return Object.assign(double, running);
}

describe('OidcLogin with the GitHub preset', () => {
  let gh: GithubDouble;
  let login: OidcLogin;

  beforeAll(async () => {
    gh = await startGithubDouble();
    login = await OidcLogin.create({
      kind: 'github', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
      authorizeUrl: `${gh.base}/login/oauth/authorize`, tokenUrl: `${gh.base}/login/oauth/access_token`, apiUrl: `${gh.base}/api/v3/`,
    }, { allowInsecureHttp: true });
  });
  afterAll(() => gh.close());

  async function githubAuthorize(url: string): Promise<URL> {
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location')!);
  }

  it('completes the login; the primary verified address stands in for a hidden profile e-mail', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    expect(pending.nonce).toBeUndefined();
    const identity = await login.finish(await githubAuthorize(url), pending);
    expect(identity).toEqual<LoginIdentity>({
      provider: 'github', subject: '583231', username: 'octocat', email: 'octocat@example.test', name: 'The Octocat',
    });
  });

  it('refuses a replayed code with GitHub’s reason', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await githubAuthorize(url);
    await login.finish(callback, pending);
    expect((await loginFailure(login.finish(callback, pending))).message).toMatch(/bad_verification_code/);
  });

  it('sends the PKCE verifier: another login’s verifier is refused', async () => {
    const first = await login.begin(REDIRECT_URI);
    const second = await login.begin(REDIRECT_URI);
    const callback = await githubAuthorize(first.url);
    const before = gh.tokenRequests;
    const err = await loginFailure(login.finish(callback, { ...first.pending, codeVerifier: second.pending.codeVerifier }));
    expect(err.message).toMatch(/bad_verification_code/);
    expect(gh.tokenRequests).toBe(before + 1);
  });

  it('refuses a wrong state before calling the token endpoint', async () => {
    const { url, pending } = await login.begin(REDIRECT_URI);
    const callback = await githubAuthorize(url);
    const before = gh.tokenRequests;
    await loginFailure(login.finish(callback, { ...pending, state: 'another' }));
    expect(gh.tokenRequests).toBe(before);
  });
});
