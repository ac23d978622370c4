// The BlobStore contract: every blob store adapter (the filesystem, S3) must pass this suite.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../core/error-catalogue.js';
import { KilnError } from '../../core/kiln-error.js';
import type { BlobStore } from '../../core/ports.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export const sha256Of = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');

/** A byte stream (not object mode, like a socket) that delivers `data` in `chunkSize` pieces. */
export function chunked(data: Buffer, chunkSize = 64 * KiB): Readable {
  function* pieces(): Generator<Buffer> {
    for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Delivers `before` bytes in chunks, then fails with `err`. */
export function failingAfter(before: Buffer, err: Error, chunkSize = 64 * KiB): Readable {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < before.length; i += chunkSize) {
      await new Promise<void>((r) => setImmediate(r));
      yield before.subarray(i, i + chunkSize);
    }
    throw err;
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Delivers `before` bytes, then is destroyed without an error (a client that hung up). */
export function cutOffAfter(before: Buffer): Readable {
  let sent = false;
  const r = new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(before);
      setImmediate(() => r.destroy());
    },
  });
  return r;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export async function listAll(store: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const s of store.list()) out.push(s);
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<KilnError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a rejection with ${code}`).toBeInstanceOf(KilnError);
  expect((caught as KilnError).code).toBe(code);
  return caught as KilnError;
}

/** `randomAccess`: the store keeps local files and must offer openReader; remote stores must not. */
export function describeBlobStoreContract(name: string, open: () => Promise<BlobStore>, opts: { randomAccess: boolean }): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    it('put streams a multi-chunk body and returns its sha256 and size', async () => {
      const data = randomBytes(5 * MiB);
      const info = await store.put(chunked(data, 64 * KiB), {});
      expect(info).toEqual({ sha256: sha256Of(data), size: data.length });
      expect(await store.stat(info.sha256)).toEqual(info);
      expect(await listAll(store)).toEqual([info.sha256]);
      const back = await readAll(await store.read(info.sha256));
      expect(back.length).toBe(data.length);
      expect(back.equals(data)).toBe(true);
    });

    it('put accepts matching expectations', async () => {
      const data = randomBytes(200 * KiB + 7);
      const info = await store.put(chunked(data), { expectedSha256: sha256Of(data), expectedSize: data.length });
      expect(info).toEqual({ sha256: sha256Of(data), size: data.length });
    });

    it('an empty body is a valid blob', async () => {
      const info = await store.put(Readable.from([], { objectMode: false }), { expectedSize: 0 });
      expect(info).toEqual({ sha256: sha256Of(Buffer.alloc(0)), size: 0 });
      expect((await readAll(await store.read(info.sha256))).length).toBe(0);
    });

    it('identical content twice gives the same sha256 and is stored once', async () => {
      const data = randomBytes(300 * KiB);
      const a = await store.put(chunked(data, 64 * KiB), {});
      const b = await store.put(chunked(data, 10 * KiB), {});
      expect(b).toEqual(a);
      expect(await listAll(store)).toEqual([a.sha256]);
      expect((await readAll(await store.read(a.sha256))).equals(data)).toBe(true);
    });

    it('list yields every stored blob once', async () => {
      const shas: string[] = [];
      for (let i = 0; i < 5; i++) shas.push((await store.put(chunked(randomBytes(1000 + i)), {})).sha256);
      expect((await listAll(store)).sort()).toEqual([...shas].sort());
    });

    it('a wrong expectedSha256 is KILN_ARTIFACT_DIGEST_MISMATCH and nothing is stored', async () => {
      const data = randomBytes(256 * KiB);
      const err = await rejectsWith(store.put(chunked(data), { expectedSha256: sha256Of(Buffer.from('other')) }), 'KILN_ARTIFACT_DIGEST_MISMATCH');
      expect(err.kind).toBe('unprocessable');
      expect(await listAll(store)).toEqual([]);
      expect(await store.stat(sha256Of(data))).toBeNull();
    });

    it('an expectedSize smaller than the body is KILN_ARTIFACT_SIZE_MISMATCH and nothing is stored', async () => {
      const data = randomBytes(5 * 64 * KiB);
      await rejectsWith(store.put(chunked(data), { expectedSize: 100_000 }), 'KILN_ARTIFACT_SIZE_MISMATCH');
      await rejectsWith(store.put(chunked(data), { expectedSize: data.length - 1 }), 'KILN_ARTIFACT_SIZE_MISMATCH');
      expect(await listAll(store)).toEqual([]);
      expect(await store.stat(sha256Of(data))).toBeNull();
    });

    it('an expectedSize larger than the body is KILN_ARTIFACT_SIZE_MISMATCH and nothing is stored', async () => {
      const data = randomBytes(5 * 64 * KiB);
      await rejectsWith(store.put(chunked(data), { expectedSize: data.length + 1 }), 'KILN_ARTIFACT_SIZE_MISMATCH');
      await rejectsWith(store.put(chunked(data), { expectedSize: data.length + 1, expectedSha256: sha256Of(data) }), 'KILN_ARTIFACT_SIZE_MISMATCH');
      expect(await listAll(store)).toEqual([]);
      expect(await store.stat(sha256Of(data))).toBeNull();
    });

    it('a source stream that errors halfway rejects and nothing is stored', async () => {
      const boom = new Error('source failed');
      const half = randomBytes(8 * 64 * KiB);
      await expect(store.put(failingAfter(half, boom), {})).rejects.toThrow();
      await expect(store.put(failingAfter(Buffer.alloc(0), boom), {})).rejects.toThrow();
      expect(await listAll(store)).toEqual([]);
      expect(await store.stat(sha256Of(half))).toBeNull();
    });

    it('a source cut off without an error is KILN_ARTIFACT_INCOMPLETE and nothing is stored', async () => {
      const part = randomBytes(64 * KiB);
      await rejectsWith(store.put(cutOffAfter(part), {}), 'KILN_ARTIFACT_INCOMPLETE');
      expect(await listAll(store)).toEqual([]);
    });

    it('a failed put does not disturb an existing blob with the same content', async () => {
      const data = randomBytes(128 * KiB);
      const info = await store.put(chunked(data), {});
      await rejectsWith(store.put(chunked(data), { expectedSize: 1 }), 'KILN_ARTIFACT_SIZE_MISMATCH');
      await expect(store.put(failingAfter(data.subarray(0, 64 * KiB), new Error('x')), {})).rejects.toThrow();
      expect(await listAll(store)).toEqual([info.sha256]);
      expect((await readAll(await store.read(info.sha256))).equals(data)).toBe(true);
    });

    it('read returns inclusive byte ranges', async () => {
      const data = randomBytes(3 * MiB + 123);
      const { sha256 } = await store.put(chunked(data), {});
      const cases: [number, number][] = [
        [0, 0],
        [0, 99],
        [1, 1],
        [100, 65_636],
        [MiB - 1, MiB + 1],
        [2 * MiB, data.length - 1],
        [data.length - 1, data.length - 1],
        [0, data.length - 1],
      ];
      for (const [start, end] of cases) {
        const got = await readAll(await store.read(sha256, { start, end }));
        expect(got.length, `range ${start}-${end}`).toBe(end - start + 1);
        expect(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
      }
    });

    it(opts.randomAccess ? 'openReader reads any slice into the caller\'s buffer and follows trash and delete' : 'offers no openReader (callers stream)', async () => {
      if (!opts.randomAccess) return expect('openReader' in store).toBe(false);
      if (store.openReader === undefined) throw new Error('a store with local files must offer openReader');
      const data = randomBytes(2 * MiB + 77);
      const { sha256 } = await store.put(chunked(data), {});
      const [a, b] = await Promise.all([store.openReader(sha256), store.openReader(sha256)]);
      expect(a.size).toBe(data.length);
      const buf = Buffer.alloc(MiB);
      for (const [pos, len] of [[0, 10], [MiB - 3, MiB], [2 * MiB, 77], [data.length - 5, 5]] as const) {
        expect(await a.read(buf, len, pos)).toBe(len);
        expect(buf.subarray(0, len).equals(data.subarray(pos, pos + len))).toBe(true);
      }
      expect(await b.read(buf, 100, data.length)).toBe(0);
      a.release();
      a.release(); // twice is harmless
      expect(await b.read(buf, 4, 0)).toBe(4);
      b.release();
      await store.trash(sha256);
      await rejectsWith(store.openReader(sha256), 'KILN_ARTIFACT_NOT_FOUND');
      expect(await store.restore(sha256)).toBe(true);
      const c = await store.openReader(sha256);
      expect(await c.read(buf, 3, 1)).toBe(3);
      expect(buf.subarray(0, 3).equals(data.subarray(1, 4))).toBe(true);
      c.release();
      await store.delete(sha256);
      await rejectsWith(store.openReader(sha256), 'KILN_ARTIFACT_NOT_FOUND');
    });

    it('reading, or stat of, a missing blob: KILN_ARTIFACT_NOT_FOUND / null', async () => {
      const missing = sha256Of(Buffer.from('never stored'));
      await rejectsWith(store.read(missing), 'KILN_ARTIFACT_NOT_FOUND');
      await rejectsWith(store.read(missing, { start: 0, end: 0 }), 'KILN_ARTIFACT_NOT_FOUND');
      expect(await store.stat(missing)).toBeNull();
    });

    it('delete removes the blob; deleting a missing blob is harmless', async () => {
      const keep = await store.put(chunked(randomBytes(1000)), {});
      const gone = await store.put(chunked(randomBytes(2000)), {});
      await store.delete(gone.sha256);
      expect(await store.stat(gone.sha256)).toBeNull();
      await rejectsWith(store.read(gone.sha256), 'KILN_ARTIFACT_NOT_FOUND');
      expect(await listAll(store)).toEqual([keep.sha256]);
      await store.delete(gone.sha256);
      await store.delete(sha256Of(Buffer.from('never stored')));
      expect(await store.stat(keep.sha256)).toEqual(keep);
      // Deleted content can be stored again.
      const data = randomBytes(10);
      const again = await store.put(chunked(data), {});
      await store.delete(again.sha256);
      expect(await store.put(chunked(data), {})).toEqual(again);
    });

    it('two concurrent puts of the same content both succeed with the same info', async () => {
      const data = randomBytes(700 * KiB);
      const [a, b] = await Promise.all([store.put(chunked(data, 64 * KiB), {}), store.put(chunked(data, 16 * KiB), {})]);
      expect(a).toEqual({ sha256: sha256Of(data), size: data.length });
      expect(b).toEqual(a);
      expect(await listAll(store)).toEqual([a.sha256]);
      expect((await readAll(await store.read(a.sha256))).equals(data)).toBe(true);
    });

    it('a trashed blob is invisible to stat, read and list; restore brings the same bytes back', async () => {
      const keep = await store.put(chunked(randomBytes(1000)), {});
      const data = randomBytes(200 * KiB + 3);
      const info = await store.put(chunked(data), {});
      await store.trash(info.sha256);
      expect(await store.stat(info.sha256)).toBeNull();
      await rejectsWith(store.read(info.sha256), 'KILN_ARTIFACT_NOT_FOUND');
      await rejectsWith(store.read(info.sha256, { start: 0, end: 9 }), 'KILN_ARTIFACT_NOT_FOUND');
      expect(await listAll(store)).toEqual([keep.sha256]);

      expect(await store.restore(info.sha256)).toBe(true);
      expect(await store.stat(info.sha256)).toEqual(info);
      expect((await readAll(await store.read(info.sha256))).equals(data)).toBe(true);
      expect((await listAll(store)).sort()).toEqual([keep.sha256, info.sha256].sort());
      // Restored means gone from the trash: a second restore finds nothing.
      expect(await store.restore(info.sha256)).toBe(false);
      expect(await store.stat(info.sha256)).toEqual(info);
    });

    it('restore of something not trashed is false and changes nothing', async () => {
      const live = await store.put(chunked(randomBytes(500)), {});
      expect(await store.restore(sha256Of(Buffer.from('never stored')))).toBe(false);
      expect(await store.restore(live.sha256)).toBe(false);
      expect(await store.stat(live.sha256)).toEqual(live);
      expect(await listAll(store)).toEqual([live.sha256]);
    });

    it('trash of a missing blob is a no-op, and trash is idempotent', async () => {
      const missing = sha256Of(Buffer.from('never stored'));
      await store.trash(missing);
      expect(await store.restore(missing)).toBe(false);
      const info = await store.put(chunked(randomBytes(700)), {});
      await store.trash(info.sha256);
      await store.trash(info.sha256);
      expect(await store.stat(info.sha256)).toBeNull();
      expect(await store.restore(info.sha256)).toBe(true);
      expect(await store.stat(info.sha256)).toEqual(info);
    });

    it('emptyTrash(before) deletes only blobs trashed before `before` and returns the count', async () => {
      const live = await store.put(chunked(randomBytes(300)), {});
      const a = await store.put(chunked(randomBytes(400)), {});
      const b = await store.put(chunked(randomBytes(500)), {});
      await store.trash(a.sha256);
      await store.trash(b.sha256);
      const hour = 60 * 60 * 1000;
      expect(await store.emptyTrash(new Date(Date.now() - hour))).toBe(0);
      expect(await store.emptyTrash(new Date(Date.now() + hour))).toBe(2);
      expect(await store.emptyTrash(new Date(Date.now() + hour))).toBe(0);
      expect(await store.restore(a.sha256)).toBe(false);
      expect(await store.restore(b.sha256)).toBe(false);
      expect(await store.stat(a.sha256)).toBeNull();
      expect(await listAll(store)).toEqual([live.sha256]);
      expect(await store.stat(live.sha256)).toEqual(live);
    });

    it('emptyTrash keeps what a past cut-off does not reach, so it can still be restored', async () => {
      const info = await store.put(chunked(randomBytes(900)), {});
      await store.trash(info.sha256);
      expect(await store.emptyTrash(new Date(Date.now() - 60_000))).toBe(0);
      expect(await store.restore(info.sha256)).toBe(true);
      expect(await store.stat(info.sha256)).toEqual(info);
    });

    it('put of content whose copy is in the trash works, and emptying the trash leaves it alone', async () => {
      const data = randomBytes(64 * KiB + 1);
      const info = await store.put(chunked(data), {});
      await store.trash(info.sha256);
      expect(await store.put(chunked(data), { expectedSha256: info.sha256, expectedSize: data.length })).toEqual(info);
      expect(await store.stat(info.sha256)).toEqual(info);
      expect(await listAll(store)).toEqual([info.sha256]);
      expect(await store.emptyTrash(new Date(Date.now() + 60_000))).toBe(1);
      expect(await store.stat(info.sha256)).toEqual(info);
      expect((await readAll(await store.read(info.sha256))).equals(data)).toBe(true);
    });
  });
}
