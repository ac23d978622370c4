// /api/v1/profiles and /api/v1/groups: how to boot, and which machines boot that way.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { requireRole } from '../auth.js';
import { expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

export const profileRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };
  const P = { tags: ['profiles'] };
  const G = { tags: ['groups'] };

  app.get('/profiles', { ...read, schema: { ...P, summary: 'List profiles', response: { 200: S.itemsOf(S.Profile) } } }, async () => ({ items: await s.profiles.list() }));
  app.post('/profiles', { ...write, schema: { ...P, summary: 'Create a profile', body: S.ProfileCreate, response: { 201: S.Profile, ...problemResponses(400, 409) } } },
    async (req, reply) => {
      const p = await s.profiles.create(req.body);
      return reply.code(201).send(withEtag(reply, 'profile', p.name, p));
    });
  app.get('/profiles/:name', { ...read, schema: { ...P, summary: 'Show a profile', params: S.NameParam, response: { 200: S.Profile, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'profile', req.params.name, await s.profiles.get(req.params.name)));
  app.put('/profiles/:name', { ...write, schema: { ...P, summary: 'Replace a profile (If-Match supported)', params: S.NameParam, body: S.ProfileReplace, response: { 200: S.Profile, ...problemResponses(400, 404, 412) } } },
    async (req, reply) => withEtag(reply, 'profile', req.params.name, await s.profiles.replace(req.params.name, req.body, expectedRevision(req, 'profile', req.params.name))));
  app.delete('/profiles/:name', { ...write, schema: { ...P, summary: 'Delete an unused profile', params: S.NameParam, response: { 204: Type.Null(), ...problemResponses(404, 409, 412) } } },
    async (req, reply) => {
      await s.profiles.delete(req.params.name, expectedRevision(req, 'profile', req.params.name));
      return reply.code(204).send(null);
    });

  app.get('/groups', { ...read, schema: { ...G, summary: 'List groups', response: { 200: S.itemsOf(S.Group) } } }, async () => ({ items: await s.groups.list() }));
  app.post('/groups', { ...write, schema: { ...G, summary: 'Create a group (refused when it would tie with another)', body: S.GroupCreate, response: { 201: S.Group, ...problemResponses(400, 404, 409) } } },
    async (req, reply) => {
      const g = await s.groups.create(req.body);
      return reply.code(201).send(withEtag(reply, 'group', g.name, g));
    });
  app.get('/groups/:name', { ...read, schema: { ...G, summary: 'Show a group', params: S.NameParam, response: { 200: S.Group, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'group', req.params.name, await s.groups.get(req.params.name)));
  app.put('/groups/:name', { ...write, schema: { ...G, summary: 'Replace a group (If-Match supported)', params: S.NameParam, body: S.GroupReplace, response: { 200: S.Group, ...problemResponses(400, 404, 409, 412) } } },
    async (req, reply) => withEtag(reply, 'group', req.params.name, await s.groups.replace(req.params.name, req.body, expectedRevision(req, 'group', req.params.name))));
  app.delete('/groups/:name', { ...write, schema: { ...G, summary: 'Delete a group', params: S.NameParam, response: { 204: Type.Null(), ...problemResponses(404, 412) } } },
    async (req, reply) => {
      await s.groups.delete(req.params.name, expectedRevision(req, 'group', req.params.name));
      return reply.code(204).send(null);
    });
};
