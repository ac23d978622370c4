// The CLI's HTTP client for the admin API. Errors come back as CliError with the server's problem code.
import type { Readable } from 'node:stream';
import { EXIT, exitCodeForErrorCode } from './exit-codes.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface RequestOptions {
  json?: unknown;
  body?: Readable;
  headers?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined>;
}

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly token: string | undefined,
  ) {}

  url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(`/api/v1${path}`, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.href;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let body: RequestInit['body'];
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      body = opts.body;
    }
    let res: Response;
    try {
      // redirect 'error': following redirects makes fetch keep a copy of a streamed body (a whole upload in memory).
      res = await fetch(this.url(path, opts.query), { method, headers, body, redirect: 'error', ...(opts.body !== undefined ? { duplex: 'half' } : {}) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(`cannot reach Kiln at ${this.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.unavailable);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const p = parsed as { code?: string; detail?: string; title?: string } | undefined;
      const code = typeof p === 'object' && p !== null ? p.code : undefined;
      const detail = typeof p === 'object' && p !== null ? (p.detail || p.title) : text.slice(0, 200);
      throw new CliError(`${code ?? `HTTP ${res.status}`}: ${detail ?? res.statusText}`, code !== undefined ? exitCodeForErrorCode(code) : res.status >= 500 ? EXIT.unavailable : EXIT.failure, code);
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  get<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('GET', path, { query }).then((r) => r.body);
  }
  post<T>(path: string, json?: unknown): Promise<T> {
    return this.request<T>('POST', path, { json: json ?? {} }).then((r) => r.body);
  }
  put<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>('PUT', path, { json }).then((r) => r.body);
  }
  patch<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { json }).then((r) => r.body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path).then((r) => r.body);
  }
}
