// The base URL a machine used to reach this listener, for URLs written into scripts and answers.
import type { FastifyRequest } from 'fastify';

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** `publicUrl` when configured; else the Host header if well-formed (a forged one must not reach a script), else the local address. */
export function requestBaseUrl(req: FastifyRequest, publicUrl: string | null): string {
  if (publicUrl !== null) return publicUrl;
  const host = req.headers.host;
  if (host !== undefined && HOST.test(host)) return `http://${host}`;
  const local = req.socket.localAddress ?? '127.0.0.1';
  return `http://${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort ?? 80}`;
}
