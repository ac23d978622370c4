// Browser login: /auth/login → identity provider → /auth/callback → session cookie; /auth/logout. (Stub: being written.)
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../services.js';
import type { LoginProviderConfig } from './oidc-login.js';

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

export const loginRoutes: FastifyPluginAsync<LoginRouteOptions> = async () => {};
