import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KilnError } from '../../core/kiln-error.js';
import { chunked, cutOffAfter, describeBlobStoreContract, failingAfter, listAll, sha256Of } from '../contract/blob-store-contract.js';
import { FsBlobStore } from './fs-blob-store.js';

const roots: string[] = [];

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-blobs-'));
  roots.push(root);
  return root;
}

afterEach(async () => {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

describeBlobStoreContract('fs', async () => FsBlobStore.open(await freshRoot()), { randomAccess: true });

/** How many of this process's descriptors point at `path` (through /proc). */
async function fdsOn(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) if ((await readlink(join('/proc/self/fd', fd)).catch(() => '')) === path) n++;
  return n;
}

/** A fresh store holding one random blob, and where that blob's file is. */
async function storeWithBlob(size: number) {
  const root = await freshRoot();
  const store = await FsBlobStore.open(root);
  const data = randomBytes(size);
  const { sha256 } = await store.put(chunked(data), {});
  return { root, store, data, sha256, file: join(root, 'sha256', sha256.slice(0, 2), sha256) };
}

describe('FsBlobStore', () => {
  it('concurrent readers of one blob share a descriptor, which trash or close gives up', async () => {
    const { root, store, data, sha256, file } = await storeWithBlob(4096);
    const readers = await Promise.all([store.openReader(sha256), store.openReader(sha256), store.openReader(sha256)]);
    expect(await fdsOn(file)).toBe(1);
    for (const r of readers) r.release();
    // Kept for the next request a moment later...
    expect(await fdsOn(file)).toBe(1);
    const held = await store.openReader(sha256);
    expect(await fdsOn(file)).toBe(1);
    // ...but a trashed blob is not served from it, while a reader already holding it finishes its read.
    await store.trash(sha256);
    const buf = Buffer.alloc(16);
    expect(await held.read(buf, 16, 100)).toBe(16);
    expect(buf.equals(data.subarray(100, 116))).toBe(true);
    held.release();
    await new Promise((r) => setTimeout(r, 20));
    expect(await fdsOn(join(root, 'trash', sha256))).toBe(0);
    expect(await store.restore(sha256)).toBe(true);
    (await store.openReader(sha256)).release();
    expect(await fdsOn(file)).toBe(1);
    await store.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(await fdsOn(file)).toBe(0);
  });

  it('stores a blob at <root>/sha256/<first two hex digits>/<sha256>', async () => {
    const { root, data, file } = await storeWithBlob(1234);
    expect((await readFile(file)).equals(data)).toBe(true);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
  });

  it('leaves no files in <root>/.tmp after failed uploads', async () => {
    const root = await freshRoot();
    const store = await FsBlobStore.open(root);
    const data = randomBytes(6 * 64 * 1024);
    const failures = [
      store.put(chunked(data), { expectedSha256: sha256Of(Buffer.from('x')) }),
      store.put(chunked(data), { expectedSize: 1000 }),
      store.put(chunked(data), { expectedSize: data.length + 1 }),
      store.put(failingAfter(data, new Error('reset')), {}),
      store.put(failingAfter(Buffer.alloc(0), new Error('reset at once')), {}),
      store.put(cutOffAfter(data), {}),
    ];
    const results = await Promise.allSettled(failures);
    expect(results.map((r) => r.status)).toEqual(failures.map(() => 'rejected'));
    // Give any stream still closing a moment, then look.
    await new Promise((r) => setTimeout(r, 50));
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect(await listAll(store)).toEqual([]);
  });

  it('removes stale leftovers in <root>/.tmp on open, keeps uploads another process is writing, ignores stray files', async () => {
    const root = await freshRoot();
    const first = await FsBlobStore.open(root);
    const kept = await first.put(chunked(randomBytes(100)), {});
    await first.close();
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await writeFile(join(root, '.tmp', '1700000000000-deadbeef'), 'half an upload');
    await mkdir(join(root, '.tmp', 'nested'), { recursive: true });
    await writeFile(join(root, '.tmp', 'nested', 'junk'), 'x');
    for (const p of ['1700000000000-deadbeef', 'nested']) await utimes(join(root, '.tmp', p), twoHoursAgo, twoHoursAgo);
    // Another worker on this data directory is uploading this one right now.
    await writeFile(join(root, '.tmp', `${Date.now()}-live`), 'in progress');
    await writeFile(join(root, 'sha256', kept.sha256.slice(0, 2), 'not-a-digest.partial'), 'x');

    const second = await FsBlobStore.open(root);
    expect((await readdir(join(root, '.tmp'))).map((n) => n.endsWith('-live'))).toEqual([true]);
    expect((await stat(join(root, '.tmp'))).isDirectory()).toBe(true);
    expect(await listAll(second)).toEqual([kept.sha256]);
    expect(await second.stat(kept.sha256)).toEqual(kept);
  });

  it('open creates the root when it does not exist', async () => {
    const root = join(await freshRoot(), 'a', 'b');
    const store = await FsBlobStore.open(root);
    expect(await listAll(store)).toEqual([]);
    expect((await stat(join(root, 'sha256'))).isDirectory()).toBe(true);
  });

  it('treats a malformed digest as not found instead of touching other paths', async () => {
    const root = await freshRoot();
    const store = await FsBlobStore.open(root);
    for (const bad of ['../../etc/passwd', 'ABC', '', 'a'.repeat(63), 'A'.repeat(64)]) {
      await expect(store.read(bad)).rejects.toSatisfy((e) => e instanceof KilnError && e.code === 'KILN_ARTIFACT_NOT_FOUND');
      await expect(store.stat(bad)).rejects.toSatisfy((e) => e instanceof KilnError && e.code === 'KILN_ARTIFACT_NOT_FOUND');
    }
  });
});
