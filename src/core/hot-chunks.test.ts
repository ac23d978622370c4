import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HotChunks, type FillChunk } from './hot-chunks.js';

const CHUNK = 1024;

/** A blob in memory and a fill that copies out of it, counting reads per chunk position. */
function blob(size: number) {
  const bytes = randomBytes(size);
  const reads = new Map<number, number>();
  const fill: FillChunk = async (buffer, position) => {
    reads.set(position, (reads.get(position) ?? 0) + 1);
    await new Promise((r) => setImmediate(r));
    bytes.copy(buffer, 0, position, position + buffer.length);
  };
  return { bytes, reads, fill };
}

const cache = (budgetChunks: number, maxBlobBytes = Number.MAX_SAFE_INTEGER) => new HotChunks({ budgetBytes: budgetChunks * CHUNK, chunkBytes: CHUNK, maxBlobBytes });

describe('HotChunks', () => {
  it('serves a blob as aligned chunks, the last one shorter', async () => {
    const b = blob(3 * CHUNK + 7);
    const bytes = cache(10).bytesOf('a', b.bytes.length, b.fill)!;
    const chunks = await Promise.all([0, 1, 2, 3].map((i) => bytes.chunk(i)));
    expect(chunks.map((c) => c.length)).toEqual([CHUNK, CHUNK, CHUNK, 7]);
    expect(Buffer.concat(chunks).equals(b.bytes)).toBe(true);
    await expect(bytes.chunk(4)).rejects.toThrow(RangeError);
    await expect(bytes.chunk(-1)).rejects.toThrow(RangeError);
  });

  it('reads a chunk once however many ask for it at the same time, and never again while it is kept', async () => {
    const b = blob(2 * CHUNK);
    const hot = cache(10);
    const asked = await Promise.all(Array.from({ length: 50 }, () => hot.bytesOf('a', b.bytes.length, b.fill)!.chunk(1)));
    expect(new Set(asked).size).toBe(1);
    await hot.bytesOf('a', b.bytes.length, b.fill)!.chunk(1);
    expect(b.reads).toEqual(new Map([[CHUNK, 1]]));
    expect(hot.bytesHeld).toBe(CHUNK);
  });

  it('keeps nothing of a failed read: the next ask reads again', async () => {
    const b = blob(CHUNK);
    const hot = cache(10);
    let fail = true;
    const flaky: FillChunk = async (buffer, position) => {
      if (fail) throw new Error('disk on fire');
      await b.fill(buffer, position);
    };
    await expect(hot.bytesOf('a', CHUNK, flaky)!.chunk(0)).rejects.toThrow('disk on fire');
    expect(hot.bytesHeld).toBe(0);
    fail = false;
    expect((await hot.bytesOf('a', CHUNK, flaky)!.chunk(0)).equals(b.bytes)).toBe(true);
    expect(hot.bytesHeld).toBe(CHUNK);
  });

  it('stays within its budget by dropping the least recently used chunks', async () => {
    const hot = cache(2);
    const [x, y, z] = [blob(CHUNK), blob(CHUNK), blob(CHUNK)];
    const get = (name: string, b: ReturnType<typeof blob>) => hot.bytesOf(name, CHUNK, b.fill)!.chunk(0);
    await get('x', x);
    await get('y', y);
    await get('x', x); // x is now the most recently used
    await get('z', z); // over budget: y goes
    expect(hot.bytesHeld).toBe(2 * CHUNK);
    await get('x', x);
    await get('y', y);
    expect(x.reads.get(0)).toBe(1);
    expect(y.reads.get(0)).toBe(2);
    expect(hot.bytesHeld).toBe(2 * CHUNK);
  });

  it('leaves blobs larger than its limit, empty blobs and everything when off to the caller', () => {
    const b = blob(4 * CHUNK);
    expect(cache(10, 3 * CHUNK).bytesOf('a', 4 * CHUNK, b.fill)).toBeUndefined();
    expect(cache(10).bytesOf('a', 0, b.fill)).toBeUndefined();
    expect(cache(0).bytesOf('a', CHUNK, b.fill)).toBeUndefined();
    expect(cache(10, 4 * CHUNK).bytesOf('a', 4 * CHUNK, b.fill)).toBeDefined();
  });
});
