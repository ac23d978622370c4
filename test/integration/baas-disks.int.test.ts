// The core of BAAS images on real storage (SQLite or PostgreSQL, the filesystem blob store): integer
// versions under concurrency, overwrite of the latest in place, and collection of the replaced blob.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/fs/fs-blob-store.js';
import type { Store } from '../../src/core/ports.js';
import { ArtifactService } from '../../src/core/services/artifact-service.js';
import { ImageSetupService } from '../../src/core/services/image-setup-service.js';
import type { Artifact } from '../../src/core/types.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { removeDir } from './helpers.js';

const clock = { now: () => new Date() };
const ids = { id: () => randomUUID(), secret: () => randomBytes(32).toString('base64url') };

if (pgUrl === null) console.warn(`BAAS disks on PostgreSQL skipped: ${pgSkipReason}`);

for (const backend of ['SQLite', 'PostgreSQL'] as const) describe.skipIf(backend === 'PostgreSQL' && pgUrl === null)(`BAAS disk versions (${backend})`, () => {
  let dir: string;
  let store: Store;
  let blobs: FsBlobStore;
  let artifacts: ArtifactService;
  let setups: ImageSetupService;
  const put = async (bytes: Buffer): Promise<Artifact> => (await artifacts.upload(Readable.from([bytes]), {})).artifact;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-baas-disks-'));
    store = backend === 'SQLite' ? await openSqliteStore({ path: join(dir, 'kiln.db') }) : await openPostgresStore({ url: await freshPgDatabase('baasdisks') });
    blobs = await FsBlobStore.open(join(dir, 'blobs'));
    artifacts = new ArtifactService(store, blobs, clock);
    setups = new ImageSetupService(store, clock, ids, blobs);
    await store.createUser({ name: 'alice', displayName: 'Alice', email: null, role: 'viewer', externalId: null, createdAt: 't', updatedAt: 't', revision: 1 });
  });
  afterEach(async () => {
    await store.close();
    await blobs.close();
    await removeDir(dir);
  });

  it('numbers versions 0, 1, 2, ... and concurrent uploads each get their own number', async () => {
    const { image } = await setups.disks.create({ description: 'd', labels: { 'baas/type': 'base' }, owner: 'alice' }, await put(Buffer.alloc(0)));
    const uploads = await Promise.all(Array.from({ length: 8 }, () => put(randomBytes(1000))));
    const made = await Promise.all(uploads.map((a) => setups.disks.addVersion(image.name, a)));
    expect(made.map((v) => Number(v.version)).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await setups.disks.versions(image.name)).map((v) => v.version)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    expect((await setups.disks.latest(image.name)).version).toBe('8');
    expect(await setups.disks.ownedBy('alice')).toEqual([expect.objectContaining({ name: image.name, owner: 'alice' })]);
  });

  it('overwrites the latest version in place and collects the blob it replaced, unless another version uses it', async () => {
    const zero = await put(randomBytes(2000));
    const { image } = await setups.disks.create({ description: 'd', labels: {}, owner: 'alice' }, zero);
    const first = await put(randomBytes(3000));
    await setups.disks.addVersion(image.name, first);

    const second = await put(randomBytes(4000));
    const { version, collected } = await setups.disks.replaceLatest(image.name, second);
    expect(version.version).toBe('1');
    expect(version.artifacts).toEqual([{ name: 'disk.img', role: 'other', sha256: second.sha256, size: 4000, mediaType: 'application/octet-stream' }]);
    expect(collected).toBe(1);
    expect(await store.getArtifact(first.sha256)).toBeNull();
    expect(await blobs.stat(first.sha256)).toBeNull();
    expect((await setups.disks.versions(image.name)).map((v) => v.version)).toEqual(['0', '1']);

    // Overwritten with version 0's bytes: the replaced blob goes, the shared one stays.
    const again = await setups.disks.replaceLatest(image.name, zero);
    expect(again.collected).toBe(1);
    expect(await blobs.stat(second.sha256)).toBeNull();
    expect(await blobs.stat(zero.sha256)).not.toBeNull();
    expect((await setups.disks.version(image.name, '0')).artifacts[0]!.sha256).toBe(zero.sha256);
  });

  it('refuses versions of unknown or deleted images and owners that do not exist', async () => {
    const a = await put(randomBytes(10));
    await expect(setups.disks.addVersion('nope', a)).rejects.toMatchObject({ code: 'KILN_IMAGE_NOT_FOUND' });
    await expect(setups.disks.create({ description: 'd', labels: {}, owner: 'nobody' }, a)).rejects.toMatchObject({ code: 'KILN_USER_NOT_FOUND' });
    await expect(setups.disks.create({ description: 'd', labels: { 'bad key!': 'x' }, owner: null }, a)).rejects.toMatchObject({ code: 'KILN_NAME_INVALID' });
    const { image } = await setups.disks.create({ description: 'd', labels: {}, owner: null }, a);
    await expect(setups.disks.version(image.name, '01')).rejects.toMatchObject({ code: 'KILN_VERSION_NOT_FOUND' });
    await store.updateImage(image.name, { deletedAt: 't' }, 't', undefined);
    await expect(setups.disks.addVersion(image.name, a)).rejects.toMatchObject({ code: 'KILN_IMAGE_DELETED' });
    await expect(setups.disks.replaceLatest(image.name, a)).rejects.toMatchObject({ code: 'KILN_IMAGE_DELETED' });
  });

  it('a machine may read the setup it took last, and write back only images frozen with update', async () => {
    const a = await put(randomBytes(10));
    const { image: rw } = await setups.disks.create({ description: 'rw', labels: {}, owner: 'alice' }, a);
    const { image: ro } = await setups.disks.create({ description: 'ro', labels: {}, owner: 'alice' }, a);
    const { image: other } = await setups.disks.create({ description: 'other', labels: {}, owner: 'alice' }, a);
    const machine = await store.createMachine({
      id: 'm1', macs: ['52:54:00:00:00:01'], uuid: null, serial: null, hostname: null, labels: {}, arch: null, firmware: null, state: 'ready',
      profile: null, nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null, createdAt: 't', updatedAt: 't', revision: 1,
    });
    const setup = await setups.create({ name: 'exp', owner: 'alice', images: [{ image: rw.name, version: '0', update: true }, { image: ro.name, version: '0', update: false }] });
    await expect(setups.create({ name: 'bad', owner: 'alice', images: [{ image: rw.name, version: '5', update: false }] })).rejects.toMatchObject({ code: 'KILN_SETUP_INVALID' });
    expect(await setups.machineImageAccess(machine.id, rw.name)).toBe('none');
    await setups.enqueue({ machineId: machine.id, setup: setup.id, update: true, actor: 'alice' });
    expect(await setups.machineImageAccess(machine.id, rw.name)).toBe('none');
    const popped = await setups.pop(machine.id);
    expect(popped?.setup.id).toBe(setup.id);
    expect(await setups.machineImageAccess(machine.id, rw.name)).toBe('write');
    expect(await setups.machineImageAccess(machine.id, ro.name)).toBe('read');
    expect(await setups.machineImageAccess(machine.id, other.name)).toBe('none');
    expect(await setups.pop(machine.id)).toBeNull();
    // Removing an image from the setup takes the machine's access with it.
    await setups.forgetImage(rw.name);
    expect(await setups.machineImageAccess(machine.id, rw.name)).toBe('none');
  });
});
