// /api/v1/payloads: named parameter bundles machines fetch after booting (ncore-api payloads), and
// /api/v1/machines/{id}/payload: which one a machine gets.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { requireRole } from '../auth.js';
import { expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

export const payloadRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };
  const tags = ['payloads'];

  app.get('/payloads', { ...read, schema: { tags, summary: 'List payloads', response: { 200: S.itemsOf(S.Payload) } } }, async () => ({ items: await s.payloads.list() }));
  app.post('/payloads', { ...write, schema: { tags, summary: 'Create a payload', body: S.PayloadCreate, response: { 201: S.Payload, ...problemResponses(400, 409) } } },
    async (req, reply) => {
      const p = await s.payloads.create(req.body);
      return reply.code(201).send(withEtag(reply, 'payload', p.name, p));
    });
  app.get('/payloads/:name', { ...read, schema: { tags, summary: 'Show a payload', params: S.NameParam, response: { 200: S.Payload, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'payload', req.params.name, await s.payloads.get(req.params.name)));
  app.patch('/payloads/:name', { ...write, schema: { tags, summary: 'Change a payload: the fields given replace theirs (If-Match supported)', params: S.NameParam, body: S.PayloadPatch, response: { 200: S.Payload, ...problemResponses(400, 404, 412) } } },
    async (req, reply) => withEtag(reply, 'payload', req.params.name, await s.payloads.update(req.params.name, req.body, expectedRevision(req, 'payload', req.params.name))));
  app.delete('/payloads/:name', { ...write, schema: { tags, summary: 'Delete a payload no machine or profile uses', params: S.NameParam, response: { 204: Type.Null(), ...problemResponses(404, 409, 412) } } },
    async (req, reply) => {
      await s.payloads.delete(req.params.name, expectedRevision(req, 'payload', req.params.name));
      return reply.code(204).send(null);
    });

  const IdParam = Type.Object({ id: Type.String({ maxLength: 128 }) });
  app.put('/machines/:id/payload', { ...write, schema: { tags: ['machines'], summary: "Set the machine's own payload (replaces any previous one)", params: IdParam, body: S.PayloadChoice, response: { 200: S.Machine, ...problemResponses(404, 412) } } },
    async (req, reply) => {
      const m = await s.machines.get(req.params.id);
      return withEtag(reply, 'machine', m.id, await s.payloads.assign(m, req.body.payload, expectedRevision(req, 'machine', m.id)));
    });
  app.delete('/machines/:id/payload', { ...write, schema: { tags: ['machines'], summary: "Clear the machine's own payload (its profile's applies)", params: IdParam, response: { 200: S.Machine, ...problemResponses(404, 412) } } },
    async (req, reply) => {
      const m = await s.machines.get(req.params.id);
      return withEtag(reply, 'machine', m.id, await s.payloads.assign(m, null, expectedRevision(req, 'machine', m.id)));
    });
};
