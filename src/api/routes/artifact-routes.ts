// /api/v1/artifacts: streaming, verified uploads (raw body, any size, constant memory) and downloads.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { sendArtifact, storedArtifact } from '../../boot/http/send-artifact.js';
import { requireRole } from '../auth.js';
import { problemResponses } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const tags = ['artifacts'];
const UploadQuery = Type.Object({
  size: Type.Optional(Type.Integer({ minimum: 0, description: 'expected size in bytes; the upload fails unless it matches' })),
  sha256: Type.Optional(S.Sha256),
});
const ShaParam = Type.Object({ sha256: S.Sha256 });

export const artifactRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  // Upload bodies are streamed to the blob store untouched, whatever their content type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  async function upload(req: FastifyRequest, reply: FastifyReply, expectedSha256: string | undefined, expectedSize: number | undefined) {
    const declared = req.headers['content-length'];
    const size = expectedSize ?? (declared !== undefined ? Number(declared) : undefined);
    const type = req.headers['content-type']?.split(';')[0]?.trim();
    const { artifact, created } = await s.artifacts.upload(req.raw, { expectedSha256, expectedSize: size, mediaType: type });
    return reply.code(created ? 201 : 200).header('Location', `/api/v1/artifacts/${artifact.sha256}`).send(artifact);
  }

  const write = { preHandler: requireRole(s.tokens, 'operator') };
  const uploadDoc = 'Raw request body (any Content-Type; it becomes the media type). sha256 is computed while streaming; nothing is stored unless all bytes arrive and match.';

  app.post('/artifacts', {
    ...write,
    schema: { tags, summary: 'Upload an artifact', description: uploadDoc, querystring: UploadQuery, response: { 200: S.Artifact, 201: S.Artifact, ...problemResponses(400, 413, 422) } },
  }, async (req, reply) => upload(req, reply, req.query.sha256, req.query.size));

  app.put('/artifacts/:sha256', {
    ...write,
    schema: { tags, summary: 'Upload an artifact whose sha256 is known (idempotent)', description: uploadDoc, params: ShaParam, querystring: UploadQuery, response: { 200: S.Artifact, 201: S.Artifact, ...problemResponses(400, 413, 422) } },
  }, async (req, reply) => upload(req, reply, req.params.sha256, req.query.size));

  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  app.get('/artifacts', { ...read, schema: { tags, summary: 'List artifacts', response: { 200: S.itemsOf(S.Artifact) } } }, async () => ({ items: await s.artifacts.list() }));

  async function download(req: FastifyRequest, reply: FastifyReply) {
    const a = await s.artifacts.get((req.params as { sha256: string }).sha256);
    reply.hijack();
    await sendArtifact(req.raw, reply.raw, storedArtifact(s.artifacts, a));
  }
  const dlSchema = { tags, summary: 'Download an artifact (Range, If-None-Match, If-Range)', params: ShaParam };
  // Fastify derives HEAD from GET; sendArtifact answers HEAD without a body.
  app.get('/artifacts/:sha256', { ...read, schema: dlSchema }, download);
};
