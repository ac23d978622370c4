// /api/v1/machines: inventory, assignment, next boot, boot-plan explanation, and the boot timeline.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { KilnError } from '../../core/kiln-error.js';
import { parseMac } from '../../core/mac.js';
import { MACHINE_STATES, type MachineState } from '../../core/types.js';
import { requireRole } from '../auth.js';
import { expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const tags = ['machines'];
const IdParam = Type.Object({ id: Type.String({ maxLength: 128, description: 'machine id or one of its MAC addresses' }) });
const ListQuery = Type.Object({
  mac: Type.Optional(Type.String({ maxLength: 64 })),
  state: Type.Optional(Type.String({ maxLength: 32 })),
  label: Type.Optional(Type.String({ maxLength: 128, description: 'key=value' })),
  after: Type.Optional(Type.String({ maxLength: 128, description: 'cursor: the `next` of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});

export const machineRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };

  app.get('/machines', {
    ...read,
    schema: { tags, summary: 'List machines (filter by mac, state, label)', querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(S.Machine), next: Type.Union([Type.String(), Type.Null()]) }), ...problemResponses(400) } },
  }, async (req) => {
    const q = req.query;
    if (q.state !== undefined && !MACHINE_STATES.includes(q.state as MachineState)) throw new KilnError('KILN_REQUEST_INVALID', `state must be one of ${MACHINE_STATES.join(', ')}`);
    let label: { key: string; value: string } | undefined;
    if (q.label !== undefined) {
      const eq = q.label.indexOf('=');
      if (eq <= 0) throw new KilnError('KILN_REQUEST_INVALID', 'label filter is key=value');
      label = { key: q.label.slice(0, eq), value: q.label.slice(eq + 1) };
    }
    const limit = q.limit ?? 100;
    const items = await s.machines.list({ mac: q.mac !== undefined ? parseMac(q.mac) : undefined, state: q.state as MachineState | undefined, label, after: q.after, limit });
    return { items, next: items.length === limit ? items[items.length - 1]!.id : null };
  });

  app.post('/machines', { ...write, schema: { tags, summary: 'Register a machine', body: S.MachineCreate, response: { 201: S.Machine, ...problemResponses(400, 409) } } },
    async (req, reply) => {
      const m = await s.machines.create(req.body);
      return reply.code(201).send(withEtag(reply, 'machine', m.id, m));
    });

  app.get('/machines/:id', { ...read, schema: { tags, summary: 'Show a machine', params: IdParam, response: { 200: S.Machine, ...problemResponses(404) } } },
    async (req, reply) => {
      const m = await s.machines.get(req.params.id);
      return withEtag(reply, 'machine', m.id, m);
    });

  app.patch('/machines/:id', { ...write, schema: { tags, summary: 'Update a machine (If-Match supported)', params: IdParam, body: S.MachinePatch, response: { 200: S.Machine, ...problemResponses(400, 404, 409, 412) } } },
    async (req, reply) => {
      const m = await s.machines.get(req.params.id);
      const updated = await s.machines.update(m.id, req.body, expectedRevision(req, 'machine', m.id));
      return withEtag(reply, 'machine', m.id, updated);
    });

  app.delete('/machines/:id', { ...write, schema: { tags, summary: 'Forget a machine and its timeline', params: IdParam, response: { 204: Type.Null(), ...problemResponses(404, 412) } } },
    async (req, reply) => {
      const m = await s.machines.get(req.params.id);
      await s.machines.delete(m.id, expectedRevision(req, 'machine', m.id));
      return reply.code(204).send(null);
    });

  for (const [path, field, what] of [['assignment', 'assign', 'Pin a profile to the machine'], ['next-boot', 'setNextBoot', 'Boot a profile once, on the next boot only']] as const) {
    app.put(`/machines/:id/${path}`, { ...write, schema: { tags, summary: what, params: IdParam, body: S.ProfileChoice, response: { 200: S.Machine, ...problemResponses(404, 412) } } },
      async (req, reply) => {
        const m = await s.machines.get(req.params.id);
        return withEtag(reply, 'machine', m.id, await s.machines[field](m.id, req.body.profile, expectedRevision(req, 'machine', m.id)));
      });
    app.delete(`/machines/:id/${path}`, { ...write, schema: { tags, summary: `Clear: ${what.toLowerCase()}`, params: IdParam, response: { 200: S.Machine, ...problemResponses(404, 412) } } },
      async (req, reply) => {
        const m = await s.machines.get(req.params.id);
        return withEtag(reply, 'machine', m.id, await s.machines[field](m.id, null, expectedRevision(req, 'machine', m.id)));
      });
  }

  app.get('/machines/:id/boot-plan', { ...read, schema: { tags, summary: 'What this machine would boot now, and why', params: IdParam, response: { 200: S.BootPlanView, ...problemResponses(404) } } },
    async (req) => {
      const m = await s.machines.get(req.params.id);
      const outcome = await s.boot.explain(m);
      if (outcome.plan === null) return { machine: m.id, bootable: false, reason: outcome.reason };
      const p = outcome.plan;
      return { machine: m.id, bootable: true, reason: outcome.reason, source: p.source, profile: p.profile.name, image: p.image, channel: p.channel, version: p.version };
    });

  app.get('/machines/:id/events', {
    ...read,
    schema: { tags, summary: "The machine's boot timeline, oldest first", params: IdParam, querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }), response: { 200: S.itemsOf(S.BootEvent), ...problemResponses(404) } },
  }, async (req) => ({ items: await s.machines.events(req.params.id, { after: req.query.after, limit: req.query.limit ?? 100 }) }));
};
