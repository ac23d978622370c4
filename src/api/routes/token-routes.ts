// /api/v1/tokens: admin-only token management. Secrets are returned once, at creation.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { KilnError } from '../../core/kiln-error.js';
import { requireRole } from '../auth.js';
import { problemResponses } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

export const tokenRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const admin = { preHandler: requireRole(s.tokens, 'admin') };
  const tags = ['tokens'];
  app.get('/tokens', { ...admin, schema: { tags, summary: 'List tokens (never their secrets)', response: { 200: S.itemsOf(S.Token) } } }, async () => ({ items: await s.tokens.list() }));
  app.post('/tokens', { ...admin, schema: { tags, summary: 'Create a token; the secret is shown once', body: S.TokenCreate, response: { 201: S.TokenCreated, ...problemResponses(400, 404) } } },
    async (req, reply) => {
      const { user, machine } = req.body;
      if (user !== undefined && machine !== undefined) throw new KilnError('KILN_REQUEST_INVALID', 'a token acts for a user or for a machine, not both');
      const scope = {
        user: user !== undefined ? (await s.users.get(user)).name : null,
        machineId: machine !== undefined ? (await s.machines.get(machine)).id : null,
      };
      const { token, secret } = await s.tokens.create(req.body.name, req.body.role, scope);
      return reply.code(201).send({ ...token, secret });
    });
  app.delete('/tokens/:id', { ...admin, schema: { tags, summary: 'Revoke a token', params: Type.Object({ id: Type.String({ maxLength: 64 }) }), response: { 200: S.Token, ...problemResponses(404) } } },
    async (req) => s.tokens.revoke(req.params.id));
  app.get('/whoami', { preHandler: requireRole(s.tokens, 'viewer'), schema: { tags, summary: 'The token making this request', response: { 200: S.Token } } },
    async (req) => req.token!);
};
