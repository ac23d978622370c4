// ArtifactService.chunks over the real blob stores: a local directory (random access) and S3 (one
// ranged GET per chunk). The stores are wrapped only to count how often bytes are read.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../support/s3-server.js';
import { FsBlobStore } from '../../src/blobs/fs/fs-blob-store.js';
import { S3BlobStore } from '../../src/blobs/s3/s3-blob-store.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { HotChunks } from '../../src/core/hot-chunks.js';
import type { BlobStore, Store } from '../../src/core/ports.js';
import { ArtifactService } from '../../src/core/services/artifact-service.js';

const MiB = 1024 * 1024;
const clock = { now: () => new Date() };

/** The same store, counting the calls that read bytes. */
function counting(blobs: BlobStore): { blobs: BlobStore; reads: () => number } {
  let reads = 0;
  const wrapped = new Proxy(blobs, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'read' || prop === 'openReader') return (...args: unknown[]) => (reads++, (v as (...a: unknown[]) => unknown).apply(target, args));
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { blobs: wrapped, reads: () => reads };
}

let s3: S3TestServer;
let store: Store;
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  s3 = await startS3Server();
  store = await openSqliteStore({ path: ':memory:' });
});
afterAll(async () => {
  for (const c of closers) await c();
  await store?.close();
  await s3?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const stores: [string, () => Promise<BlobStore>][] = [
  ['a local directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-chunks-'));
    dirs.push(dir);
    return FsBlobStore.open(dir);
  }],
  ['S3 (s3rver)', async () => {
    const bucket = `chunks-${process.pid}-${dirs.length}-${closers.length}`;
    await s3.createBucket(bucket);
    const blobs = await S3BlobStore.open({
      bucket, prefix: 'blobs', endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    closers.push(() => blobs.close());
    return blobs;
  }],
];

describe.each(stores)('artifact chunks from %s', (_name, open) => {
  it('are the blob\'s bytes, read from the store once per chunk however many downloads ask', async () => {
    const bytes = randomBytes(2 * MiB + 5);
    const counted = counting(await open());
    const { sha256 } = await counted.blobs.put(Readable.from([bytes]), {});
    const artifacts = new ArtifactService(store, counted.blobs, clock, new HotChunks({ budgetBytes: 8 * MiB, chunkBytes: MiB, maxBlobBytes: 4 * MiB }));
    const before = counted.reads();
    const downloads = await Promise.all(Array.from({ length: 20 }, async () => {
      const c = artifacts.chunks(sha256, bytes.length)!;
      return Buffer.concat(await Promise.all([0, 1, 2].map((i) => c.chunk(i))));
    }));
    for (const d of downloads) expect(d.equals(bytes)).toBe(true);
    expect(counted.reads() - before).toBe(3);
    // Too big for this cache: the caller reads the store itself.
    expect(artifacts.chunks(sha256, 5 * MiB)).toBeUndefined();
  });

  it('reject with KILN_ARTIFACT_NOT_FOUND when the bytes are gone, and keep nothing', async () => {
    const bytes = randomBytes(MiB + 1);
    const blobs = await open();
    const { sha256 } = await blobs.put(Readable.from([bytes]), {});
    const hot = new HotChunks({ budgetBytes: 8 * MiB, chunkBytes: MiB, maxBlobBytes: 4 * MiB });
    const artifacts = new ArtifactService(store, blobs, clock, hot);
    await blobs.delete(sha256);
    await expect(artifacts.chunks(sha256, bytes.length)!.chunk(0)).rejects.toMatchObject({ code: 'KILN_ARTIFACT_NOT_FOUND' });
    expect(hot.bytesHeld).toBe(0);
  });

  it('refuse a blob shorter than its record says', async () => {
    const bytes = randomBytes(MiB + 10);
    const blobs = await open();
    const { sha256 } = await blobs.put(Readable.from([bytes]), {});
    const artifacts = new ArtifactService(store, blobs, clock, new HotChunks({ budgetBytes: 8 * MiB, chunkBytes: MiB, maxBlobBytes: 4 * MiB }));
    // The record claims 20 more bytes than the store holds: the last chunk cannot be filled.
    const c = artifacts.chunks(sha256, bytes.length + 20)!;
    expect((await c.chunk(0)).equals(bytes.subarray(0, MiB))).toBe(true);
    await expect(c.chunk(1)).rejects.toThrow(/early|range|satisf/i);
  });
});
