// Small helpers shared by admin routes: ETag out, If-Match in, auth per role.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { etagOf, revisionFromIfMatch } from '../core/revision.js';
import type { ExpectedRevision } from '../core/ports.js';

export function withEtag<T extends { revision: number }>(reply: FastifyReply, kind: string, key: string, resource: T): T {
  void reply.header('ETag', etagOf(kind, key, resource.revision));
  return resource;
}

export function expectedRevision(req: FastifyRequest, kind: string, key: string): ExpectedRevision {
  const h = req.headers['if-match'];
  return revisionFromIfMatch(typeof h === 'string' ? h : h?.[0], kind, key);
}

export function actorOf(req: FastifyRequest): string {
  return req.token?.name ?? 'anonymous';
}

export const problemResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [c, { $ref: 'Problem#' }]));
