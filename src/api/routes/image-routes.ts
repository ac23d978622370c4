// /api/v1/images: images, versions, channels (promote, rollback), soft delete, restore, purge.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { requireRole } from '../auth.js';
import { actorOf, expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const ImageParam = Type.Object({ name: Type.String({ maxLength: 128 }) });
const VersionParam = Type.Object({ name: Type.String({ maxLength: 128 }), version: Type.String({ maxLength: 128 }) });
const ChannelParam = Type.Object({ name: Type.String({ maxLength: 128 }), channel: Type.String({ maxLength: 128 }) });
const tags = ['images'];

export const imageRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };

  app.get('/images', {
    ...read,
    schema: { tags, summary: 'List images', querystring: Type.Object({ deleted: Type.Optional(Type.Boolean({ description: 'list soft-deleted images instead' })) }), response: { 200: S.itemsOf(S.Image) } },
  }, async (req) => ({ items: await s.images.list({ deleted: req.query.deleted ?? false }) }));

  app.post('/images', {
    ...write,
    schema: { tags, summary: 'Create an image', body: S.ImageCreate, response: { 201: S.Image, ...problemResponses(400, 409) } },
  }, async (req, reply) => {
    const image = await s.images.create(req.body);
    return reply.code(201).send(withEtag(reply, 'image', image.name, image));
  });

  app.get('/images/:name', { ...read, schema: { tags, summary: 'Show an image (deleted ones too)', params: ImageParam, response: { 200: S.Image, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'image', req.params.name, await s.images.get(req.params.name, true)));

  app.patch('/images/:name', {
    ...write,
    schema: { tags, summary: 'Update description or labels (If-Match supported)', params: ImageParam, body: S.ImagePatch, response: { 200: S.Image, ...problemResponses(404, 412) } },
  }, async (req, reply) => withEtag(reply, 'image', req.params.name, await s.images.update(req.params.name, req.body, expectedRevision(req, 'image', req.params.name))));

  app.delete('/images/:name', {
    ...write,
    schema: { tags, summary: 'Soft-delete an image (restorable until purged)', params: ImageParam, response: { 200: S.Image, ...problemResponses(404, 412) } },
  }, async (req, reply) => withEtag(reply, 'image', req.params.name, await s.images.delete(req.params.name, expectedRevision(req, 'image', req.params.name))));

  app.post('/images/:name/restore', { ...write, schema: { tags, summary: 'Restore a soft-deleted image', params: ImageParam, response: { 200: S.Image, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'image', req.params.name, await s.images.restore(req.params.name)));

  app.post('/images/:name/purge', {
    preHandler: requireRole(s.tokens, 'admin'),
    schema: { tags, summary: 'Purge a soft-deleted image and the blobs only it used (admin)', params: ImageParam, response: { 200: Type.Object({ purged: Type.String(), purgedBlobs: Type.Integer() }), ...problemResponses(404, 409) } },
  }, async (req) => ({ purged: req.params.name, ...(await s.images.purge(req.params.name)) }));

  app.get('/images/:name/versions', { ...read, schema: { tags, summary: 'List versions', params: ImageParam, response: { 200: S.itemsOf(S.ImageVersion) } } },
    async (req) => ({ items: await s.images.listVersions(req.params.name) }));

  app.post('/images/:name/versions', {
    ...write,
    schema: { tags, summary: 'Create an immutable version from uploaded artifacts', params: ImageParam, body: S.VersionCreate, response: { 201: S.ImageVersion, ...problemResponses(400, 404, 409) } },
  }, async (req, reply) => reply.code(201).send(await s.images.createVersion(req.params.name, req.body)));

  app.get('/images/:name/versions/:version', { ...read, schema: { tags, summary: 'Show a version', params: VersionParam, response: { 200: S.ImageVersion, ...problemResponses(404) } } },
    async (req) => s.images.getVersion(req.params.name, req.params.version));

  app.get('/images/:name/channels', { ...read, schema: { tags, summary: 'List channels', params: ImageParam, response: { 200: S.itemsOf(S.Channel) } } },
    async (req) => ({ items: await s.images.listChannels(req.params.name) }));

  app.get('/images/:name/channels/:channel', {
    ...read,
    schema: { tags, summary: 'Show a channel with its history', params: ChannelParam, response: { 200: S.ChannelWithHistory, ...problemResponses(404) } },
  }, async (req, reply) => {
    const { channel, history } = await s.images.getChannel(req.params.name, req.params.channel);
    return withEtag(reply, 'channel', `${channel.image}/${channel.name}`, { ...channel, history });
  });

  app.post('/images/:name/channels/:channel/promote', {
    ...write,
    schema: { tags, summary: 'Point a channel at a version (creates the channel)', params: ChannelParam, body: S.Promote, response: { 200: S.Channel, ...problemResponses(404, 412) } },
  }, async (req, reply) => {
    const key = `${req.params.name}/${req.params.channel}`;
    const ch = await s.images.promote(req.params.name, req.params.channel, req.body.version, actorOf(req), expectedRevision(req, 'channel', key));
    return withEtag(reply, 'channel', key, ch);
  });

  app.post('/images/:name/channels/:channel/rollback', {
    ...write,
    schema: { tags, summary: 'Move a channel back to the version it pointed at before', params: ChannelParam, response: { 200: S.Channel, ...problemResponses(404, 409, 412) } },
  }, async (req, reply) => {
    const key = `${req.params.name}/${req.params.channel}`;
    return withEtag(reply, 'channel', key, await s.images.rollback(req.params.name, req.params.channel, actorOf(req), expectedRevision(req, 'channel', key)));
  });
};
