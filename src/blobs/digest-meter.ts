// The pass-through every blob store puts between an upload and its storage: counts and hashes the
// bytes, stops early when more than the expected size arrives, and checks the expectations at the end.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { KilnError } from '../core/kiln-error.js';
import type { BlobInfo, PutBlobOptions } from '../core/ports.js';
import { ThreadedSha256 } from './threaded-sha256.js';

export class DigestMeter extends Transform {
  private readonly hash = new ThreadedSha256();
  private sha256: string | null = null;
  // Not `size`: the AWS SDK takes a body with a `size` property for a Blob of that length.
  private bytes = 0;
  /** The first error that destroyed this stream (its own or a source's forwarded by pipeline). */
  firstError: unknown = undefined;

  constructor(private readonly opts: PutBlobOptions) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    const max = this.opts.expectedSize;
    if (max !== undefined && this.bytes > max) {
      done(new KilnError('KILN_ARTIFACT_SIZE_MISMATCH', `more than the expected ${max} bytes arrived`));
      return;
    }
    const wait = this.hash.update(chunk);
    if (wait === null) done(null, chunk);
    else wait.then(() => done(null, chunk), (err: Error) => done(err));
  }

  override _flush(done: (err?: Error | null) => void): void {
    this.hash.digest().then(
      (sha256) => {
        this.sha256 = sha256;
        this.hash.release();
        done();
      },
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (err !== null) this.firstError ??= err;
    this.hash.release();
    cb(err);
  }

  /** Call once every byte went through: the blob's identity, or the expectation it failed. */
  verified(): BlobInfo {
    const sha256 = this.sha256;
    if (sha256 === null) throw new Error('DigestMeter.verified() before the stream ended');
    const { expectedSize, expectedSha256 } = this.opts;
    if (expectedSize !== undefined && this.bytes !== expectedSize) throw new KilnError('KILN_ARTIFACT_SIZE_MISMATCH', `expected ${expectedSize} bytes, got ${this.bytes}`);
    if (expectedSha256 !== undefined && sha256 !== expectedSha256) {
      throw new KilnError('KILN_ARTIFACT_DIGEST_MISMATCH', `expected sha256 ${expectedSha256}, got ${sha256}`, { sha256 });
    }
    return { sha256, size: this.bytes };
  }
}

/** Passes bytes through and keeps their md5 (IMS manifests carry it; Kiln addresses by sha256). */
export class Md5Meter extends Transform {
  private readonly hash = createHash('md5');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}
