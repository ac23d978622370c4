import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstMultipartPart, multipartBoundary } from './multipart-first-part.js';

/** The body delivered in chunks cut at the given offsets. */
function chunked(body: Buffer, cuts: number[]): Readable {
  const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, body.length]) {
    if (c > prev) parts.push(body.subarray(prev, c));
    prev = Math.max(prev, c);
  }
  return Readable.from(parts);
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const B = 'XyZ-boundary';
const form = (file: Buffer, extra = '') =>
  Buffer.concat([Buffer.from(`${extra}--${B}\r\nContent-Disposition: form-data; name="file"; filename="a.img"\r\nContent-Type: application/octet-stream\r\n\r\n`), file, Buffer.from(`\r\n--${B}\r\nContent-Disposition: form-data; name="x"\r\n\r\nsecond\r\n--${B}--\r\n`)]);

describe('firstMultipartPart', () => {
  it('reads the boundary from a Content-Type, quoted or not', () => {
    expect(multipartBoundary(`multipart/form-data; boundary=${B}`)).toBe(B);
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"')).toBe('a b');
    expect(multipartBoundary('application/octet-stream')).toBeNull();
    expect(multipartBoundary('multipart/form-data')).toBeNull();
    expect(multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(71)}`)).toBeNull();
  });

  it('yields exactly the first part, however the body is cut into chunks (delimiter-like bytes inside)', async () => {
    const content = fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(Buffer.from(`\r\n--${B.slice(0, 5)}`)), fc.constant(Buffer.from('\r\n-'))), { maxLength: 20 })
      .map((xs) => Buffer.concat(xs.map((x) => Buffer.from(x))));
    await fc.assert(fc.asyncProperty(content, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), async (file, cuts, preamble) => {
      const part = await firstMultipartPart(chunked(form(file, preamble ? 'ignored preamble\r\n' : ''), cuts), B);
      expect(part.headers['content-disposition']).toBe('form-data; name="file"; filename="a.img"');
      expect(await readAll(part.body)).toEqual(file);
    }), { numRuns: 300 });
  });

  it('fails the stream when the body ends before the part is complete', async () => {
    const body = form(Buffer.alloc(100_000, 7));
    const cut = body.subarray(0, body.indexOf(`\r\n--${B}\r\nContent-Disposition: form-data; name="x"`) + 3);
    const part = await firstMultipartPart(chunked(cut, [10, 500, 70_000]), B);
    await expect(readAll(part.body)).rejects.toMatchObject({ code: 'KILN_ARTIFACT_INCOMPLETE' });
    await expect(firstMultipartPart(chunked(body.subarray(0, 40), []), B)).rejects.toMatchObject({ code: 'KILN_ARTIFACT_INCOMPLETE' });
  });

  it('accepts a part without headers; refuses bodies without the boundary or without parts', async () => {
    const bare = await firstMultipartPart(Readable.from([Buffer.from(`--${B}\r\n\r\nabc\r\n--${B}--\r\n`)]), B);
    expect(bare.headers).toEqual({});
    expect((await readAll(bare.body)).toString()).toBe('abc');
    await expect(firstMultipartPart(Readable.from([Buffer.from('just bytes')]), B)).rejects.toMatchObject({ code: 'KILN_REQUEST_INVALID' });
    await expect(firstMultipartPart(Readable.from([Buffer.from(`--${B}--\r\n`)]), B)).rejects.toMatchObject({ code: 'KILN_REQUEST_INVALID' });
    // The boundary text inside a line is not a delimiter.
    await expect(firstMultipartPart(Readable.from([Buffer.from(`x--${B}\r\n\r\nabc`)]), B)).rejects.toMatchObject({ code: 'KILN_REQUEST_INVALID' });
  });

  it('reads and drops whatever follows the first part before ending, so the source is consumed', async () => {
    const source = chunked(form(Buffer.from('disk')), [5, 60]);
    const part = await firstMultipartPart(source, B);
    expect((await readAll(part.body)).toString()).toBe('disk');
    expect(source.readableEnded).toBe(true);
  });
});
