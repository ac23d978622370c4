// fetchGithubIdentity: who a GitHub OAuth access token belongs to, from the REST API (GitHub has no ID token).
import * as oidc from 'openid-client';
import { KilnError } from '../../core/kiln-error.js';
import type { LoginIdentity } from './oidc-login.js';

export const GITHUB_PRESET = {
  authorizeUrl: 'https://github.com/login/oauth/authorize',
  tokenUrl: 'https://github.com/login/oauth/access_token',
  apiUrl: 'https://api.github.com',
} as const;

/** user:email lets us read the primary address when the profile hides it. */
export const GITHUB_SCOPES: readonly string[] = ['read:user', 'user:email'];

interface GithubUser {
  id: number | string;
  login: string;
  name?: string | null;
  email?: string | null;
}

interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export async function fetchGithubIdentity(client: oidc.Configuration, accessToken: string, apiUrl: URL, provider: string): Promise<LoginIdentity> {
  const user = await getJson(client, accessToken, apiUrl, 'user');
  if (!isGithubUser(user)) throw new KilnError('KILN_LOGIN_FAILED', 'GitHub /user did not return an id and a login');
  let email = typeof user.email === 'string' && user.email !== '' ? user.email : null;
  if (email === null) {
    const emails = await getJson(client, accessToken, apiUrl, 'user/emails');
    const primary = Array.isArray(emails) ? (emails as (Partial<GithubEmail> | null)[]).find((e) => e?.primary === true && e.verified === true) : undefined;
    email = typeof primary?.email === 'string' ? primary.email : null;
  }
  return {
    provider,
    subject: String(user.id),
    username: user.login,
    email,
    name: typeof user.name === 'string' && user.name !== '' ? user.name : null,
  };
}

async function getJson(client: oidc.Configuration, accessToken: string, apiUrl: URL, path: string): Promise<unknown> {
  const url = new URL(`${apiUrl.href.replace(/\/+$/, '')}/${path}`);
  // GitHub's REST API refuses requests without a User-Agent.
  const headers = new Headers({ accept: 'application/vnd.github+json', 'user-agent': 'kiln' });
  const res = await oidc.fetchProtectedResource(client, accessToken, url, 'GET', undefined, headers);
  if (!res.ok) throw new KilnError('KILN_LOGIN_FAILED', `GitHub ${url.pathname} answered ${res.status}`);
  return res.json();
}

function isGithubUser(v: unknown): v is GithubUser {
  if (typeof v !== 'object' || v === null) return false;
  const u = v as Record<string, unknown>;
  return (typeof u.id === 'number' || (typeof u.id === 'string' && u.id !== '')) && typeof u.login === 'string' && u.login !== '';
}
