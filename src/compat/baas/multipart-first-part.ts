// The first part of a multipart/form-data body as a stream (BAAS uploads: "first part = the file"),
// read in constant memory whatever its size. A body that ends before the part's closing delimiter
// makes the stream fail, so a cut-short upload never looks complete.
import { Readable } from 'node:stream';
import { KilnError } from '../../core/kiln-error.js';

const MAX_HEAD = 64 * 1024;

export interface MultipartPart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Readable;
}

/** The boundary of a multipart/form-data Content-Type, or null when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (contentType === undefined) return null;
  const [type, ...params] = contentType.split(';');
  if (type?.trim().toLowerCase() !== 'multipart/form-data') return null;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'boundary') continue;
    let value = p.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    // RFC 2046: 1 to 70 characters.
    return value.length >= 1 && value.length <= 70 ? value : null;
  }
  return null;
}

function incomplete(): KilnError {
  return new KilnError('KILN_ARTIFACT_INCOMPLETE', 'the multipart body ended before its first part was complete; nothing was stored');
}

/**
 * Reads up to the first part's body and returns its headers and a stream of its bytes. Preamble and
 * headers are bounded (64 KiB); later parts are read and dropped (see partBody).
 */
export async function firstMultipartPart(source: AsyncIterable<Buffer | string>, boundary: string): Promise<MultipartPart> {
  const it = source[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  const more = async (): Promise<boolean> => {
    let r: IteratorResult<Buffer | string>;
    try {
      r = await it.next();
    } catch {
      throw incomplete();
    }
    if (r.done === true) return false;
    buf = Buffer.concat([buf, typeof r.value === 'string' ? Buffer.from(r.value) : r.value]);
    return true;
  };
  const invalid = (why: string) => new KilnError('KILN_REQUEST_INVALID', `not a multipart/form-data body: ${why}`);

  // The first delimiter may follow a preamble; it starts a line.
  const opening = Buffer.from(`--${boundary}`);
  let start = -1;
  let from = 0;
  for (;;) {
    const at = buf.indexOf(opening, from);
    if (at >= 0 && (at === 0 || (at >= 2 && buf[at - 2] === 0x0d && buf[at - 1] === 0x0a))) {
      start = at + opening.length;
      break;
    }
    if (at >= 0) {
      from = at + 1;
      continue;
    }
    if (buf.length > MAX_HEAD) throw invalid('no boundary in the first 64 KiB');
    if (!(await more())) throw invalid('the boundary never appears');
  }
  // The delimiter line ends with CRLF (after optional transport padding); "--" instead means no parts.
  let eol: number;
  let headEnd: number;
  for (;;) {
    eol = buf.indexOf('\r\n', start);
    if (eol >= 0) {
      if (buf.subarray(start, eol).toString('latin1').trimStart().startsWith('--')) throw invalid('it has no parts');
      // Found at `eol` itself when the part has no headers.
      headEnd = buf.indexOf('\r\n\r\n', eol);
      if (headEnd >= 0) break;
    }
    if (buf.length > MAX_HEAD) throw invalid('part headers longer than 64 KiB');
    if (!(await more())) throw incomplete();
  }
  const headers: Record<string, string> = {};
  for (const line of buf.subarray(eol + 2, Math.max(eol + 2, headEnd)).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = buf.subarray(headEnd + 4);
  return { headers, body: Readable.from(partBody(rest, it, Buffer.from(`\r\n--${boundary}`)), { objectMode: false }) };
}

/**
 * Yields the part's bytes up to the delimiter, holding back only as many bytes as could begin one.
 * The rest of the body is read and dropped before the stream ends, so the response goes out on a
 * connection that stays usable; a consumer that gives up stops the source.
 */
async function* partBody(first: Buffer, it: AsyncIterator<Buffer | string>, delimiter: Buffer): AsyncGenerator<Buffer> {
  let complete = false;
  const next = async (): Promise<Buffer | null> => {
    let r: IteratorResult<Buffer | string>;
    try {
      r = await it.next();
    } catch {
      throw incomplete();
    }
    if (r.done === true) return null;
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  };
  try {
    let pending = first;
    for (;;) {
      const at = pending.indexOf(delimiter);
      if (at >= 0) {
        if (at > 0) yield pending.subarray(0, at);
        break;
      }
      const keep = Math.min(pending.length, delimiter.length - 1);
      if (pending.length > keep) yield pending.subarray(0, pending.length - keep);
      const chunk = await next();
      if (chunk === null) throw incomplete();
      const tail = pending.subarray(pending.length - keep);
      pending = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
    }
    while ((await next()) !== null);
    complete = true;
  } finally {
    if (!complete) await it.return?.().catch(() => undefined);
  }
}
