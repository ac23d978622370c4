// S3BlobStore: content-addressed objects at <prefix>/sha256/<sha>, uploaded to <prefix>/.tmp/ and
// copied into place only when complete and verified. Trashed blobs wait in <prefix>/trash/.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand,
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command,
  S3Client, UploadPartCopyCommand, type _Object, type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { KilnError } from '../../core/kiln-error.js';
import { DigestMeter } from '../digest-meter.js';
import { normalizePrefix } from './s3-url.js';
import type { BlobInfo, BlobStore, ByteRange, PutBlobOptions } from '../../core/ports.js';

export interface S3BlobOptions {
  bucket: string;
  /** '' or 'a/b'; surrounding slashes are dropped. */
  prefix: string;
  /** e.g. http://127.0.0.1:9000 (MinIO, Ceph RGW); absent means AWS. */
  endpoint?: string | undefined;
  region: string;
  forcePathStyle: boolean;
  /** Absent: the AWS default chain (environment, profiles, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  /** Multipart upload tuning: memory per upload is bounded by about partSizeBytes * (queueSize + 1). */
  partSizeBytes?: number;
  queueSize?: number;
  /** Leftovers of crashed uploads older than this are swept at open; younger ones may be live uploads of another replica. */
  tmpMaxAgeMs?: number;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SHA256 = /^[0-9a-f]{64}$/;
const DEFAULT_PART_SIZE = 16 * MiB;
const DEFAULT_QUEUE_SIZE = 4;
const DEFAULT_TMP_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** CopyObject refuses sources above 5 GiB; larger objects are copied part by part. */
const MAX_SINGLE_COPY = 5 * GiB;
/** Copy parts are server-side, so big ones cost no memory; 10,000 parts at most per upload. */
const COPY_PART_SIZE = 512 * MiB;
const MAX_PARTS = 10_000;
/** Deletes issued at once while sweeping or emptying the trash. */
const DELETE_CONCURRENCY = 8;

export class S3BlobStore implements BlobStore {
  private readonly base: string;

  private constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    prefix: string,
    private readonly partSize: number,
    private readonly queueSize: number,
  ) {
    this.base = prefix === '' ? '' : `${prefix}/`;
  }

  static async open(opts: S3BlobOptions): Promise<S3BlobStore> {
    const client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.credentials,
      // The SDK's default sends aws-chunked bodies with trailing CRC32 checksums, which s3rver, Ceph
      // RGW and older MinIO reject or store verbatim; we verify sha256 ourselves instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const store = new S3BlobStore(
      client,
      opts.bucket,
      normalizePrefix(opts.prefix),
      opts.partSizeBytes ?? DEFAULT_PART_SIZE,
      opts.queueSize ?? DEFAULT_QUEUE_SIZE,
    );
    try {
      // The sweep's first request, a listing, doubles as the check that the bucket exists and the
      // credentials work (unlike HeadBucket, its errors have a body that names the problem).
      await store.sweep(Date.now() - (opts.tmpMaxAgeMs ?? DEFAULT_TMP_MAX_AGE_MS));
    } catch (err) {
      client.destroy();
      throw openError(err, opts.bucket, opts.endpoint);
    }
    return store;
  }

  private liveKey(sha256: string): string {
    if (!SHA256.test(sha256)) throw new KilnError('KILN_ARTIFACT_NOT_FOUND', `no artifact ${sha256.slice(0, 80)}`);
    return `${this.base}sha256/${sha256}`;
  }

  private trashKey(sha256: string): string {
    this.liveKey(sha256);
    return `${this.base}trash/${sha256}`;
  }

  async put(body: Readable, opts: PutBlobOptions): Promise<BlobInfo> {
    const tmp = `${this.base}.tmp/${Date.now()}-${randomBytes(8).toString('hex')}`;
    const meter = new DigestMeter(opts);
    const piping = pipeline(body, meter).catch(() => undefined);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: tmp, Body: meter, ContentType: 'application/octet-stream' },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      try {
        await upload.done();
      } catch (err) {
        // Upload reports a later error when aborting the multipart upload fails too: report the cause.
        throw meter.firstError ?? err;
      }
      const { sha256, size } = meter.verified();
      // Every byte went through the hash; this catches a store that kept fewer (a truncating proxy).
      const stored = await this.sizeOf(tmp);
      if (stored !== size) throw new Error(`S3 holds ${stored ?? 'no'} bytes at ${tmp} after an upload of ${size}`);
      // Copying over an existing blob is harmless: identical content by construction.
      await this.copy(tmp, this.liveKey(sha256), size);
      // The blob is in place; a leftover temp object is swept by a later open.
      await this.deleteKey(tmp).catch(() => undefined);
      return { sha256, size };
    } catch (err) {
      meter.destroy();
      await piping;
      await this.deleteKey(tmp).catch(() => undefined);
      if (err instanceof KilnError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED') {
        throw new KilnError('KILN_ARTIFACT_INCOMPLETE', 'the upload ended before all bytes arrived; nothing was stored');
      }
      throw err;
    } finally {
      await piping;
    }
  }

  async stat(sha256: string): Promise<BlobInfo | null> {
    const size = await this.sizeOf(this.liveKey(sha256));
    return size === null ? null : { sha256, size };
  }

  async read(sha256: string, range?: ByteRange): Promise<Readable> {
    let res: GetObjectCommandOutput;
    try {
      res = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.liveKey(sha256),
        Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`,
      }));
    } catch (err) {
      if (isMissing(err)) throw new KilnError('KILN_ARTIFACT_NOT_FOUND', `no blob ${sha256}`);
      if (errorName(err) === 'InvalidRange') {
        throw new KilnError('KILN_ARTIFACT_RANGE_NOT_SATISFIABLE', `bytes ${range?.start}-${range?.end} are outside blob ${sha256}`);
      }
      throw err;
    }
    const body = res.Body;
    // In Node the SDK's body is the IncomingMessage itself.
    if (!(body instanceof Readable)) throw new Error('the S3 client returned a body that is not a Node stream');
    if (range === undefined) return body;
    // Some servers widen or ignore the Range (s3rver answers bytes=0-0 with the whole object, some
    // proxies answer 200); cut their answer down rather than send a client the wrong bytes.
    const servedStart = parseContentRangeStart(res.ContentRange) ?? 0;
    const want = range.end - range.start + 1;
    if (servedStart === range.start && (res.ContentLength ?? 0) <= want) return body;
    if (servedStart > range.start) {
      body.destroy();
      throw new Error(`S3 served bytes from ${servedStart} for a range starting at ${range.start}`);
    }
    return Readable.from(sliceOf(body, range.start - servedStart, want), { objectMode: false });
  }

  async delete(sha256: string): Promise<void> {
    await this.deleteKey(this.liveKey(sha256));
  }

  async trash(sha256: string): Promise<void> {
    // Nothing to move is fine: trashing is idempotent.
    await this.move(this.liveKey(sha256), this.trashKey(sha256));
  }

  async restore(sha256: string): Promise<boolean> {
    return this.move(this.trashKey(sha256), this.liveKey(sha256));
  }

  async emptyTrash(before: Date): Promise<number> {
    let n = 0;
    for await (const page of this.pages(`${this.base}trash/`)) {
      const old = page.filter((o) => o.Key !== undefined && o.LastModified !== undefined && o.LastModified < before);
      await forEachLimited(old, DELETE_CONCURRENCY, async (o) => {
        await this.deleteKey(o.Key!);
        n++;
      });
    }
    return n;
  }

  async *list(): AsyncIterable<string> {
    const dir = `${this.base}sha256/`;
    for await (const page of this.pages(dir)) {
      for (const o of page) {
        const name = o.Key?.slice(dir.length);
        if (name !== undefined && SHA256.test(name)) yield name;
      }
    }
  }

  async presignedUrl(sha256: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.liveKey(sha256) }), { expiresIn: ttlSeconds });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Drops temp objects and unfinished multipart uploads (uploads and big copies) started before `cutoff`. */
  private async sweep(cutoff: number): Promise<void> {
    for await (const page of this.pages(`${this.base}.tmp/`)) {
      const old = page.filter((o) => o.Key !== undefined && o.LastModified !== undefined && o.LastModified.getTime() < cutoff);
      await forEachLimited(old, DELETE_CONCURRENCY, (o) => this.deleteKey(o.Key!));
    }
    try {
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const res = await this.client.send(new ListMultipartUploadsCommand({
          Bucket: this.bucket, Prefix: this.base, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
        }));
        const stale = (res.Uploads ?? []).filter((u) => u.Key !== undefined && u.UploadId !== undefined && u.Initiated !== undefined && u.Initiated.getTime() < cutoff);
        await forEachLimited(stale, DELETE_CONCURRENCY, async (u) => {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! }));
        });
        if (res.IsTruncated !== true) break;
        keyMarker = res.NextKeyMarker;
        uploadIdMarker = res.NextUploadIdMarker;
      }
    } catch (err) {
      // Housekeeping only: s3rver does not implement it, and a policy may deny it (a bucket lifecycle
      // rule AbortIncompleteMultipartUpload does the same job).
      const name = errorName(err);
      if (name === 'NotImplemented' || name === 'AccessDenied' || name === 'MethodNotAllowed') return;
      throw err;
    }
  }

  private async *pages(prefix: string): AsyncGenerator<_Object[]> {
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      yield res.Contents ?? [];
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async sizeOf(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  private async deleteKey(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Copy then delete (S3 has no rename); false when `from` is not there. */
  private async move(from: string, to: string): Promise<boolean> {
    const size = await this.sizeOf(from);
    if (size === null) return false;
    try {
      await this.copy(from, to, size);
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    await this.deleteKey(from);
    return true;
  }

  /** Server-side copy; the destination appears whole or not at all, with a fresh LastModified. */
  private async copy(from: string, to: string, size: number): Promise<void> {
    // The copy source is a URL path: encode each segment, keep the slashes (s3rver does not decode %2F).
    const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= MAX_SINGLE_COPY) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source }));
      return;
    }
    const partSize = Math.max(COPY_PART_SIZE, Math.ceil(size / MAX_PARTS));
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to, ContentType: 'application/octet-stream' }));
    const uploadId = created.UploadId;
    if (uploadId === undefined) throw new Error(`S3 returned no upload id for a copy to ${to}`);
    try {
      const count = Math.ceil(size / partSize);
      const etags: string[] = new Array<string>(count);
      await forEachLimited(Array.from({ length: count }, (_, i) => i), this.queueSize, async (i) => {
        const start = i * partSize;
        const end = Math.min(size, start + partSize) - 1;
        const res = await this.client.send(new UploadPartCopyCommand({
          Bucket: this.bucket, Key: to, UploadId: uploadId, PartNumber: i + 1, CopySource: source, CopySourceRange: `bytes=${start}-${end}`,
        }));
        const etag = res.CopyPartResult?.ETag;
        if (etag === undefined) throw new Error(`S3 returned no ETag for part ${i + 1} of a copy to ${to}`);
        etags[i] = etag;
      });
      await this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket, Key: to, UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }
}


/** AWS's naming rules for general-purpose buckets, which MinIO and Ceph follow too. */
function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err && typeof err.name === 'string' ? err.name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** The object is not there (HEAD answers a bare 404, so only a named NoSuchBucket is told apart). */
function isMissing(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket');
}

function openError(err: unknown, bucket: string, endpoint: string | undefined): Error {
  const where = `S3 bucket "${bucket}" at ${endpoint ?? 'AWS'}`;
  const name = errorName(err);
  const status = httpStatus(err);
  const detail = err instanceof Error ? err.message : String(err);
  let why: string;
  if (name === 'NoSuchBucket') why = 'does not exist; create it first (Kiln does not create buckets)';
  else if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) {
    why = `refused access; check the credentials and the bucket policy (${name ?? status}: ${detail})`;
  } else if (name === 'CredentialsProviderError') why = `cannot be used: no credentials found (${detail})`;
  else if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET'].includes((err as { code?: string }).code ?? '')) {
    why = `is unreachable (${detail})`;
  } else why = `cannot be opened (${name ?? 'error'}: ${detail})`;
  return new Error(`${where} ${why}`, { cause: err });
}

function parseContentRangeStart(header: string | undefined): number | null {
  const m = header === undefined ? null : /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header);
  return m === null ? null : Number(m[1]);
}

/** `take` bytes of `source` after skipping `skip`; the source is destroyed when done or abandoned. */
async function* sliceOf(source: Readable, skip: number, take: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let left = take;
  try {
    for await (const c of source) {
      let chunk = c as Buffer;
      if (toSkip > 0) {
        const n = Math.min(toSkip, chunk.length);
        toSkip -= n;
        chunk = chunk.subarray(n);
      }
      if (chunk.length > 0 && left > 0) {
        const piece = chunk.subarray(0, left);
        left -= piece.length;
        yield piece;
      }
      if (left === 0) return;
    }
  } finally {
    source.destroy();
  }
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
