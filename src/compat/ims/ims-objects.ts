// The object keys IMS links name (`s3://<bucket>/<key>`), over Kiln's content-addressed blobs: an
// upload stores the bytes once (hashing sha256 and md5 on the way) and maps the key to them. Moving
// a key is a rename in the store; bytes go to the trash only when no key and no version needs them.
import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import { Md5Meter } from '../../blobs/digest-meter.js';
import { storedArtifact, type ArtifactSource } from '../../boot/http/send-artifact.js';
import { KilnError } from '../../core/kiln-error.js';
import type { BlobStore, Clock, IdSource, Store } from '../../core/ports.js';
import type { ImsObject } from '../../core/ims/ims-records.js';
import { ArtifactService } from '../../core/services/artifact-service.js';
import { ImageService } from '../../core/services/image-service.js';
import { checkBucket, checkKey, type ObjectRef } from './ims-links.js';

export class ImsObjects {
  private readonly artifacts: ArtifactService;
  private readonly images: ImageService;

  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    ids: IdSource,
  ) {
    this.artifacts = new ArtifactService(store, blobs, clock);
    this.images = new ImageService(store, blobs, clock, ids);
  }

  static check(ref: ObjectRef): ObjectRef {
    const why = checkBucket(ref.bucket) ?? checkKey(ref.key);
    if (why !== null) throw new KilnError('KILN_IMS_BAD_REQUEST', `object ${JSON.stringify(`${ref.bucket}/${ref.key}`.slice(0, 200))}: ${why}`);
    return ref;
  }

  /** Stores `body` at `ref` (replacing what was there); nothing changes when the upload fails. */
  async put(ref: ObjectRef, body: Readable, contentType: string): Promise<ImsObject> {
    ImsObjects.check(ref);
    const b = await this.storeBytes(body, contentType);
    return this.record(ref, b.sha256, b.size, b.md5, contentType);
  }

  /** Stores bytes as an artifact, no key yet (a key is recorded later, in the caller's transaction). */
  async storeBytes(body: Readable, contentType: string): Promise<{ sha256: string; size: number; md5: string }> {
    const md5 = new Md5Meter();
    // pipeline: a client that goes away mid-upload fails the meter too, so the blob store keeps nothing.
    const metered = pipeline(body, md5, () => undefined);
    const { artifact } = await this.artifacts.upload(metered, { mediaType: contentType });
    return { sha256: artifact.sha256, size: artifact.size, md5: md5.digest() };
  }

  storeDocument(text: string, contentType: string): Promise<{ sha256: string; size: number; md5: string }> {
    return this.storeBytes(Readable.from([Buffer.from(text)]), contentType);
  }

  /** Maps `ref` to bytes already stored (a build's artifact): no copy. */
  async record(ref: ObjectRef, sha256: string, size: number, md5: string, contentType: string, store: Store = this.store): Promise<ImsObject> {
    const previous = await store.ims.getObject(ref.bucket, ref.key);
    const o = await store.ims.putObject({ bucket: ref.bucket, key: ref.key, sha256, size, md5, contentType, createdAt: this.clock.now().toISOString() });
    if (previous !== null && previous.sha256 !== sha256 && store === this.store) await this.collect([previous.sha256]);
    return o;
  }

  async get(ref: ObjectRef): Promise<ImsObject> {
    const o = await this.store.ims.getObject(ref.bucket, ref.key);
    if (o === null) throw new KilnError('KILN_IMS_OBJECT_NOT_FOUND', `no object s3://${ref.bucket}/${ref.key}`);
    return o;
  }

  find(ref: ObjectRef): Promise<ImsObject | null> {
    return this.store.ims.getObject(ref.bucket, ref.key);
  }

  list(bucket: string, prefix: string): Promise<ImsObject[]> {
    return this.store.ims.listObjects(bucket, prefix);
  }

  /** The object's bytes, for sendArtifact. */
  source(o: ImsObject): ArtifactSource {
    return storedArtifact(this.artifacts, { sha256: o.sha256, size: o.size, mediaType: o.contentType, createdAt: o.createdAt });
  }

  /** The object's bytes as text, refused above `max` bytes (manifests). */
  async readText(o: ImsObject, max: number): Promise<string> {
    if (o.size > max) throw new KilnError('KILN_IMS_INVALID', `s3://${o.bucket}/${o.key} is ${o.size} bytes; at most ${max} are read`, { errors: { link: ['The manifest is too large.'] } });
    const chunks: Buffer[] = [];
    for await (const c of await this.blobs.read(o.sha256)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  /** A stored artifact's bytes as text (manifests), refused above `max` bytes. */
  async readArtifactText(sha256: string, max: number): Promise<string> {
    const a = await this.artifacts.get(sha256);
    if (a.size > max) throw new KilnError('KILN_IMS_BAD_REQUEST', `artifact ${sha256} is ${a.size} bytes; at most ${max} are read`);
    const chunks: Buffer[] = [];
    for await (const c of await this.blobs.read(sha256)) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  /** The md5 of a stored artifact (results whose manifest does not carry it): one read of the bytes. */
  async md5Of(sha256: string): Promise<string> {
    const h = createHash('md5');
    for await (const c of await this.blobs.read(sha256)) h.update(c as Buffer);
    return h.digest('hex');
  }

  async delete(ref: ObjectRef): Promise<void> {
    const o = await this.get(ref);
    await this.store.ims.deleteObject(ref.bucket, ref.key);
    await this.collect([o.sha256]);
  }

  /** Trashes those of `shas` that no key, version or recipe refers to any more. */
  async collect(shas: readonly string[]): Promise<void> {
    if (shas.length > 0) await this.images.collectGarbage([...new Set(shas)]);
  }
}
