// Customize sessions: POST /api/v1/images/{name}/versions/{version}/customize starts one (an
// image-customize job), GET /api/v1/jobs/{id}/customize shows where to connect, POST
// /api/v1/jobs/{id}/done ends it (the job then saves the new version).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { MAX_TIMEOUT_SECONDS } from '../../jobs/job-service.js';
import { requireRole } from '../auth.js';
import { actorOf, problemResponses } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';
import { Job } from './job-routes.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

const CustomizeCreate = Type.Object(
  {
    publicKey: Type.String({ minLength: 1, maxLength: 128, description: 'name or id of the registered public key that may log in' }),
    newVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'version to create (default: the next number)' })),
    promote: Type.Optional(S.Name),
    targetImage: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'image that gets the new version (created when absent; default: this image)' })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: MAX_TIMEOUT_SECONDS, description: 'how long the session may last before it is stopped with nothing saved (default one day)' })),
  },
  { additionalProperties: false },
);
const Connection = Type.Object({
  host: Type.String(), port: Type.Integer(), user: Type.String(),
  hostKeyFingerprint: Type.String({ description: "SHA256 fingerprint of the session's host key (fresh for every session)" }),
});
const Session = Type.Object({
  jobId: Type.String(), image: S.Name, version: Type.String(), publicKeyId: Type.String(), publicKeyFingerprint: Type.String(),
  connection: Nullable(Connection),
  doneRequestedAt: Nullable(S.Timestamp), doneRequestedBy: Nullable(Type.String()), createdAt: S.Timestamp, updatedAt: S.Timestamp,
});
const CustomizeView = Type.Object({
  job: Job,
  session: Nullable(Session),
  sshCommand: Nullable(Type.String({ description: 'while the job waits on the user: the command that logs in (add -i <your key>)' })),
});
const VersionParam = Type.Object({ name: Type.String({ maxLength: 128 }), version: Type.String({ maxLength: 128 }) });
const IdParam = Type.Object({ id: Type.String({ maxLength: 128 }) });

export const customizeRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };

  app.post('/images/:name/versions/:version/customize', {
    ...write,
    schema: {
      tags: ['images'], summary: 'Customize a version over SSH: starts an image-customize job', params: VersionParam, body: CustomizeCreate,
      description: "The job unpacks the version's rootfs, runs an SSH server that lets the given public key in as root, chrooted into it, and waits (stage waiting_on_user; GET /jobs/{id}/customize says where to connect). Done (POST /jobs/{id}/done, or creating /tmp/complete inside) saves the changes as a new version; cancel throws them away.",
      response: { 201: Job, ...problemResponses(400, 404, 409) },
    },
  }, async (req, reply) => {
    const b = req.body;
    const job = await s.customize.start({ image: req.params.name, version: req.params.version, publicKey: b.publicKey, newVersion: b.newVersion, promote: b.promote, targetImage: b.targetImage }, { actor: actorOf(req), timeoutSeconds: b.timeoutSeconds });
    return reply.code(201).header('Location', `/api/v1/jobs/${job.id}`).send(job);
  });

  app.get('/jobs/:id/customize', {
    ...read,
    schema: { tags: ['jobs'], summary: 'A customize job with its session: where to connect, which key, whether done was asked', params: IdParam, response: { 200: CustomizeView, ...problemResponses(404) } },
  }, async (req) => s.customize.show(req.params.id));

  app.post('/jobs/:id/done', {
    ...write,
    schema: {
      tags: ['jobs'], summary: 'End a customize session: the job stops it and saves the image as a new version', params: IdParam,
      description: 'Accepted while the job waits on the user (409 before and after); repeating it changes nothing. Follow the job to see the new version in its result.',
      response: { 202: CustomizeView, ...problemResponses(404, 409) },
    },
  }, async (req, reply) => reply.code(202).send(await s.customize.done(req.params.id, actorOf(req))));
};
