// OidcLogin: browser login through an OpenID Connect provider or GitHub (authorization code + PKCE), transport-agnostic.
import * as oidc from 'openid-client';
import type { Clock } from '../../core/ports.js';
import { KilnError } from '../../core/kiln-error.js';
import { GITHUB_PRESET, GITHUB_SCOPES, fetchGithubIdentity } from './github-identity.js';
import { describeFailure, loginFailed } from './login-failed.js';

export type LoginProviderConfig =
  | {
    kind: 'oidc';
    issuer: string;
    clientId: string;
    clientSecret: string;
    /** Default openid, profile, email; openid is always added. */
    scopes?: string[];
    /** Claim used as the username; default preferred_username, falling back to sub when absent. */
    usernameClaim?: string;
    /** LoginIdentity.provider; default the issuer. */
    name?: string;
  }
  | {
    kind: 'github';
    clientId: string;
    clientSecret: string;
    /** github.com's endpoints by default; set for GitHub Enterprise Server or a test double. */
    authorizeUrl?: string;
    tokenUrl?: string;
    /** The REST API's base (GitHub Enterprise Server: https://HOST/api/v3). */
    apiUrl?: string;
    /** LoginIdentity.provider; default 'github'. */
    name?: string;
  };

export interface LoginIdentity {
  provider: string;
  /** The provider's stable id for the person (OIDC sub, GitHub numeric id); usernames can change. */
  subject: string;
  username: string;
  /** Only an address the provider reports as verified (or does not mark as unverified). */
  email: string | null;
  name: string | null;
}

/** What the caller keeps between begin() and finish(), tamper-proof (server-side or a sealed HttpOnly cookie). */
export interface PendingLogin {
  state: string;
  nonce?: string;
  codeVerifier: string;
  redirectUri: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface OidcLoginOptions {
  /** Allows http:// provider URLs; meant for loopback test providers only. */
  allowInsecureHttp?: boolean;
  clock?: Clock;
}

/** A login left at the provider longer than this has to start again. */
export const PENDING_LOGIN_TTL_MS = 10 * 60 * 1000;

const DEFAULT_OIDC_SCOPES = ['openid', 'profile', 'email'];
const systemClock: Clock = { now: () => new Date() };

type Flavour =
  | { kind: 'oidc'; usernameClaim: string }
  | { kind: 'github'; apiUrl: URL };

export class OidcLogin {
  private constructor(
    private readonly client: oidc.Configuration,
    private readonly provider: string,
    private readonly scopes: readonly string[],
    private readonly flavour: Flavour,
    private readonly clock: Clock,
  ) {}

  /**
   * OIDC providers are discovered here, so this fails with KILN_UNAVAILABLE while the provider cannot
   * be reached; bad URLs are KILN_CONFIG_INVALID.
   */
  static async create(cfg: LoginProviderConfig, opts: OidcLoginOptions = {}): Promise<OidcLogin> {
    const insecure = opts.allowInsecureHttp === true;
    const clock = opts.clock ?? systemClock;
    const execute = insecure ? [oidc.allowInsecureRequests] : [];
    switch (cfg.kind) {
      case 'oidc': {
        const issuer = providerUrl(cfg.issuer, 'issuer', insecure);
        let client: oidc.Configuration;
        try {
          client = await oidc.discovery(issuer, cfg.clientId, cfg.clientSecret, undefined, { execute });
        } catch (err) {
          throw new KilnError('KILN_UNAVAILABLE', `OpenID discovery at ${issuer.href} failed: ${describeFailure(err)}`);
        }
        const scopes = ['openid', ...(cfg.scopes ?? DEFAULT_OIDC_SCOPES).filter((s) => s !== 'openid')];
        const flavour = { kind: 'oidc', usernameClaim: cfg.usernameClaim ?? 'preferred_username' } as const;
        return new OidcLogin(client, cfg.name ?? client.serverMetadata().issuer, scopes, flavour, clock);
      }
      case 'github': {
        const authorize = providerUrl(cfg.authorizeUrl ?? GITHUB_PRESET.authorizeUrl, 'authorizeUrl', insecure);
        const token = providerUrl(cfg.tokenUrl ?? GITHUB_PRESET.tokenUrl, 'tokenUrl', insecure);
        const apiUrl = providerUrl(cfg.apiUrl ?? GITHUB_PRESET.apiUrl, 'apiUrl', insecure);
        // Plain OAuth 2.0 without discovery: the issuer is only a label here, no ID token is checked against it.
        const server = { issuer: authorize.origin, authorization_endpoint: authorize.href, token_endpoint: token.href };
        const client = new oidc.Configuration(server, cfg.clientId, cfg.clientSecret);
        for (const f of execute) f(client);
        return new OidcLogin(client, cfg.name ?? 'github', GITHUB_SCOPES, { kind: 'github', apiUrl }, clock);
      }
    }
  }

  /** The URL to send the browser to, and what to keep until the callback. */
  async begin(redirectUri: string): Promise<{ url: string; pending: PendingLogin }> {
    const redirect = providerUrl(redirectUri, 'redirectUri', true);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = this.flavour.kind === 'oidc' ? oidc.randomNonce() : undefined;
    const params: Record<string, string> = {
      redirect_uri: redirect.href,
      scope: this.scopes.join(' '),
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (nonce !== undefined) params.nonce = nonce;
    const url = oidc.buildAuthorizationUrl(this.client, params);
    const pending: PendingLogin = { state, codeVerifier, redirectUri: redirect.href, createdAt: this.clock.now().getTime() };
    if (nonce !== undefined) pending.nonce = nonce;
    return { url: url.href, pending };
  }

  /** Completes the callback; any failure is KILN_LOGIN_FAILED with the reason as its message. */
  async finish(callbackUrl: URL, pending: PendingLogin): Promise<LoginIdentity> {
    checkPending(pending, this.clock.now().getTime());
    try {
      // The transport may see another URL than the browser did (a proxy in front); the token request
      // must repeat the redirect_uri of the authorization request, so only the query is taken over.
      const current = new URL(pending.redirectUri);
      current.search = callbackUrl.search;
      const checks: oidc.AuthorizationCodeGrantChecks = { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state };
      if (this.flavour.kind === 'oidc') {
        if (pending.nonce === undefined) throw new KilnError('KILN_LOGIN_FAILED', 'the pending login has no nonce');
        checks.expectedNonce = pending.nonce;
      }
      const tokens = await oidc.authorizationCodeGrant(this.client, current, checks);
      switch (this.flavour.kind) {
        case 'oidc': return await this.oidcIdentity(tokens, this.flavour.usernameClaim);
        case 'github': return await fetchGithubIdentity(this.client, tokens.access_token, this.flavour.apiUrl, this.provider);
      }
    } catch (err) {
      throw loginFailed(err);
    }
  }

  private async oidcIdentity(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, usernameClaim: string): Promise<LoginIdentity> {
    const idToken = tokens.claims();
    if (idToken === undefined) throw new KilnError('KILN_LOGIN_FAILED', 'the provider returned no ID token');
    let claims: Record<string, unknown> = idToken;
    // Many providers put profile claims in the ID token; those following the code-flow default of the
    // spec (oidc-provider among them) give them only from userinfo.
    const missing = [usernameClaim, 'email', 'name'].some((c) => claims[c] === undefined);
    if (missing && this.client.serverMetadata().userinfo_endpoint !== undefined) {
      claims = { ...(await oidc.fetchUserInfo(this.client, tokens.access_token, idToken.sub)), ...idToken };
    }
    const username = claims[usernameClaim];
    const email = claims.email_verified === false ? undefined : claims.email;
    return {
      provider: this.provider,
      subject: idToken.sub,
      username: typeof username === 'string' && username !== '' ? username : idToken.sub,
      email: typeof email === 'string' && email !== '' ? email : null,
      name: typeof claims.name === 'string' && claims.name !== '' ? claims.name : null,
    };
  }
}

function providerUrl(value: string, what: string, allowHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KilnError('KILN_CONFIG_INVALID', `${what} is not an absolute URL: ${JSON.stringify(value)}`);
  }
  const ok = url.protocol === 'https:' || (allowHttp && url.protocol === 'http:');
  if (!ok) throw new KilnError('KILN_CONFIG_INVALID', `${what} must be an https URL (http only for loopback test providers): ${value}`);
  return url;
}

/** The pending login usually comes back from a cookie: check its shape before trusting any of it. */
function checkPending(p: PendingLogin, now: number): void {
  const strings = [p.state, p.codeVerifier, p.redirectUri].every((s) => typeof s === 'string' && s !== '');
  if (!strings || typeof p.createdAt !== 'number' || (p.nonce !== undefined && typeof p.nonce !== 'string')) {
    throw new KilnError('KILN_LOGIN_FAILED', 'the pending login is malformed');
  }
  const age = now - p.createdAt;
  if (!(age <= PENDING_LOGIN_TTL_MS)) {
    throw new KilnError('KILN_LOGIN_FAILED', `the login was started more than ${PENDING_LOGIN_TTL_MS / 60_000} minutes ago; start again`);
  }
}
