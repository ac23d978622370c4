// The BAAS edge's HTTP conventions: errors as plain text (Go's http.Error), JSON bodies read whatever
// their Content-Type with Go's case-insensitive key matching, and the one mapping from Kiln errors.
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toProblem } from '../../api/problem.js';
import { KilnError } from '../../core/kiln-error.js';

/** An answer in the original's words and status: thrown by handlers, written by the error handler. */
export class BaasError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BaasError';
  }
}

/** Like Go's http.Error: text/plain, nosniff, the message and a newline. */
export function sendText(reply: FastifyReply, status: number, text: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').header('x-content-type-options', 'nosniff').send(`${text}\n`);
}

/**
 * Runs `fn` and turns a KilnError with one of `codes` into the original's answer; anything else
 * goes to the error handler unchanged.
 */
export async function as<T>(codes: readonly string[], status: number, text: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KilnError && codes.includes(err.code)) throw new BaasError(status, text);
    throw err;
  }
}

export function installBaasErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof BaasError) {
      req.log.info({ status: err.status, detail: err.message }, 'BAAS request refused');
      return sendText(reply, err.status, err.message);
    }
    // Kiln's messages are written for clients (they quote input, never internals); unexpected errors
    // become a fixed text, as in the problem mapping.
    const p = toProblem(err);
    if (p.status >= 500 && p.status !== 503) req.log.error({ err }, 'BAAS request failed');
    else req.log.info({ code: p.code, detail: p.detail }, 'BAAS request refused');
    if (p.status === 503) void reply.header('retry-after', '1');
    return sendText(reply, p.status, p.code === 'KILN_INTERNAL' ? 'internal error; see the server log' : p.detail);
  });
}

const MAX_JSON = 1024 * 1024;

/**
 * The request body as JSON (any Content-Type, as Go's json.Decoder reads it); BaasError(400, `bad`)
 * when it is missing, not JSON, or not an object.
 */
export async function readJson(req: FastifyRequest, bad: string): Promise<Record<string, unknown>> {
  const body = req.body as Readable | undefined;
  let text = '';
  if (body !== undefined && body !== null) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer | string>) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > MAX_JSON) throw new BaasError(413, 'request body too large');
      chunks.push(b);
    }
    text = Buffer.concat(chunks).toString('utf8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BaasError(400, bad);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BaasError(400, bad);
  return value as Record<string, unknown>;
}

/** A key as Go's encoding/json finds it: the exact name first, else any case-insensitive match. */
export function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

/** A string field: '' when absent or null (Go's zero value); BaasError(400, `bad`) for another type. */
export function str(obj: Record<string, unknown>, name: string, bad: string): string {
  const v = field(obj, name);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BaasError(400, bad);
  return v;
}

export function bool(obj: Record<string, unknown>, name: string, bad: string): boolean {
  const v = field(obj, name);
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new BaasError(400, bad);
  return v;
}

/** An unsigned integer field (Go uint64): 0 when absent. */
export function uint(obj: Record<string, unknown>, name: string, bad: string): number {
  const v = field(obj, name);
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BaasError(400, bad);
  return v;
}
