// /api/v1/jobs: asynchronous work (image builds...): list, show, create (types open to the API),
// cancel, and the log, whole or followed live until the job ends. /api/v1/job-types lists the types.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static, type TSchema } from 'typebox';
import { KilnError } from '../../core/kiln-error.js';
import { JOB_STATUSES, type JobStatus } from '../../jobs/job.js';
import { MAX_TIMEOUT_SECONDS } from '../../jobs/job-service.js';
import { requireRole } from '../auth.js';
import { actorOf, problemResponses } from '../http-helpers.js';
import * as S from '../schemas.js';
import type { Services } from '../services.js';

const tags = ['jobs'];
const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

export const JobStatusSchema = Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]);
// Kept equal to JOB_STATUSES: a status added on one side only stops this compiling.
const statusesMatch: [Static<typeof JobStatusSchema>] extends [JobStatus] ? ([JobStatus] extends [Static<typeof JobStatusSchema>] ? true : false) : false = true;
void statusesMatch;
export const Job = Type.Object({
  id: Type.String(),
  type: Type.String(),
  status: JobStatusSchema,
  stage: Nullable(Type.String({ description: "the step the job is at, in its type's own words" })),
  progress: Nullable(Type.Integer({ minimum: 0, maximum: 100 })),
  input: Type.Unknown(),
  result: Type.Unknown({ description: 'what the job produced (null until it succeeded)' }),
  error: Nullable(Type.Object({ code: Type.String(), message: Type.String() }, { description: 'why the job (or its last attempt) did not succeed; codes in docs/errors.md' })),
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  timeoutSeconds: Type.Integer(),
  priority: Type.Integer(),
  runAfter: S.Timestamp,
  workerId: Nullable(Type.String()),
  leaseExpiresAt: Nullable(S.Timestamp),
  cancelRequestedAt: Nullable(S.Timestamp),
  createdBy: Nullable(Type.String()),
  createdAt: S.Timestamp,
  startedAt: Nullable(S.Timestamp),
  finishedAt: Nullable(S.Timestamp),
  updatedAt: S.Timestamp,
});
const JobCreate = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 63 }),
    input: Type.Optional(Type.Unknown({ description: "checked against the type's inputSchema (GET /job-types)" })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    priority: Type.Optional(Type.Integer({ minimum: -100, maximum: 100, description: 'higher runs first (default 0)' })),
  },
  { additionalProperties: false },
);
const JobType = Type.Object({
  type: Type.String(), description: Type.String(), apiCreatable: Type.Boolean(), timeoutSeconds: Type.Integer(), maxAttempts: Type.Integer(),
  inputSchema: Type.Unknown({ description: 'JSON Schema of the input' }),
});
const IdParam = Type.Object({ id: Type.String({ maxLength: 128 }) });
const ListQuery = Type.Object({
  status: Type.Optional(Type.String({ maxLength: 128, description: `comma-separated: ${JOB_STATUSES.join(', ')}` })),
  type: Type.Optional(Type.String({ maxLength: 63 })),
  after: Type.Optional(Type.String({ maxLength: 128, description: 'cursor: the `next` of the previous page' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});
const LogQuery = Type.Object({
  follow: Type.Optional(Type.String({ pattern: '^(1|0|true|false)$', description: '1: keep streaming what is added until the job ends' })),
});

export const jobRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services: s }) => {
  const read = { preHandler: requireRole(s.tokens, 'viewer') };
  const write = { preHandler: requireRole(s.tokens, 'operator') };
  // Followers end when Kiln stops, so closing the listener does not wait for jobs to finish.
  const followers = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const f of followers) f.abort();
  });

  app.get('/jobs', {
    ...read,
    schema: { tags, summary: 'List jobs, newest first (filter by status, type)', querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Job), next: Nullable(Type.String()) }), ...problemResponses(400) } },
  }, async (req) => {
    const q = req.query;
    const status = q.status?.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const bad = status?.filter((x) => !JOB_STATUSES.includes(x as JobStatus)) ?? [];
    if (bad.length > 0) throw new KilnError('KILN_REQUEST_INVALID', `status must be among ${JOB_STATUSES.join(', ')} (got ${bad.join(', ')})`);
    const limit = q.limit ?? 100;
    const items = await s.jobs.list({ status: status as JobStatus[] | undefined, type: q.type, after: q.after, limit });
    return { items, next: items.length === limit ? items[items.length - 1]!.id : null };
  });

  app.post('/jobs', {
    ...write,
    schema: { tags, summary: 'Start a job of a type open to the API', body: JobCreate, response: { 201: Job, ...problemResponses(400, 403) } },
  }, async (req, reply) => {
    const b = req.body;
    const job = await s.jobs.create(b.type, b.input ?? {}, { actor: actorOf(req), timeoutSeconds: b.timeoutSeconds, maxAttempts: b.maxAttempts, priority: b.priority });
    return reply.code(201).header('Location', `/api/v1/jobs/${job.id}`).send(job);
  });

  app.get('/jobs/:id', { ...read, schema: { tags, summary: 'Show a job', params: IdParam, response: { 200: Job, ...problemResponses(404) } } },
    async (req) => s.jobs.get(req.params.id));

  app.post('/jobs/:id/cancel', {
    ...write,
    schema: {
      tags, summary: 'Cancel a job', params: IdParam,
      description: 'A queued job is cancelled at once; a running one is stopped by its worker within a heartbeat (its processes killed, its work directory removed). 409 once finished.',
      response: { 202: Job, ...problemResponses(404, 409) },
    },
  }, async (req, reply) => reply.code(202).send(await s.jobs.cancel(req.params.id)));

  app.get('/jobs/:id/logs', {
    ...read,
    schema: {
      tags, summary: "A job's log (text/plain); follow=1 streams what is added until the job ends", params: IdParam, querystring: LogQuery,
      response: { ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const follow = req.query.follow === '1' || req.query.follow === 'true';
    void reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
    if (!follow) return reply.send(await s.jobs.readLog(req.params.id));
    const stop = new AbortController();
    followers.add(stop);
    reply.raw.once('close', () => {
      stop.abort();
      followers.delete(stop);
    });
    // Proxies that buffer responses (nginx) would hold a live log back.
    return reply.header('x-accel-buffering', 'no').send(await s.jobs.followLog(req.params.id, stop.signal));
  });

  app.get('/job-types', { ...read, schema: { tags, summary: 'Job types and their input schemas', response: { 200: S.itemsOf(JobType) } } },
    async () => ({ items: s.jobs.listTypes() }));
};
