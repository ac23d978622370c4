// The Cray IMS API (Cray-HPE/ims) on Kiln: unversioned paths are v2 as in the original, plus /v2 and
// /v3 (soft delete and the deleted collections). Errors are IMS's application/problem+json (with
// Kiln's `code`); bodies are read as IMS reads them (unknown fields refused with 422). Reads need a
// viewer token, writes an operator one; health and version are open. Objects that links name are
// uploaded through `/objects/<bucket>/<key>`, Kiln's stand-in for the S3 bucket IMS clients use.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/auth.js';
import { toProblem } from '../../api/problem.js';
import type { Services } from '../../api/services.js';
import { sendArtifact } from '../../boot/http/send-artifact.js';
import { KilnError } from '../../core/kiln-error.js';
import type { ImsObject } from '../../core/ims/ims-records.js';
import type { ImsJobsService } from './ims-jobs-service.js';
import type { ImsRecordsService } from './ims-records-service.js';
import { notFound, readFields } from './ims-records-service.js';
import { isUuid } from './ims-fields.js';
import { checkBucket } from './ims-links.js';
import * as S from './ims-schemas.js';
import { imageJson, jobJson, publicKeyJson, recipeJson } from './ims-views.js';
import { ImsObjects } from './ims-objects.js';

export interface ImsRouteOptions {
  services: Services;
  records: ImsRecordsService;
  jobs: ImsJobsService;
  health: () => Promise<boolean>;
  version: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 412: 'Precondition Failed', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 422: 'Unprocessable Entity', 500: 'Internal Server Error', 503: 'Service Unavailable',
};
const MAX_JSON = 1024 * 1024;

function sendImsProblem(reply: FastifyReply, req: FastifyRequest, err: unknown): FastifyReply {
  const p = toProblem(err);
  if (p.status >= 500 && p.status !== 503) req.log.error({ err }, 'IMS request failed');
  else req.log.info({ code: p.code, detail: p.detail }, 'IMS request refused');
  if (p.status === 503) void reply.header('retry-after', '1');
  const { type: _type, title: _title, status, code, detail, instance: _instance, ...extra } = p;
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, instance: req.url.split('?')[0], code, ...extra });
}

/** The JSON body; 400 as IMS answers when there is none or it is not JSON. */
async function readBody(req: FastifyRequest): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of (req.body as Readable | undefined) ?? []) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_JSON) throw new KilnError('KILN_REQUEST_BODY_TOO_LARGE', `JSON bodies are at most ${MAX_JSON} bytes`);
    chunks.push(b);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  const none = () => new KilnError('KILN_IMS_BAD_REQUEST', 'No input provided. Please provide a JSON body.');
  if (text === '') throw none();
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new KilnError('KILN_IMS_BAD_REQUEST', 'The request body is not valid JSON.');
  }
  // IMS's `if not json_data`: null, false, 0, "", [] and {} are no input either.
  if (!value || (typeof value === 'object' && Object.keys(value).length === 0)) throw none();
  return value;
}

/** A query parameter's values (repeated parameters give several). */
function queryValues(v: unknown): string[] {
  return (Array.isArray(v) ? (v as unknown[]) : [v]).filter((x): x is string => typeof x === 'string');
}

/** v2's `cascade` query flag (default true). */
function cascadeOf(req: FastifyRequest): boolean {
  const v = queryValues((req.query as Record<string, unknown>).cascade).at(-1);
  if (v === undefined) return true;
  const s = v.toLowerCase();
  if (['true', 't', '1', 'yes', 'y', 'on'].includes(s)) return true;
  if (['false', 'f', '0', 'no', 'n', 'off'].includes(s)) return false;
  throw new KilnError('KILN_IMS_BAD_REQUEST', `cascade: want true or false, got ${JSON.stringify(s.slice(0, 20))}`);
}

type Id = { Params: { id: string } };

/** The record id of the path. IMS ids are UUIDs: anything else is not found, without asking the store (PostgreSQL refuses NUL in text). */
function idOf(req: FastifyRequest<Id>): string {
  if (!isUuid(req.params.id)) throw notFound();
  return req.params.id;
}

export const imsRoutes: FastifyPluginAsync<ImsRouteOptions> = async (app, opts) => {
  const { records, jobs } = opts;
  const read = { preHandler: requireRole(opts.services.tokens, 'viewer') };
  const write = { preHandler: requireRole(opts.services.tokens, 'operator') };
  app.setErrorHandler((err, req, reply) => sendImsProblem(reply, req, err));
  app.setNotFoundHandler((req, reply) => sendImsProblem(reply, req, new KilnError('KILN_ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));
  // Bodies reach handlers unread: JSON is read as IMS reads it (any Content-Type), objects are streams.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  const noContent = (reply: FastifyReply) => reply.code(204).send();

  app.get('/healthz/live', async () => ({}));
  app.get('/healthz/ready', async (_req, reply) => reply.code((await opts.health().catch(() => false)) ? 200 : 500).send({}));
  app.get('/version', async (_req, reply) => reply.type('application/json').send(JSON.stringify(opts.version)));

  for (const base of ['', '/v2', '/v3']) {
    const v3 = base === '/v3';
    // ---------------------------------------------------------------- recipes
    app.get(`${base}/recipes`, read, async () => (await records.listRecipes()).map(recipeJson));
    app.post(`${base}/recipes`, write, async (req, reply) => reply.code(201).send(recipeJson(await records.createRecipe(await readBody(req)))));
    app.delete(`${base}/recipes`, write, async (req, reply) => {
      const cascade = v3 ? true : cascadeOf(req);
      for (const r of await records.listRecipes()) await (v3 ? records.deleteRecipe(r.id) : records.removeRecipe(r.id, { deleted: false, cascade }));
      return noContent(reply);
    });
    app.get<Id>(`${base}/recipes/:id`, read, async (req) => recipeJson(await records.getRecipe(idOf(req))));
    app.patch<Id>(`${base}/recipes/:id`, write, async (req) => recipeJson(await records.patchRecipe(idOf(req), await readBody(req))));
    app.delete<Id>(`${base}/recipes/:id`, write, async (req, reply) => {
      await (v3 ? records.deleteRecipe(idOf(req)) : records.removeRecipe(idOf(req), { deleted: false, cascade: cascadeOf(req) }));
      return noContent(reply);
    });

    // ---------------------------------------------------------------- images
    app.get(`${base}/images`, read, async () => {
      await jobs.registerFinished();
      return (await records.listImages()).map(imageJson);
    });
    app.post(`${base}/images`, write, async (req, reply) => reply.code(201).send(imageJson(await records.createImage(await readBody(req)))));
    app.delete(`${base}/images`, write, async (req, reply) => {
      const cascade = v3 ? true : cascadeOf(req);
      for (const i of await records.listImages()) await (v3 ? records.deleteImage(i.id) : records.removeImage(i.id, { deleted: false, cascade }));
      return noContent(reply);
    });
    app.get<Id>(`${base}/images/:id`, read, async (req) => {
      await jobs.registerFinished();
      return imageJson(await records.getImage(idOf(req)));
    });
    app.patch<Id>(`${base}/images/:id`, write, async (req) => imageJson(await records.patchImage(idOf(req), await readBody(req))));
    app.delete<Id>(`${base}/images/:id`, write, async (req, reply) => {
      await (v3 ? records.deleteImage(idOf(req)) : records.removeImage(idOf(req), { deleted: false, cascade: cascadeOf(req) }));
      return noContent(reply);
    });

    // ---------------------------------------------------------------- public keys
    app.get(`${base}/public-keys`, read, async () => (await records.listPublicKeys()).map(publicKeyJson));
    app.post(`${base}/public-keys`, write, async (req, reply) => reply.code(201).send(publicKeyJson(await records.createPublicKey(await readBody(req), req.user?.name ?? null))));
    app.delete(`${base}/public-keys`, write, async (_req, reply) => {
      for (const k of await records.listPublicKeys()) await (v3 ? records.deletePublicKey(k.id) : records.removePublicKey(k.id, false));
      return noContent(reply);
    });
    app.get<Id>(`${base}/public-keys/:id`, read, async (req) => publicKeyJson(await records.getPublicKey(idOf(req))));
    app.delete<Id>(`${base}/public-keys/:id`, write, async (req, reply) => {
      await (v3 ? records.deletePublicKey(idOf(req)) : records.removePublicKey(idOf(req), false));
      return noContent(reply);
    });

    // ---------------------------------------------------------------- jobs
    app.get(`${base}/jobs`, read, async () => (await jobs.list()).map(jobJson));
    app.post(`${base}/jobs`, write, async (req, reply) => reply.code(201).send(jobJson(await jobs.create(await readBody(req), actorOf(req)))));
    app.delete(`${base}/jobs`, write, async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      await jobs.deleteMany({ status: queryValues(q.status), jobType: queryValues(q.job_type).at(-1), age: queryValues(q.age).at(-1) });
      return noContent(reply);
    });
    app.get<Id>(`${base}/jobs/:id`, read, async (req) => jobJson(await jobs.get(idOf(req))));
    app.patch<Id>(`${base}/jobs/:id`, write, async (req) => jobs.patch(idOf(req), await readBody(req)));
    app.delete<Id>(`${base}/jobs/:id`, write, async (req, reply) => {
      await jobs.delete(idOf(req));
      return noContent(reply);
    });
  }

  // ---------------------------------------------------------------- v3 deleted collections
  const undelete = async (req: FastifyRequest) => readFields(await readBody(req), S.Undelete);
  const deleted = [
    { path: 'recipes', list: () => records.listRecipes(true).then((l) => l.map(recipeJson)), get: (id: string) => records.getRecipe(id, true).then(recipeJson), undelete: (id: string) => records.undeleteRecipe(id), purge: (id: string) => records.removeRecipe(id, { deleted: true, cascade: true }), ids: () => records.listRecipes(true) },
    { path: 'images', list: () => records.listImages(true).then((l) => l.map(imageJson)), get: (id: string) => records.getImage(id, true).then(imageJson), undelete: (id: string) => records.undeleteImage(id), purge: (id: string) => records.removeImage(id, { deleted: true, cascade: true }), ids: () => records.listImages(true) },
    { path: 'public-keys', list: () => records.listPublicKeys(true).then((l) => l.map(publicKeyJson)), get: (id: string) => records.getPublicKey(id, true).then(publicKeyJson), undelete: (id: string) => records.undeletePublicKey(id), purge: (id: string) => records.removePublicKey(id, true), ids: () => records.listPublicKeys(true) },
  ];
  for (const d of deleted) {
    app.get(`/v3/deleted/${d.path}`, read, async () => d.list());
    app.patch(`/v3/deleted/${d.path}`, write, async (req, reply) => {
      await undelete(req);
      for (const r of await d.ids()) await d.undelete(r.id);
      return noContent(reply);
    });
    app.delete(`/v3/deleted/${d.path}`, write, async (_req, reply) => {
      for (const r of await d.ids()) await d.purge(r.id);
      return noContent(reply);
    });
    app.get<Id>(`/v3/deleted/${d.path}/:id`, read, async (req) => d.get(idOf(req)));
    app.patch<Id>(`/v3/deleted/${d.path}/:id`, write, async (req, reply) => {
      await undelete(req);
      await d.undelete(idOf(req));
      return noContent(reply);
    });
    app.delete<Id>(`/v3/deleted/${d.path}/:id`, write, async (req, reply) => {
      await d.purge(idOf(req));
      return noContent(reply);
    });
  }

  registerObjectRoutes(app, opts, read, write);
};

function actorOf(req: FastifyRequest): string {
  return req.user?.name ?? req.token?.name ?? 'ims';
}

type ObjectReq = { Params: { bucket: string; '*': string } };

/** Kiln's stand-in for the S3 bucket: PUT, GET (Range), HEAD and DELETE an object; GET a bucket lists it. */
function registerObjectRoutes(app: FastifyInstance, opts: ImsRouteOptions, read: object, write: object): void {
  const objects = opts.records.objects;
  const describe = (o: ImsObject) => ({ bucket: o.bucket, key: o.key, size: o.size, md5: o.md5, etag: o.md5, sha256: o.sha256, content_type: o.contentType, created: o.createdAt });
  const refOf = (req: FastifyRequest<ObjectReq>) => ImsObjects.check({ bucket: req.params.bucket, key: req.params['*'] });

  app.get<{ Params: { bucket: string }; Querystring: { prefix?: string } }>('/objects/:bucket', read, async (req) => {
    const prefix = typeof req.query.prefix === 'string' ? req.query.prefix : '';
    // eslint-disable-next-line no-control-regex
    const why = checkBucket(req.params.bucket) ?? (prefix.length > 1024 || /[\u0000-\u001f\u007f]/.test(prefix) ? 'prefixes are at most 1024 characters, without control characters' : null);
    if (why !== null) throw new KilnError('KILN_IMS_BAD_REQUEST', `bucket ${JSON.stringify(req.params.bucket.slice(0, 100))}, prefix ${JSON.stringify(prefix.slice(0, 100))}: ${why}`);
    return (await objects.list(req.params.bucket, prefix)).map(describe);
  });
  app.put<ObjectReq>('/objects/:bucket/*', write, async (req) => {
    const type = req.headers['content-type']?.split(';')[0]?.trim() || 'application/octet-stream';
    // An empty body (Content-Length: 0) reaches no parser: an empty object, as S3 stores it.
    const o = await objects.put(refOf(req), (req.body as Readable | undefined) ?? Readable.from([]), type);
    return describe(o);
  });
  app.get<ObjectReq>('/objects/:bucket/*', read, async (req, reply) => {
    const o = await objects.get(refOf(req));
    reply.hijack();
    // A key may be overwritten: caches revalidate (the ETag is the content's sha256).
    await sendArtifact(req.raw, reply.raw, { ...objects.source(o), cacheControl: 'private, no-cache' });
  });
  app.delete<ObjectReq>('/objects/:bucket/*', write, async (req, reply) => {
    await objects.delete(refOf(req));
    return reply.code(204).send();
  });
}
