// Checks a recipe's bytes while they stream into the blob store: the stream passes them on untouched
// and fails at the end (so the blob store keeps nothing) when they are not a recipe of the kind given.
// debootstrap: the spec is parsed; archives: tar structure (plain or gzip; zstd, xz and bzip2 are
// recognised by their magic and read fully only by the build), safe member names, and what the kind
// needs (OCI: oci-layout and index.json; kiwi-ng: a config.xml or *.kiwi description).
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { KilnError } from '../kiln-error.js';
import type { Arch } from '../types.js';
import { MAX_SPEC_BYTES, parseDebootstrapSpec, type DebootstrapSpec } from './debootstrap-spec.js';
import type { RecipeKind } from './recipe.js';
import { TarFormatError, TarParser, type TarEntry } from './tar-parser.js';

export type ArchiveCompression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

export interface RecipeFacts {
  /** The parsed spec (debootstrap). */
  spec?: DebootstrapSpec;
  compression?: ArchiveCompression;
  /** Entries read; undefined when the compression was only recognised by its magic. */
  entries?: number;
  /** kiwi-ng: the directory holding the description ('' for the archive root). */
  descriptionDir?: string;
}

/** The compression of an archive from its first bytes, or null when it is none Kiln reads. */
export function compressionOf(head: Buffer): ArchiveCompression | null {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 263 && head.toString('latin1', 257, 262) === 'ustar') return 'none';
  // Old v7 tars have no magic; the parser's checksum decides.
  if (head.length >= 512) return 'none';
  return null;
}

function invalid(kind: RecipeKind, message: string): KilnError {
  return new KilnError('KILN_RECIPE_INVALID', `${kind} recipe: ${message}`);
}

/** Member names that would leave the root on a naive extraction. */
function unsafeName(name: string): boolean {
  return name.split('/').includes('..');
}

/** Where a kiwi description lives: config.xml or *.kiwi at the root or in one top directory. */
export function kiwiDescriptionDir(names: Iterable<string>): string | null {
  const dirs = new Set<string>();
  for (const n of names) {
    const parts = n.split('/');
    const base = parts[parts.length - 1]!;
    if ((base === 'config.xml' || base.endsWith('.kiwi')) && parts.length <= 2) dirs.add(parts.slice(0, -1).join('/'));
  }
  if (dirs.has('')) return '';
  return dirs.size === 1 ? [...dirs][0]! : null;
}

/**
 * A pass-through stream that checks the recipe as it goes; `facts` is filled once the stream ended
 * without error. Pipe the upload through it into the blob store.
 */
export class RecipeInspector extends Transform {
  readonly facts: RecipeFacts = {};
  private head: Buffer[] = [];
  private headBytes = 0;
  private decided = false;
  private parser: TarParser | null = null;
  private gunzip: Gunzip | null = null;
  private failure: Error | null = null;
  private readonly names = new Set<string>();
  private index: Buffer | null = null;
  private unsafe: string | null = null;

  constructor(
    private readonly kind: RecipeKind,
    private readonly arch: Arch,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.kind === 'debootstrap') {
      this.headBytes += chunk.length;
      if (this.headBytes > MAX_SPEC_BYTES) return cb(invalid(this.kind, `the spec is larger than ${MAX_SPEC_BYTES / 1024} KiB`));
      this.head.push(chunk);
      return cb(null, chunk);
    }
    if (this.decided) return this.feed(chunk, (err) => (err !== null ? cb(err) : cb(null, chunk)));
    // The first 512 bytes decide how to read the rest; until then bytes pass on unread.
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < 512) return cb(null, chunk);
    this.decide((err) => (err !== null ? cb(err) : cb(null, chunk)));
  }

  override _flush(cb: TransformCallback): void {
    if (this.kind === 'debootstrap') {
      try {
        this.facts.spec = parseDebootstrapSpec(Buffer.concat(this.head).toString('utf8'), this.arch);
        return cb();
      } catch (err) {
        return cb(err as Error);
      }
    }
    const end = () => {
      if (this.gunzip === null) return this.finish(cb);
      if (this.failure !== null) return cb(this.failure);
      this.gunzip.once('end', () => (this.failure !== null ? cb(this.failure) : this.finish(cb)));
      this.gunzip.once('error', () => cb(this.failure ?? invalid(this.kind, 'the gzip data is corrupt')));
      this.gunzip.end();
    };
    if (this.decided) return end();
    this.decide((err) => (err !== null ? cb(err) : end()));
  }

  /** Reads the head: how the archive is compressed, then its first entries. */
  private decide(done: (err: Error | null) => void): void {
    this.decided = true;
    const head = Buffer.concat(this.head);
    this.head = [];
    const compression = compressionOf(head);
    if (compression === null) return done(invalid(this.kind, 'not a tar archive (plain, gzip, zstd, xz or bzip2)'));
    this.facts.compression = compression;
    // zstd, xz and bzip2 have no decoder in Node 20: recognised by their magic, read by the build.
    if (compression !== 'none' && compression !== 'gzip') return done(null);
    this.parser = new TarParser((e) => this.onEntry(e), (name) => this.kind === 'oci-archive' && name === 'index.json');
    if (compression === 'gzip') {
      this.gunzip = createGunzip();
      this.gunzip.on('data', (d: Buffer) => {
        if (this.failure !== null) return;
        try {
          this.parser!.write(d);
        } catch (err) {
          this.failure = this.asRecipeError(err);
        }
      });
      this.gunzip.on('error', (err) => {
        this.failure ??= invalid(this.kind, `the gzip data is corrupt: ${err.message}`);
      });
    }
    this.feed(head, done);
  }

  private feed(chunk: Buffer, done: (err: Error | null) => void): void {
    if (this.parser === null) return done(null);
    if (this.gunzip !== null) {
      if (this.failure !== null) return done(this.failure);
      this.gunzip.write(chunk, () => done(this.failure));
      return;
    }
    try {
      this.parser.write(chunk);
      done(null);
    } catch (err) {
      done(this.asRecipeError(err));
    }
  }

  private asRecipeError(err: unknown): Error {
    if (err instanceof TarFormatError) return invalid(this.kind, err.message);
    return err as Error;
  }

  private onEntry(e: TarEntry): void {
    if (this.unsafe === null && (unsafeName(e.name) || (e.type === 'hardlink' && unsafeName(e.linkname)))) this.unsafe = e.name;
    if (this.kind !== 'rootfs-archive' && this.names.size < 100_000) this.names.add(e.name);
    if (e.name === 'index.json' && e.data !== undefined) this.index = e.data;
  }

  private finish(cb: TransformCallback): void {
    try {
      this.check();
      cb();
    } catch (err) {
      cb(this.asRecipeError(err));
    }
  }

  private check(): void {
    if (this.parser === null) return; // only the magic was checked
    this.parser.end();
    this.facts.entries = this.parser.count;
    if (this.unsafe !== null) throw invalid(this.kind, `member ${JSON.stringify(this.unsafe.slice(0, 200))} has a ".." component`);
    if (this.kind === 'oci-archive') this.checkOci();
    if (this.kind === 'kiwi-ng') {
      const dir = kiwiDescriptionDir(this.names);
      if (dir === null) throw invalid(this.kind, 'no kiwi description: want config.xml (or one *.kiwi file) at the top of the archive or in its single top directory');
      this.facts.descriptionDir = dir;
    }
  }

  private checkOci(): void {
    if (!this.names.has('oci-layout')) throw invalid(this.kind, 'not an OCI image layout: no oci-layout file at the top of the archive (docker save ≥ 25, skopeo copy oci-archive:, buildah push oci-archive: make one)');
    if (this.index === null) throw invalid(this.kind, 'not an OCI image layout: no index.json');
    let index: unknown;
    try {
      index = JSON.parse(this.index.toString('utf8'));
    } catch {
      throw invalid(this.kind, 'index.json is not JSON');
    }
    const manifests = (index as { manifests?: unknown }).manifests;
    if (!Array.isArray(manifests) || manifests.length === 0) throw invalid(this.kind, 'index.json lists no manifests');
    for (const m of manifests as { digest?: unknown }[]) {
      const d = typeof m.digest === 'string' ? m.digest : '';
      if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw invalid(this.kind, `index.json: manifest digest ${JSON.stringify(d.slice(0, 80))} is not sha256:<hex>`);
      if (!this.names.has(`blobs/sha256/${d.slice(7)}`)) throw invalid(this.kind, `index.json names ${d}, which is not in blobs/sha256/`);
    }
  }
}
