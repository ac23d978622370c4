// A real OpenID provider (oidc-provider) on loopback for login tests: it listens first (the issuer URL
// goes into Kiln's config) and answers 503 until its client is registered (redirect URIs are known
// once Kiln listens). Accounts log in through oidc-provider's built-in login and consent pages.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The few parts of oidc-provider (which ships no types) used here. */
interface OidcProviderModule {
  Provider: new (issuer: string, configuration: Record<string, unknown>) => { callback(): RequestListener };
}

export interface OpenIdClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** Account id → its claims (preferred_username, name, email); e-mails are verified. */
  accounts: Record<string, { preferred_username: string; name: string; email: string }>;
}

export interface OpenIdProvider {
  issuer: string;
  register(client: OpenIdClient): Promise<void>;
  close(): Promise<void>;
}

export async function startOpenIdProvider(): Promise<OpenIdProvider> {
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    async register(client) {
      // A non-literal specifier: the module has no types; the interface above says what is used.
      const specifier: string = 'oidc-provider';
      const { Provider } = (await import(specifier)) as OidcProviderModule;
      const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
      handler = new Provider(issuer, {
        clients: [{
          client_id: client.clientId, client_secret: client.clientSecret, redirect_uris: client.redirectUris,
          grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post',
        }],
        jwks: { keys: [{ ...signingKey, kid: 'test', use: 'sig' }] },
        cookies: { keys: [randomBytes(16).toString('hex')] },
        pkce: { required: () => true },
        // Explicit lifetimes keep oidc-provider from noting each default it falls back to.
        ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
        claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email', 'email_verified'] },
        findAccount: (_ctx: unknown, accountId: string) => {
          const claims = client.accounts[accountId];
          return claims === undefined ? undefined : { accountId, claims: () => ({ sub: accountId, ...claims, email_verified: true }) };
        },
        features: { devInteractions: { enabled: true } },
      }).callback();
    },
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    }),
  };
}
