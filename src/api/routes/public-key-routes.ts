// /api/v1/public-keys: OpenSSH public keys registered in Kiln (a customize session lets one in):
// create, list, show, soft delete, restore, purge. Viewers read; operators write; purge is admin's.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { requireRole } from '../auth.js';
import { problemResponses } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const tags = ['public-keys'];
const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

export const PublicKey = Type.Object({
  id: Type.String(),
  name: S.Name,
  owner: Nullable(Type.String({ description: 'the user the key belongs to (deleting the user deletes it); null: the installation' })),
  publicKey: Type.String({ description: 'normalised OpenSSH line: `<type> <base64>[ <comment>]`' }),
  type: Type.String({ description: 'ssh-ed25519, ssh-rsa (2048 bits or more), ecdsa-sha2-nistp256/384/521, or their sk- (security key) forms' }),
  comment: Type.String(),
  fingerprint: Type.String({ description: 'SHA256:<base64>, as `ssh-keygen -l` prints it' }),
  createdAt: S.Timestamp,
  deletedAt: Nullable(S.Timestamp),
});
const PublicKeyCreate = Type.Object(
  {
    name: S.Name,
    publicKey: Type.String({ minLength: 1, maxLength: 16384, description: 'one line of a .pub file; private keys, options and certificates are refused' }),
    owner: Type.Optional(Nullable(S.Name)),
  },
  { additionalProperties: false },
);
const KeyParam = Type.Object({ key: Type.String({ minLength: 1, maxLength: 128, description: 'id, or the name of a live key' }) });
const ListQuery = Type.Object({
  deleted: Type.Optional(Type.Boolean({ description: 'list soft-deleted keys instead' })),
  owner: Type.Optional(S.Name),
});

export const publicKeyRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };
  const admin = { preHandler: requireRole(s.tokens, 'admin') };

  app.get('/public-keys', { ...read, schema: { tags, summary: 'List public keys', querystring: ListQuery, response: { 200: S.itemsOf(PublicKey) } } },
    async (req) => ({ items: await s.publicKeys.list({ deleted: req.query.deleted ?? false, owner: req.query.owner }) }));
  app.post('/public-keys', {
    ...write,
    schema: { tags, summary: 'Register an OpenSSH public key', body: PublicKeyCreate, response: { 201: PublicKey, ...problemResponses(400, 404, 409) } },
  }, async (req, reply) => {
    const key = await s.publicKeys.create(req.body);
    return reply.code(201).header('Location', `/api/v1/public-keys/${key.id}`).send(key);
  });
  app.get('/public-keys/:key', { ...read, schema: { tags, summary: 'Show a public key (deleted ones by id)', params: KeyParam, response: { 200: PublicKey, ...problemResponses(404) } } },
    async (req) => s.publicKeys.get(req.params.key, true));
  app.delete('/public-keys/:key', {
    ...write,
    schema: { tags, summary: 'Soft-delete a public key: it opens no new customize session; restorable until purged', params: KeyParam, response: { 200: PublicKey, ...problemResponses(404) } },
  }, async (req) => s.publicKeys.delete(req.params.key));
  app.post('/public-keys/:key/restore', {
    ...write,
    schema: { tags, summary: 'Restore a soft-deleted public key (by id)', params: KeyParam, response: { 200: PublicKey, ...problemResponses(404, 409) } },
  }, async (req) => s.publicKeys.restore(req.params.key));
  app.post('/public-keys/:key/purge', {
    ...admin,
    schema: { tags, summary: 'Remove a soft-deleted public key for good (admin)', params: KeyParam, response: { 200: Type.Object({ purged: Type.String() }), ...problemResponses(404, 409) } },
  }, async (req) => {
    const key = await s.publicKeys.get(req.params.key, true);
    await s.publicKeys.purge(key.id);
    return { purged: key.id };
  });
};
