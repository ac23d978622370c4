import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3TestServer } from '../../../test/support/s3-server.js';
import { KilnError } from '../../core/kiln-error.js';
import { chunked, cutOffAfter, describeBlobStoreContract, failingAfter, listAll, readAll, sha256Of } from '../contract/blob-store-contract.js';
import { S3BlobStore, type S3BlobOptions } from './s3-blob-store.js';
import { parseS3Url } from './s3-url.js';

const MiB = 1024 * 1024;

let s3: S3TestServer;
let raw: S3Client;
const opened: S3BlobStore[] = [];
let buckets = 0;

beforeAll(async () => {
  s3 = await startS3Server();
  raw = new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  raw?.destroy();
  await s3?.close();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function freshBucket(): Promise<string> {
  const name = `kiln-${process.pid}-${buckets++}`;
  await s3.createBucket(name);
  return name;
}

function optionsFor(bucket: string, more: Partial<S3BlobOptions> = {}): S3BlobOptions {
  return {
    bucket, prefix: 'kiln/blobs', endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...more,
  };
}

async function openStore(opts: S3BlobOptions): Promise<S3BlobStore> {
  const store = await S3BlobStore.open(opts);
  opened.push(store);
  return store;
}

/** Every key in the bucket, through the raw SDK rather than the adapter. */
async function keysIn(bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await raw.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of res.Contents ?? []) keys.push(o.Key!);
    token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys.sort();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Fresh bucket per test; 5 MiB parts (the S3 minimum) so that bigger contract cases go multipart.
describeBlobStoreContract('s3 (s3rver)', async () => S3BlobStore.open(optionsFor(await freshBucket(), { partSizeBytes: 5 * MiB })), { randomAccess: false });

describe('S3BlobStore', () => {
  for (const prefix of ['kiln/blobs', '']) {
    it(`keeps blobs at ${prefix}/sha256/<sha>, trashed ones at ${prefix}/trash/<sha>, nothing in .tmp`, async () => {
      const bucket = await freshBucket();
      const store = await openStore(optionsFor(bucket, { prefix }));
      const base = prefix === '' ? '' : `${prefix}/`;
      const data = randomBytes(1234);
      const { sha256 } = await store.put(chunked(data), {});
      expect(await keysIn(bucket)).toEqual([`${base}sha256/${sha256}`]);
      await store.trash(sha256);
      expect(await keysIn(bucket)).toEqual([`${base}trash/${sha256}`]);
      expect(await store.restore(sha256)).toBe(true);
      expect(await keysIn(bucket)).toEqual([`${base}sha256/${sha256}`]);
    });
  }

  it('surrounding slashes in the prefix are dropped', async () => {
    const bucket = await freshBucket();
    const store = await openStore(optionsFor(bucket, { prefix: '/a/b/' }));
    const { sha256 } = await store.put(chunked(randomBytes(10)), {});
    expect(await keysIn(bucket)).toEqual([`a/b/sha256/${sha256}`]);
  });

  it('streams a multipart upload and reads ranges across part boundaries', async () => {
    const bucket = await freshBucket();
    const store = await openStore(optionsFor(bucket, { partSizeBytes: 5 * MiB, queueSize: 2 }));
    const data = randomBytes(12 * MiB + 5);
    const info = await store.put(chunked(data, 256 * 1024), { expectedSize: data.length, expectedSha256: sha256Of(data) });
    expect(info).toEqual({ sha256: sha256Of(data), size: data.length });
    expect((await readAll(await store.read(info.sha256))).equals(data)).toBe(true);
    const [start, end] = [5 * MiB - 10, 10 * MiB + 10];
    expect((await readAll(await store.read(info.sha256, { start, end }))).equals(data.subarray(start, end + 1))).toBe(true);
    expect(await keysIn(bucket)).toEqual([`kiln/blobs/sha256/${info.sha256}`]);
  });

  it('a failed or cut-off upload, single or multipart, leaves no object at all under the prefix', async () => {
    const bucket = await freshBucket();
    const store = await openStore(optionsFor(bucket, { partSizeBytes: 5 * MiB }));
    const big = randomBytes(12 * MiB);
    const small = randomBytes(300 * 1024);
    const failures: [string, Promise<unknown>, string | null][] = [
      ['digest mismatch after a completed multipart upload', store.put(chunked(big), { expectedSha256: sha256Of(Buffer.from('x')) }), 'KILN_ARTIFACT_DIGEST_MISMATCH'],
      ['more bytes than expected, mid multipart', store.put(chunked(big), { expectedSize: 7 * MiB }), 'KILN_ARTIFACT_SIZE_MISMATCH'],
      ['fewer bytes than expected', store.put(chunked(small), { expectedSize: small.length + 1 }), 'KILN_ARTIFACT_SIZE_MISMATCH'],
      ['source error mid multipart', store.put(failingAfter(big.subarray(0, 11 * MiB), new Error('reset')), {}), null],
      ['source error at once', store.put(failingAfter(Buffer.alloc(0), new Error('reset')), {}), null],
      ['client gone mid multipart', store.put(cutOffAfter(big.subarray(0, 6 * MiB)), {}), 'KILN_ARTIFACT_INCOMPLETE'],
      ['client gone in the first part', store.put(cutOffAfter(small), {}), 'KILN_ARTIFACT_INCOMPLETE'],
    ];
    const results = await Promise.allSettled(failures.map(([, p]) => p));
    results.forEach((r, i) => {
      const [what, , code] = failures[i]!;
      expect(r.status, what).toBe('rejected');
      if (r.status === 'rejected' && code !== null) {
        expect(r.reason, what).toBeInstanceOf(KilnError);
        expect((r.reason as KilnError).code, what).toBe(code);
      }
    });
    expect(await keysIn(bucket)).toEqual([]);
    expect(await listAll(store)).toEqual([]);
  });

  it('open sweeps .tmp objects older than tmpMaxAgeMs and keeps young ones, blobs and trash', async () => {
    const bucket = await freshBucket();
    const first = await openStore(optionsFor(bucket));
    const live = await first.put(chunked(randomBytes(100)), {});
    const trashed = await first.put(chunked(randomBytes(200)), {});
    await first.trash(trashed.sha256);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'kiln/blobs/.tmp/old-upload', Body: Buffer.from('half an upload') }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'kiln/blobs/.tmp/nested/old', Body: Buffer.from('x') }));
    // s3rver's LastModified has whole seconds: 2.5 s apart with a 1.8 s cut-off separates them surely.
    await sleep(2500);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'kiln/blobs/.tmp/young-upload', Body: Buffer.from('another replica, uploading') }));

    const second = await openStore(optionsFor(bucket, { tmpMaxAgeMs: 1800 }));
    expect(await keysIn(bucket)).toEqual([
      `kiln/blobs/.tmp/young-upload`,
      `kiln/blobs/sha256/${live.sha256}`,
      `kiln/blobs/trash/${trashed.sha256}`,
    ].sort());
    expect(await listAll(second)).toEqual([live.sha256]);
    expect(await second.restore(trashed.sha256)).toBe(true);
    // The default age (24 h) keeps everything.
    await openStore(optionsFor(bucket));
    expect(await keysIn(bucket)).toContain('kiln/blobs/.tmp/young-upload');
  });

  it('a presigned URL serves the blob, with Range, to a plain fetch until it expires', async () => {
    const bucket = await freshBucket();
    const store = await openStore(optionsFor(bucket));
    const data = randomBytes(100_000);
    const { sha256 } = await store.put(chunked(data), {});

    const url = await store.presignedUrl(sha256, 60);
    expect(url.startsWith(`${s3.endpoint}/${bucket}/kiln/blobs/sha256/${sha256}?`)).toBe(true);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url, { headers: { Range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${data.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);

    const short = await store.presignedUrl(sha256, 1);
    await sleep(2100);
    const expired = await fetch(short, { headers: { Range: 'bytes=0-9' } });
    expect(expired.status).toBe(403);
    expect(await expired.text()).toMatch(/expired/i);
  });

  it('treats a malformed digest as not found', async () => {
    const store = await openStore(optionsFor(await freshBucket()));
    for (const bad of ['../../etc/passwd', 'ABC', '', 'a'.repeat(63), 'A'.repeat(64)]) {
      const notFound = (e: unknown): boolean => e instanceof KilnError && e.code === 'KILN_ARTIFACT_NOT_FOUND';
      await expect(store.read(bad)).rejects.toSatisfy(notFound);
      await expect(store.stat(bad)).rejects.toSatisfy(notFound);
      await expect(store.presignedUrl(bad, 60)).rejects.toSatisfy(notFound);
    }
  });

  it('open fails clearly on a missing bucket and does not create it', async () => {
    const err = await S3BlobStore.open(optionsFor('kiln-no-such-bucket')).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toContain('"kiln-no-such-bucket"');
    expect(message).toContain(s3.endpoint);
    expect(message).toMatch(/does not exist/);
    const { Buckets } = await raw.send(new ListBucketsCommand({}));
    expect((Buckets ?? []).map((b) => b.Name)).not.toContain('kiln-no-such-bucket');
  });

  it('open fails clearly on credentials the server does not know', async () => {
    const bucket = await freshBucket();
    const err = await S3BlobStore.open(optionsFor(bucket, { credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'x' } })).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`"${bucket}" at ${s3.endpoint}`);
    expect((err as Error).message).toMatch(/credentials/);
  });

  it('open fails clearly when nothing listens at the endpoint', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const endpoint = `http://127.0.0.1:${port}`;
    const err = await S3BlobStore.open(optionsFor('kiln', { endpoint })).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`S3 bucket "kiln" at ${endpoint} is unreachable (${((err as Error).cause as Error).message})`);
  });
});

describe('parseS3Url', () => {
  it.each([
    ['s3://kiln', { bucket: 'kiln', prefix: '' }],
    ['s3://kiln/', { bucket: 'kiln', prefix: '' }],
    ['s3://kiln/blobs', { bucket: 'kiln', prefix: 'blobs' }],
    ['s3://kiln/a/b/', { bucket: 'kiln', prefix: 'a/b' }],
    ['s3://kiln//a//b//', { bucket: 'kiln', prefix: 'a/b' }],
    ['s3://my.bucket-01/x', { bucket: 'my.bucket-01', prefix: 'x' }],
    ['s3://abc', { bucket: 'abc', prefix: '' }],
    [`s3://${'a'.repeat(63)}`, { bucket: 'a'.repeat(63), prefix: '' }],
  ])('%s', (url, want) => {
    expect(parseS3Url(url)).toEqual(want);
  });

  it.each([
    'kiln', 'http://kiln/x', 'S3://kiln', 's3://', 's3:///x', 's3://ab', `s3://${'a'.repeat(64)}`, 's3://Kiln',
    's3://kiln_blobs', 's3://-kiln', 's3://kiln-', 's3://ki..ln', 's3://192.168.1.1', 's3://xn--kiln',
    's3://kiln-s3alias', 's3://kiln/a?b', 's3://kiln/a#b', 's3://kiln/../x', 's3://kiln/a/./b',
  ])('rejects %s', (url) => {
    expect(parseS3Url(url)).toBeNull();
  });
});
