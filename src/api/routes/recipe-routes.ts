// /api/v1/recipes: build instructions (a debootstrap spec, a rootfs tar, an OCI image layout, a kiwi-ng
// description) uploaded as the raw request body and checked while they stream in; and
// /api/v1/recipes/{name}/builds, which checks a build request and queues an `image-build` job.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { sendArtifact, storedArtifact } from '../../boot/http/send-artifact.js';
import type { RECIPE_KINDS } from '../../core/recipes/recipe.js';
import { requireRole } from '../auth.js';
import { actorOf, expectedRevision, problemResponses, withEtag } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';
import { Job } from './job-routes.js';

const tags = ['recipes'];
const Kind = Type.Union([Type.Literal('debootstrap'), Type.Literal('rootfs-archive'), Type.Literal('oci-archive'), Type.Literal('kiwi-ng')]);
// Kept equal to RECIPE_KINDS: a kind added on one side only stops this compiling.
const kindsMatch: [(typeof RECIPE_KINDS)[number]] extends [Static<typeof Kind>] ? ([Static<typeof Kind>] extends [(typeof RECIPE_KINDS)[number]] ? true : false) : false = true;
void kindsMatch;
export const Recipe = Type.Object({
  id: Type.String({ description: 'stable id (UUID), for clients that address recipes by id' }),
  name: S.Name,
  kind: Kind,
  arch: S.Arch,
  description: Type.String(),
  sha256: S.Sha256,
  size: Type.Integer({ description: 'bytes of the recipe file' }),
  createdAt: S.Timestamp,
  updatedAt: S.Timestamp,
  revision: Type.Integer(),
});
const CreateQuery = Type.Object({
  name: S.Name,
  kind: Kind,
  arch: Type.Optional(S.Arch),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
});
const RecipePatch = Type.Object({ description: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false });
const BuildCreate = Type.Object(
  {
    image: S.Name,
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'default: the next number' })),
    arch: Type.Optional(S.Arch),
    promote: Type.Optional(S.Name),
    cmdline: Type.Optional(Type.String({ maxLength: 4096 })),
    initrd: Type.Optional(Type.Union([Type.Literal('kiln-live'), Type.Literal('image')])),
    initrdModules: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600, description: 'default 3600' })),
  },
  { additionalProperties: false },
);

const uploadDoc =
  'The recipe file is the raw request body (any Content-Type): debootstrap, a YAML or JSON spec (suite, mirror, variant, components, packages, exclude, kernelPackage, postInstall); ' +
  'rootfs-archive, a tar (plain, gzip, zstd, xz or bzip2) of a root filesystem; oci-archive, an OCI image layout tarball; kiwi-ng, a tar of a kiwi description. ' +
  'It is checked while it streams in; a refused one (KILN_RECIPE_INVALID) leaves nothing stored.';

export const recipeRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };

  app.get('/recipes', { ...read, schema: { tags, summary: 'List recipes', response: { 200: S.itemsOf(Recipe) } } }, async () => ({ items: await s.recipes.list() }));

  app.get('/recipes/:name', { ...read, schema: { tags, summary: 'Show a recipe', params: S.NameParam, response: { 200: Recipe, ...problemResponses(404) } } },
    async (req, reply) => withEtag(reply, 'recipe', req.params.name, await s.recipes.get(req.params.name)));

  app.patch('/recipes/:name', { ...write, schema: { tags, summary: "Change a recipe's description (If-Match supported)", params: S.NameParam, body: RecipePatch, response: { 200: Recipe, ...problemResponses(400, 404, 412) } } },
    async (req, reply) => withEtag(reply, 'recipe', req.params.name, await s.recipes.update(req.params.name, req.body, expectedRevision(req, 'recipe', req.params.name))));

  app.delete('/recipes/:name', { ...write, schema: { tags, summary: 'Delete a recipe (its file stays an artifact; builds of it still queued fail with KILN_RECIPE_NOT_FOUND)', params: S.NameParam, response: { 204: Type.Null(), ...problemResponses(404, 412) } } },
    async (req, reply) => {
      await s.recipes.delete(req.params.name, expectedRevision(req, 'recipe', req.params.name));
      return reply.code(204).send(null);
    });

  app.get('/recipes/:name/content', { ...read, schema: { tags, summary: 'Download the recipe file (Range supported)', params: S.NameParam } }, async (req, reply) => {
    const r = await s.recipes.get(req.params.name);
    const a = await s.artifacts.get(r.sha256);
    reply.hijack();
    await sendArtifact(req.raw, reply.raw, storedArtifact(s.artifacts, a));
  });

  app.post('/recipes/:name/builds', {
    ...write,
    schema: {
      tags, summary: 'Build a new image version from the recipe (queues an image-build job)', params: S.NameParam, body: BuildCreate,
      description: 'Checked first (the recipe exists, the image is not deleted and has no such version, names are valid); the recipe content is pinned. Follow the job with GET /jobs/{id}/logs?follow=1; its result names the version.',
      response: { 202: Job, ...problemResponses(400, 404, 409) },
    },
  }, async (req, reply) => {
    const { timeoutSeconds, ...build } = req.body;
    const plan = await s.recipes.planBuild({ ...build, recipe: req.params.name });
    const job = await s.jobs.create('image-build', plan, { actor: actorOf(req), timeoutSeconds });
    return reply.code(202).header('Location', `/api/v1/jobs/${job.id}`).send(job);
  });

  // Uploads: their own scope, where bodies are streams whatever their content type.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    const mediaType = (h: string | undefined) => h?.split(';')[0]?.trim().toLowerCase() || undefined;

    raw.post('/recipes', {
      ...write,
      schema: { tags, summary: 'Create a recipe: the file is the body, the rest in the query', description: uploadDoc, querystring: CreateQuery, response: { 201: Recipe, ...problemResponses(400, 409) } },
    }, async (req, reply) => {
      const q = req.query as Static<typeof CreateQuery>;
      const r = await s.recipes.create({ ...q, mediaType: mediaType(req.headers['content-type']) }, req.raw);
      return reply.code(201).header('Location', `/api/v1/recipes/${r.name}`).send(withEtag(reply, 'recipe', r.name, r));
    });

    raw.put('/recipes/:name/content', {
      ...write,
      schema: { tags, summary: 'Replace the recipe file (same kind; If-Match supported)', description: uploadDoc, params: S.NameParam, response: { 200: Recipe, ...problemResponses(400, 404, 412) } },
    }, async (req, reply) => {
      const { name } = req.params as { name: string };
      const r = await s.recipes.replaceContent(name, req.raw, expectedRevision(req, 'recipe', name), mediaType(req.headers['content-type']));
      return withEtag(reply, 'recipe', r.name, r);
    });
  });
};
