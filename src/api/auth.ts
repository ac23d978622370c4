// Authentication and role checks for the admin API: bearer tokens (installation-wide or acting for a
// user) and browser login sessions (the kiln_session cookie).
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { KilnError } from '../core/kiln-error.js';
import { roleAllows, type TokenService } from '../core/services/token-service.js';
import { minRole, type UserService } from '../core/services/user-service.js';
import type { Role, Token, User } from '../core/types.js';
import { readCookie } from './cookies.js';

declare module 'fastify' {
  interface FastifyRequest {
    token?: Token;
    /** The user acting (a session or a user-scoped token); absent for installation tokens. */
    user?: User;
  }
}

export const SESSION_COOKIE = 'kiln_session';

/**
 * requireRole is called with the token service alone (by every route module), so the user service
 * that sessions and user-scoped tokens need is attached once per token service by the modules that
 * know both (user, login and BAAS routes).
 */
const usersOf = new WeakMap<TokenService, UserService>();

export function attachUsers(tokens: TokenService, users: UserService): void {
  usersOf.set(tokens, users);
}

export type Principal =
  | { kind: 'token'; token: Token; role: Role; user: User | null }
  | { kind: 'machine'; token: Token; machineId: string }
  | { kind: 'session'; token: Token; role: Role; user: User };

/**
 * Who sends the request: a bearer token (a machine-scoped one included), else a session cookie; null
 * when neither is presented. A presented but unknown or revoked credential is an error, never anonymous.
 */
export async function authenticate(tokens: TokenService, req: FastifyRequest): Promise<Principal | null> {
  const users = usersOf.get(tokens);
  const h = req.headers.authorization;
  if (h === undefined) {
    const secret = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (secret === null || users === undefined) return null;
    const found = await users.authenticateSession(secret);
    if (found === null) throw new KilnError('KILN_AUTH_REQUIRED', 'the login session has expired or ended; log in again');
    return { kind: 'session', token: sessionToken(found.user, found.session.createdAt), role: found.user.role, user: found.user };
  }
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (m === null) throw new KilnError('KILN_AUTH_REQUIRED', 'the Authorization header must be Bearer <token>');
  const token = await tokens.authenticate(m[1]!);
  if (token === null) throw new KilnError('KILN_AUTH_INVALID_TOKEN');
  if (token.machineId !== null) return { kind: 'machine', token, machineId: token.machineId };
  if (token.user === null) return { kind: 'token', token, role: token.role, user: null };
  // A user's token never does more than the user may now: their role caps it, their removal ends it.
  const user = users === undefined ? null : await users.find(token.user);
  if (user === null) throw new KilnError('KILN_AUTH_INVALID_TOKEN');
  return { kind: 'token', token, role: minRole(token.role, user.role), user };
}

export function requireRole(tokens: TokenService, role: Role): preHandlerAsyncHookHandler {
  return async function authorize(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const who = await authenticate(tokens, req);
    if (who === null) throw new KilnError('KILN_AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    if (who.kind === 'machine') throw new KilnError('KILN_AUTH_FORBIDDEN', `token ${who.token.name} is scoped to one machine; it serves that machine's management OS (BAAS routes) only`);
    if (who.kind === 'session') checkSameOrigin(req);
    if (!roleAllows(who.role, role)) {
      const holder = who.kind === 'session' ? `user ${who.user.name}` : `token ${who.token.name}`;
      throw new KilnError('KILN_AUTH_FORBIDDEN', `this needs role ${role}; ${holder} has ${who.role}`);
    }
    req.token = who.token;
    if (who.user !== null) req.user = who.user;
  };
}

/**
 * Cookies travel with requests other sites make; SameSite=Lax keeps them off cross-site POSTs, and
 * this refuses what is left: a state-changing request whose Origin is not this host.
 */
export function checkSameOrigin(req: FastifyRequest): void {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string | null = null;
  try {
    host = new URL(origin).host;
  } catch {
    host = null;
  }
  // req.host: the Host header, or X-Forwarded-Host from a trusted proxy.
  if (host === null || host !== req.host) throw new KilnError('KILN_AUTH_FORBIDDEN', 'a cross-site request may not use the login session');
}

/** Sessions act through the same request.token as tokens do (actor names, whoami). */
function sessionToken(user: User, createdAt: string): Token {
  return { id: 'session', name: user.name, role: user.role, createdAt, lastUsedAt: null, revokedAt: null, user: user.name, machineId: null };
}
