// The HTTP edge's one mapping from errors to application/problem+json with a stable `code`.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorCatalogue, type ErrorCode, type ErrorKind } from '../core/error-catalogue.js';
import { KilnError } from '../core/kiln-error.js';

export const STATUS_OF: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  unprocessable: 422,
  unavailable: 503,
  internal: 500,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  [extra: string]: unknown;
}

export function problemOf(code: ErrorCode, detail: string, extra?: Record<string, unknown>): Problem {
  const spec = errorCatalogue[code];
  return { type: `https://kiln.dev/errors/${code}`, title: spec.title, status: STATUS_OF[spec.kind], code, detail, ...extra };
}

/** Fastify's own error codes, translated once. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_VALIDATION: 'KILN_REQUEST_INVALID',
  FST_ERR_CTP_BODY_TOO_LARGE: 'KILN_REQUEST_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'KILN_REQUEST_INVALID',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'KILN_REQUEST_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'KILN_REQUEST_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_TYPE: 'KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE',
};

export function toProblem(err: unknown, instance?: string): Problem {
  if (err instanceof KilnError) return problemOf(err.code, err.message, { ...(err.details ?? {}), ...(instance ? { instance } : {}) });
  const fe = err as Partial<FastifyError> & { type?: string };
  const mapped = fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped !== undefined) return problemOf(mapped, fe.message ?? '', instance ? { instance } : undefined);
  // JSON.parse failures surface as SyntaxError with a 400 status from the content-type parser.
  if (err instanceof SyntaxError && fe.statusCode === 400) return problemOf('KILN_REQUEST_MALFORMED_JSON', err.message);
  if (fe.statusCode === 413) return problemOf('KILN_REQUEST_BODY_TOO_LARGE', fe.message ?? '');
  if (fe.statusCode === 415) return problemOf('KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE', fe.message ?? '');
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) return problemOf('KILN_REQUEST_INVALID', fe.message ?? '');
  return problemOf('KILN_INTERNAL', 'unexpected error; see the server log', instance ? { instance } : undefined);
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  // Unavailable is temporary (database down, shutting down): tell clients and balancers when to retry.
  if (p.status === 503) void reply.header('retry-after', '1');
  return reply.code(p.status).type('application/problem+json').send(p);
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const p = toProblem(err, req.url);
    if (p.status === 503) req.log.warn({ code: p.code, detail: p.detail }, 'request refused: unavailable');
    else if (p.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: p.code, detail: p.detail }, 'request refused');
    void sendProblem(reply, p);
  });
  app.setNotFoundHandler((req, reply) => {
    void sendProblem(reply, problemOf('KILN_ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
}
