// /api/v1/users: users (who log in or own images) and their roles; admins write, viewers read.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { attachUsers, requireRole } from '../auth.js';
import { expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const tags = ['users'];
const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);
const UserName = Type.String({ minLength: 1, maxLength: 63, description: 'lower-case letters, digits, ".", "_", "-"; starts with a letter or digit' });
const Email = Type.String({ maxLength: 254, description: 'an e-mail address' });
const DisplayName = Type.String({ maxLength: 256 });

export const User = Type.Object({
  name: UserName, displayName: Type.String(), email: Nullable(Type.String()), role: S.Role,
  externalId: Nullable(Type.String({ description: '`<provider>:<subject>` of the login identity linked to the user' })),
  createdAt: S.Timestamp, updatedAt: S.Timestamp, revision: Type.Integer(),
});
const UserCreate = Type.Object(
  { name: UserName, displayName: Type.Optional(DisplayName), email: Type.Optional(Nullable(Email)), role: Type.Optional(S.Role) },
  { additionalProperties: false },
);
const UserPatch = Type.Object(
  { displayName: Type.Optional(DisplayName), email: Type.Optional(Nullable(Email)), role: Type.Optional(S.Role) },
  { additionalProperties: false },
);
const UserParam = Type.Object({ name: Type.String({ maxLength: 128 }) });

export const userRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  // Sessions and user-scoped tokens are checked against the users (every route's requireRole).
  attachUsers(s.tokens, s.users);
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const admin = { preHandler: requireRole(s.tokens, 'admin') };

  app.get('/users', { ...read, schema: { tags, summary: 'List users', response: { 200: S.itemsOf(User) } } }, async () => ({ items: await s.users.list() }));

  app.post('/users', {
    ...admin,
    schema: {
      tags, summary: 'Create a user (admin)',
      description: 'A user created with an e-mail address is linked to the first login whose verified address it is; role defaults to login.defaultRole.',
      body: UserCreate, response: { 201: User, ...problemResponses(400, 409) },
    },
  }, async (req, reply) => {
    const u = await s.users.create(req.body);
    return reply.code(201).send(withEtag(reply, 'user', u.name, u));
  });

  app.get('/users/:name', { ...read, schema: { tags, summary: 'Show a user', params: UserParam, response: { 200: User, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'user', req.params.name, await s.users.get(req.params.name)));

  app.patch('/users/:name', {
    ...admin,
    schema: { tags, summary: 'Change display name, e-mail or role (admin; If-Match supported)', params: UserParam, body: UserPatch, response: { 200: User, ...problemResponses(400, 404, 409, 412) } },
  }, async (req, reply) => withEtag(reply, 'user', req.params.name, await s.users.update(req.params.name, req.body, expectedRevision(req, 'user', req.params.name))));

  app.delete('/users/:name', {
    ...admin,
    schema: { tags, summary: 'Delete a user with their sessions, tokens and image setups (admin; refused while they own images)', params: UserParam, response: { 204: Type.Null(), ...problemResponses(404, 409, 412) } },
  }, async (req, reply) => {
    await s.users.delete(req.params.name, expectedRevision(req, 'user', req.params.name));
    return reply.code(204).send(null);
  });
};
