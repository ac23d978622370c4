// Bearer-token authentication and role checks for the admin API.
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { KilnError } from '../core/kiln-error.js';
import { roleAllows, type TokenService } from '../core/services/token-service.js';
import type { Role, Token } from '../core/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    token?: Token;
  }
}

export function requireRole(tokens: TokenService, role: Role): preHandlerAsyncHookHandler {
  return async function authorize(req: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const h = req.headers.authorization;
    if (h === undefined) throw new KilnError('KILN_AUTH_REQUIRED', 'send Authorization: Bearer <token>');
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (m === null) throw new KilnError('KILN_AUTH_REQUIRED', 'the Authorization header must be Bearer <token>');
    const token = await tokens.authenticate(m[1]!);
    if (token === null) throw new KilnError('KILN_AUTH_INVALID_TOKEN');
    if (!roleAllows(token.role, role)) throw new KilnError('KILN_AUTH_FORBIDDEN', `this needs role ${role}; token ${token.name} has ${token.role}`);
    req.token = token;
  };
}
