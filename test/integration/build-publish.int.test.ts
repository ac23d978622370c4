// The last step of every build, on real stores (SQLite everywhere, PostgreSQL when available) and the
// real fs blob store: built files become artifacts, a manifest and a version registered in one go;
// when registering fails late (the version appeared meanwhile) or the job is stopped mid-upload, the
// artifacts the build added are gone again (record and bytes) and those it shared are kept.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/fs/fs-blob-store.js';
import { KilnError } from '../../src/core/kiln-error.js';
import type { Clock, IdSource, Store } from '../../src/core/ports.js';
import { MANIFEST_TYPES } from '../../src/core/recipes/image-manifest.js';
import { ArtifactService } from '../../src/core/services/artifact-service.js';
import { ImageService } from '../../src/core/services/image-service.js';
import { publishBuild, type BuiltFile, type PublishRequest } from '../../src/jobs/builders/publish-build.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { freshPgDatabase, pgUrl } from '../support/pg.js';
import { sha256 } from './build-support.js';

const clock: Clock = { now: () => new Date() };
const ids: IdSource = { id: () => randomUUID(), secret: () => randomBytes(16).toString('hex') };

const backends: [string, (dir: string) => Promise<Store>][] = [['sqlite', (dir) => openSqliteStore({ path: join(dir, 'kiln.db') })]];
if (pgUrl !== null) {
  backends.push(['postgres', async () => (await import('../../src/store/postgres/postgres-store.js')).openPostgresStore({ url: await freshPgDatabase() })]);
}

describe.each(backends)('publishing a build (%s)', (_name, open) => {
  let dir: string;
  let store: Store;
  let blobs: FsBlobStore;
  let files: BuiltFile[];
  let bytes: Buffer[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-publish-'));
    store = await open(dir);
    blobs = await FsBlobStore.open(join(dir, 'blobs'));
    bytes = [randomBytes(4096), randomBytes(8192), randomBytes(16384)];
    files = [];
    for (const [i, [name, role, type]] of ([['vmlinuz', 'kernel', MANIFEST_TYPES.kernel], ['initrd.img', 'initrd', MANIFEST_TYPES.initrd], ['rootfs.squashfs', 'rootfs', MANIFEST_TYPES.rootfs]] as const).entries()) {
      const path = join(dir, name);
      await writeFile(path, bytes[i]!);
      files.push({ path, name, role, type });
    }
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const request = (over: Partial<PublishRequest> = {}): PublishRequest => ({
    image: 'built', arch: 'x86_64', cmdline: 'console=ttyS0', metadata: { build: { job: 'j1' } }, files, actor: 'tester', imageDescription: 'from a test', ...over,
  });
  const liveBlobs = async () => {
    const out: string[] = [];
    for await (const s of blobs.list()) out.push(s);
    return out.sort();
  };
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);

  it('uploads the files and a manifest, creates the image and the version, moves the channel', async () => {
    const p = await publishBuild({ store, blobs, clock, ids }, request({ promote: 'stable' }), new AbortController().signal, log);
    expect(p.version).toMatchObject({ image: 'built', version: '1', cmdline: 'console=ttyS0', metadata: { build: { job: 'j1' }, manifest: p.manifestSha256 } });
    expect(p.version.artifacts.map((a) => [a.name, a.role, a.sha256])).toEqual([
      ['vmlinuz', 'kernel', sha256(bytes[0]!)], ['initrd.img', 'initrd', sha256(bytes[1]!)], ['rootfs.squashfs', 'rootfs', sha256(bytes[2]!)], ['manifest.json', 'other', p.manifestSha256],
    ]);
    expect((await store.getChannel('built', 'stable'))?.version).toBe('1');
    expect((await store.getImage('built'))?.description).toBe('from a test');
    const chunks: Buffer[] = [];
    for await (const c of await blobs.read(p.manifestSha256)) chunks.push(c as Buffer);
    const manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { version: string; artifacts: { name: string; sha256: string; size: number; type: string }[] };
    expect(manifest.version).toBe('1.0');
    expect(manifest.artifacts.map((a) => [a.name, a.sha256, a.size, a.type])).toEqual(files.map((f, i) => [f.name, sha256(bytes[i]!), bytes[i]!.length, f.type]));
    // A second build of the same image gets the next number.
    const again = await publishBuild({ store, blobs, clock, ids }, request(), new AbortController().signal, log);
    expect(again.version.version).toBe('2');
  });

  it('a late failure (the version appeared meanwhile) removes what the build added and keeps what it shared', async () => {
    const artifacts = new ArtifactService(store, blobs, clock);
    const shared = await artifacts.upload(Readable.from([bytes[0]!]), {});
    const images = new ImageService(store, blobs, clock, ids);
    await images.create({ name: 'built' });
    await images.createVersion('built', { version: '7', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: shared.artifact.sha256 }] });
    const before = await liveBlobs();

    const err = await publishBuild({ store, blobs, clock, ids }, request({ version: '7', promote: 'stable' }), new AbortController().signal, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('KILN_VERSION_EXISTS');
    expect((await store.listArtifacts()).map((a) => a.sha256)).toEqual([shared.artifact.sha256]);
    expect(await liveBlobs()).toEqual(before);
    expect((await store.listVersions('built')).map((v) => v.version)).toEqual(['7']);
    expect(await store.getChannel('built', 'stable')).toBeNull();
    expect(lines.some((l) => l.includes('removed the 3 artifacts this build had stored'))).toBe(true);
  });

  it('stopped during the uploads: nothing of it is left, not even the image', async () => {
    const stop = new AbortController();
    const err = await publishBuild({ store, blobs, clock, ids }, request({ image: 'stopped' }), stop.signal, (l) => {
      if (l.includes('stored initrd.img')) stop.abort({ kind: 'cancel', message: 'cancel requested' });
    }).catch((e: unknown) => e);
    expect(String(err)).toContain('cancel requested');
    expect(await store.listArtifacts()).toEqual([]);
    expect(await liveBlobs()).toEqual([]);
    expect(await store.getImage('stopped')).toBeNull();
  });

  it('never removes an artifact a recipe refers to', async () => {
    const artifacts = new ArtifactService(store, blobs, clock);
    const a = await artifacts.upload(Readable.from([bytes[1]!]), {});
    const at = clock.now().toISOString();
    await store.createRecipe({ id: randomUUID(), name: 'r', kind: 'rootfs-archive', arch: 'x86_64', description: '', sha256: a.artifact.sha256, size: a.artifact.size, createdAt: at, updatedAt: at, revision: 1 });
    expect(await new ImageService(store, blobs, clock, ids).collectGarbage([a.artifact.sha256])).toBe(0);
    expect(await blobs.stat(a.artifact.sha256)).not.toBeNull();
  });
});
