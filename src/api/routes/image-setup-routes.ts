// /api/v1/image-setups and /api/v1/machines/{id}/boot-queue: frozen image versions a management OS
// writes (BAAS image setups), and each machine's FIFO queue of them.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { requireRole } from '../auth.js';
import { actorOf, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

export const SetupImage = Type.Object({
  image: S.Name, version: Type.String(), update: Type.Boolean({ description: 'the machine sends its changes back as a new version' }),
});
export const ImageSetup = Type.Object({
  id: Type.String(), name: Type.String(), owner: Nullable(Type.String()), images: Type.Array(SetupImage),
  createdAt: S.Timestamp, updatedAt: S.Timestamp, revision: Type.Integer(),
});
export const BootQueueEntry = Type.Object({
  seq: Type.Integer(), machineId: Type.String(), setup: Type.String(), update: Type.Boolean(), actor: Type.String(),
  createdAt: S.Timestamp, poppedAt: Nullable(S.Timestamp),
});
const Enqueue = Type.Object(
  { setup: Type.String({ minLength: 1, maxLength: 128, description: 'image setup id' }), update: Type.Optional(Type.Boolean({ default: false })) },
  { additionalProperties: false },
);
const IdParam = Type.Object({ id: Type.String({ maxLength: 128 }) });
const MachineParam = Type.Object({ id: Type.String({ maxLength: 128, description: 'machine id or one of its MAC addresses' }) });
const QueueQuery = Type.Object({
  popped: Type.Optional(Type.Boolean({ description: 'entries already taken (newest first) instead of waiting ones (oldest first)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});

export const imageSetupRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };
  const tags = ['image-setups'];

  app.get('/image-setups', {
    ...read,
    schema: { tags, summary: 'List image setups', querystring: Type.Object({ owner: Type.Optional(Type.String({ maxLength: 63 })) }), response: { 200: S.itemsOf(ImageSetup) } },
  }, async (req) => ({ items: await s.setups.list({ owner: req.query.owner }) }));

  app.get('/image-setups/:id', { ...read, schema: { tags, summary: 'Show an image setup', params: IdParam, response: { 200: ImageSetup, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'image-setup', req.params.id, await s.setups.get(req.params.id)));

  app.get('/machines/:id/boot-queue', {
    ...read,
    schema: { tags: ['machines'], summary: "The machine's boot queue: waiting setups, or those already taken", params: MachineParam, querystring: QueueQuery, response: { 200: S.itemsOf(BootQueueEntry), ...problemResponses(404) } },
  }, async (req) => {
    const m = await s.machines.get(req.params.id);
    return { items: await s.setups.queue(m.id, { popped: req.query.popped ?? false, limit: req.query.limit ?? 100 }) };
  });

  app.post('/machines/:id/boot-queue', {
    ...write,
    schema: { tags: ['machines'], summary: "Queue an image setup for the machine's management OS (FIFO)", params: MachineParam, body: Enqueue, response: { 201: BootQueueEntry, ...problemResponses(400, 404) } },
  }, async (req, reply) => {
    const m = await s.machines.get(req.params.id);
    const entry = await s.setups.enqueue({ machineId: m.id, setup: req.body.setup, update: req.body.update ?? false, actor: actorOf(req) });
    return reply.code(201).send(entry);
  });
};
