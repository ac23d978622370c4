// The Store contract: every Store adapter (SQLite now, PostgreSQL later) must pass this suite.
// It drives the port directly and through the core services where the rule lives in the service.
// Clock and IdSource below are small real implementations (seams); blobs go to a real FsBlobStore.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BootCache } from '../../core/boot-cache.js';
import { BootEventRecorder } from '../../core/boot-event-recorder.js';
import type { ErrorCode } from '../../core/error-catalogue.js';
import { KilnError } from '../../core/kiln-error.js';
import type { Change, Clock, IdSource, Store } from '../../core/ports.js';
import { FsBlobStore } from '../../blobs/fs/fs-blob-store.js';
import { ArtifactService } from '../../core/services/artifact-service.js';
import { BootService } from '../../core/services/boot-service.js';
import { GroupService } from '../../core/services/group-service.js';
import { ImageService } from '../../core/services/image-service.js';
import { MachineService } from '../../core/services/machine-service.js';
import { ProfileService } from '../../core/services/profile-service.js';
import { hashToken, TokenService } from '../../core/services/token-service.js';
import type { Artifact, Machine } from '../../core/types.js';
import { compatStoreCases } from './compat-store-cases.js';
import { imsStoreCases } from './ims-store-cases.js';
import { publicKeyStoreCases } from './public-key-store-cases.js';
import { recipeStoreCases } from './recipe-store-cases.js';

// ---------------------------------------------------------------- seams

/** Deterministic clock: every call is one second after the previous one. */
class CounterClock implements Clock {
  private t = Date.parse('2030-01-01T00:00:00.000Z');
  now(): Date {
    this.t += 1000;
    return new Date(this.t);
  }
}

const randomIds: IdSource = {
  id: () => randomUUID(),
  secret: () => randomBytes(32).toString('base64url'),
};

// ---------------------------------------------------------------- helpers

/** Awaits `p`, asserting it rejects with a KilnError of `code`; returns the error. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<KilnError> {
  let outcome: { ok: true; value: unknown } | { ok: false; err: unknown };
  try {
    outcome = { ok: true, value: await p };
  } catch (err) {
    outcome = { ok: false, err };
  }
  if (outcome.ok) throw new Error(`expected a rejection with ${code}, but it resolved to ${JSON.stringify(outcome.value)}`);
  expect(outcome.err).toBeInstanceOf(KilnError);
  expect((outcome.err as KilnError).code).toBe(code);
  return outcome.err as KilnError;
}

const sha = (seed: string): string => createHash('sha256').update(seed).digest('hex');

function mac(n: number): string {
  const hex = n.toString(16).padStart(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

const UUID1 = '4c4c4544-0000-1000-8000-000000000001';
const UUID2 = '4c4c4544-0000-1000-8000-000000000002';

interface Ctx {
  store: Store;
  clock: CounterClock;
  blobs: FsBlobStore;
  blobDir: string;
  artifacts: ArtifactService;
  images: ImageService;
  profiles: ProfileService;
  groups: GroupService;
  machines: MachineService;
  tokens: TokenService;
  cache: BootCache;
  recorder: BootEventRecorder;
  recorderErrors: unknown[];
  boot: BootService;
}

async function services(store: Store): Promise<Ctx> {
  const clock = new CounterClock();
  const blobDir = await mkdtemp(join(tmpdir(), 'kiln-contract-blobs-'));
  const blobs = await FsBlobStore.open(blobDir);
  const cache = new BootCache(store);
  const recorderErrors: unknown[] = [];
  const recorder = new BootEventRecorder(store, { flushIntervalMs: 5, maxBatch: 1000, onError: (err) => recorderErrors.push(err) });
  return {
    store,
    clock,
    blobs,
    blobDir,
    artifacts: new ArtifactService(store, blobs, clock),
    images: new ImageService(store, blobs, clock, randomIds),
    profiles: new ProfileService(store, clock, () => undefined),
    groups: new GroupService(store, clock),
    machines: new MachineService(store, clock, randomIds),
    tokens: new TokenService(store, clock, randomIds),
    cache,
    recorder,
    recorderErrors,
    boot: new BootService(store, cache, recorder, clock, randomIds),
  };
}

// ---------------------------------------------------------------- the suite

export function describeStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let c: Ctx;
    let store: Store;

    beforeEach(async () => {
      store = await open();
      c = await services(store);
    });

    afterEach(async () => {
      c.cache.close();
      await c.recorder.close();
      await store.close();
      await rm(c.blobDir, { recursive: true, force: true });
      expect(c.recorderErrors).toEqual([]);
    });

    /** Records an artifact (no bytes needed for the store) and returns it. */
    async function artifact(seed: string, size = 1000, mediaType = 'application/octet-stream'): Promise<Artifact> {
      return store.putArtifact({ sha256: sha(seed), size, mediaType, createdAt: c.clock.now().toISOString() });
    }

    /** An image with one kernel-only version per name in `versions`. */
    async function imageWithVersions(image: string, versions: string[]): Promise<void> {
      await c.images.create({ name: image });
      const k = await artifact(`${image}-kernel`);
      for (const v of versions) await c.images.createVersion(image, { version: v, artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k.sha256 }] });
    }

    /** Image `os` with version 1 on channel `stable`, plus profiles that boot it. */
    async function bootable(profileNames: string[]): Promise<void> {
      await imageWithVersions('os', ['1']);
      await c.images.promote('os', 'stable', '1', 'test', undefined);
      for (const p of profileNames) await c.profiles.create({ name: p, image: { image: 'os', channel: 'stable' } });
    }

    // ------------------------------------------------------------ basics

    it('reports its dialect and answers a ping', async () => {
      expect(name.startsWith(store.dialect)).toBe(true);
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('artifacts', () => {
      it('put / get / list; a second put of the same sha256 keeps the first record', async () => {
        const a = await artifact('a', 10, 'application/x-kernel');
        expect(await store.getArtifact(a.sha256)).toEqual(a);
        const again = await store.putArtifact({ ...a, size: 99, createdAt: c.clock.now().toISOString() });
        expect(again).toEqual(a);
        const b = await artifact('b', 2 ** 40);
        expect((await store.getArtifact(b.sha256))?.size).toBe(2 ** 40);
        expect((await store.listArtifacts()).map((x) => x.sha256)).toEqual([a.sha256, b.sha256]);
        expect(await store.getArtifact(sha('missing'))).toBeNull();
        await store.deleteArtifact(a.sha256);
        expect(await store.getArtifact(a.sha256)).toBeNull();
      });

      it('ArtifactService.upload stores bytes once and records one artifact', async () => {
        const first = await c.artifacts.upload(Readable.from([Buffer.from('kernel bytes')]), { mediaType: 'Application/Octet-Stream' });
        const second = await c.artifacts.upload(Readable.from([Buffer.from('kernel '), Buffer.from('bytes')]), {});
        expect(first.created).toBe(true);
        expect(second.created).toBe(false);
        expect(second.artifact).toEqual(first.artifact);
        expect(first.artifact).toMatchObject({ sha256: sha('kernel bytes'), size: 12, mediaType: 'application/octet-stream' });
        expect(await store.listArtifacts()).toHaveLength(1);
      });
    });

    // ------------------------------------------------------------ images

    describe('images', () => {
      it('create / get / list', async () => {
        const created = await c.images.create({ name: 'ubuntu', description: 'Ubuntu', labels: { os: 'linux', 'kiln.io/tier': 'gold_1' } });
        await c.images.create({ name: 'alpine' });
        expect(created).toMatchObject({ name: 'ubuntu', description: 'Ubuntu', deletedAt: null, revision: 1, owner: null });
        expect(await store.getImage('ubuntu')).toEqual(created);
        expect(await c.images.get('ubuntu')).toEqual(created);
        expect((await c.images.list({ deleted: false })).map((i) => i.name)).toEqual(['alpine', 'ubuntu']);
        expect(await c.images.list({ deleted: true })).toEqual([]);
        expect(await store.getImage('nope')).toBeNull();
        await rejectsWith(c.images.get('nope'), 'KILN_IMAGE_NOT_FOUND');
      });

      it('a duplicate name is refused with KILN_IMAGE_EXISTS, also while the first is soft-deleted', async () => {
        const first = await c.images.create({ name: 'alpine', description: 'first' });
        await rejectsWith(c.images.create({ name: 'alpine', description: 'second' }), 'KILN_IMAGE_EXISTS');
        await rejectsWith(store.createImage({ ...first, description: 'direct' }), 'KILN_IMAGE_EXISTS');
        expect((await store.getImage('alpine'))?.description).toBe('first');
        await c.images.delete('alpine', undefined);
        await rejectsWith(c.images.create({ name: 'alpine' }), 'KILN_IMAGE_EXISTS');
      });

      it('refuses invalid names', async () => {
        await rejectsWith(c.images.create({ name: 'Not Valid' }), 'KILN_NAME_INVALID');
        expect(await store.listImages({ deleted: false })).toEqual([]);
      });
    });

    describe('versions', () => {
      it('keep the kernel first and the initrds in the given order, with size and media type of the artifacts', async () => {
        await c.images.create({ name: 'ubuntu' });
        const kernel = await artifact('kernel', 100, 'application/x-kernel');
        const microcode = await artifact('microcode', 20);
        const initrd = await artifact('initrd', 300);
        const rootfs = await artifact('rootfs', 4000, 'application/x-squashfs');
        const v = await c.images.createVersion('ubuntu', {
          version: '24.04.1',
          cmdline: 'console=ttyS0',
          metadata: { built: 'ci' },
          artifacts: [
            { name: 'rootfs.squashfs', role: 'rootfs', sha256: rootfs.sha256 },
            { name: 'microcode.img', role: 'initrd', sha256: microcode.sha256 },
            { name: 'vmlinuz', role: 'kernel', sha256: kernel.sha256 },
            { name: 'initrd.img', role: 'initrd', sha256: initrd.sha256 },
          ],
        });
        const expected = [
          { name: 'vmlinuz', role: 'kernel', sha256: kernel.sha256, size: 100, mediaType: 'application/x-kernel' },
          { name: 'microcode.img', role: 'initrd', sha256: microcode.sha256, size: 20, mediaType: 'application/octet-stream' },
          { name: 'initrd.img', role: 'initrd', sha256: initrd.sha256, size: 300, mediaType: 'application/octet-stream' },
          { name: 'rootfs.squashfs', role: 'rootfs', sha256: rootfs.sha256, size: 4000, mediaType: 'application/x-squashfs' },
        ];
        expect(v.artifacts).toEqual(expected);
        const stored = await store.getVersion('ubuntu', '24.04.1');
        expect(stored).toEqual(v);
        expect(stored).toMatchObject({ image: 'ubuntu', version: '24.04.1', arch: 'x86_64', cmdline: 'console=ttyS0', metadata: { built: 'ci' } });
        expect(await store.listVersions('ubuntu')).toEqual([v]);
        expect(await store.countVersions('ubuntu')).toBe(1);
        expect(await store.getVersion('ubuntu', 'nope')).toBeNull();
      });

      it('are numbered 1, 2, ... when no version is given, and listed in creation order', async () => {
        await imageWithVersions('alpine', []);
        const k = sha('alpine-kernel');
        const v1 = await c.images.createVersion('alpine', { artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k }] });
        const v2 = await c.images.createVersion('alpine', { arch: 'aarch64', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k }] });
        expect([v1.version, v2.version]).toEqual(['1', '2']);
        expect((await store.listVersions('alpine')).map((v) => [v.version, v.arch])).toEqual([['1', 'x86_64'], ['2', 'aarch64']]);
        expect(await store.countVersions('alpine')).toBe(2);
      });

      it('a duplicate version is refused with KILN_VERSION_EXISTS and leaves the first intact', async () => {
        await imageWithVersions('alpine', ['1']);
        const other = await artifact('other-kernel');
        await rejectsWith(
          c.images.createVersion('alpine', { version: '1', artifacts: [{ name: 'bzImage', role: 'kernel', sha256: other.sha256 }] }),
          'KILN_VERSION_EXISTS',
        );
        const v = await store.getVersion('alpine', '1');
        expect(v?.artifacts.map((a) => a.name)).toEqual(['vmlinuz']);
        expect(await store.countVersions('alpine')).toBe(1);
      });

      it('a version with a missing artifact, or without exactly one kernel, is KILN_VERSION_INVALID and not stored', async () => {
        await c.images.create({ name: 'alpine' });
        const k = await artifact('k');
        const k2 = await artifact('k2');
        const i = await artifact('i');
        await rejectsWith(
          c.images.createVersion('alpine', { version: '1', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k.sha256 }, { name: 'initrd', role: 'initrd', sha256: sha('never uploaded') }] }),
          'KILN_VERSION_INVALID',
        );
        await rejectsWith(c.images.createVersion('alpine', { version: '1', artifacts: [{ name: 'initrd', role: 'initrd', sha256: i.sha256 }] }), 'KILN_VERSION_INVALID');
        await rejectsWith(
          c.images.createVersion('alpine', { version: '1', artifacts: [{ name: 'a', role: 'kernel', sha256: k.sha256 }, { name: 'b', role: 'kernel', sha256: k2.sha256 }] }),
          'KILN_VERSION_INVALID',
        );
        await rejectsWith(
          c.images.createVersion('alpine', { version: '1', artifacts: [{ name: 'a', role: 'kernel', sha256: k.sha256 }, { name: 'a', role: 'initrd', sha256: i.sha256 }] }),
          'KILN_VERSION_INVALID',
        );
        expect(await store.countVersions('alpine')).toBe(0);
        expect(await store.listVersions('alpine')).toEqual([]);
      });

      it('cannot be added to a missing or deleted image', async () => {
        const k = await artifact('k');
        await rejectsWith(c.images.createVersion('nope', { artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k.sha256 }] }), 'KILN_IMAGE_NOT_FOUND');
        await c.images.create({ name: 'alpine' });
        await c.images.delete('alpine', undefined);
        await rejectsWith(c.images.createVersion('alpine', { artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k.sha256 }] }), 'KILN_IMAGE_DELETED');
      });
    });

    describe('channels', () => {
      it('promote v1, v2, v3; rollback twice lands on v2 then v1; then there is no previous', async () => {
        await imageWithVersions('os', ['v1', 'v2', 'v3']);
        const p1 = await c.images.promote('os', 'stable', 'v1', 'alice', undefined);
        expect(p1).toMatchObject({ image: 'os', name: 'stable', version: 'v1', revision: 1 });
        await c.images.promote('os', 'stable', 'v2', 'alice', undefined);
        const p3 = await c.images.promote('os', 'stable', 'v3', 'bob', undefined);
        expect(p3).toMatchObject({ version: 'v3', revision: 3 });

        const r1 = await c.images.rollback('os', 'stable', 'carol', undefined);
        expect(r1).toMatchObject({ version: 'v2', revision: 4 });
        const r2 = await c.images.rollback('os', 'stable', 'carol', 3 + 1);
        expect(r2).toMatchObject({ version: 'v1', revision: 5 });
        expect(await store.getChannel('os', 'stable')).toEqual(r2);
        await rejectsWith(c.images.rollback('os', 'stable', 'carol', undefined), 'KILN_CHANNEL_NO_PREVIOUS');
        expect((await store.getChannel('os', 'stable'))?.version).toBe('v1');

        const history = await store.channelHistory('os', 'stable');
        expect(history.map((h) => [h.action, h.fromVersion, h.toVersion, h.actor])).toEqual([
          ['promote', null, 'v1', 'alice'],
          ['promote', 'v1', 'v2', 'alice'],
          ['promote', 'v2', 'v3', 'bob'],
          ['rollback', 'v3', 'v2', 'carol'],
          ['rollback', 'v2', 'v1', 'carol'],
        ]);
        const seqs = history.map((h) => h.seq);
        expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
        expect(new Set(seqs).size).toBe(seqs.length);
      });

      it('a promote after a rollback becomes the new top; the rolled-back version is skipped', async () => {
        await imageWithVersions('os', ['v1', 'v2', 'v3', 'v4']);
        for (const v of ['v1', 'v2', 'v3']) await c.images.promote('os', 'stable', v, 'a', undefined);
        await c.images.rollback('os', 'stable', 'a', undefined);
        await c.images.promote('os', 'stable', 'v4', 'a', undefined);
        expect((await c.images.rollback('os', 'stable', 'a', undefined)).version).toBe('v2');
        expect((await c.images.rollback('os', 'stable', 'a', undefined)).version).toBe('v1');
      });

      it('a single promote has no previous version; a missing channel is KILN_CHANNEL_NOT_FOUND', async () => {
        await imageWithVersions('os', ['v1']);
        await rejectsWith(c.images.rollback('os', 'stable', 'a', undefined), 'KILN_CHANNEL_NOT_FOUND');
        await c.images.promote('os', 'stable', 'v1', 'a', undefined);
        await rejectsWith(c.images.rollback('os', 'stable', 'a', undefined), 'KILN_CHANNEL_NO_PREVIOUS');
        expect(await store.channelHistory('os', 'stable')).toHaveLength(1);
      });

      it('channels are independent per name and per image', async () => {
        await imageWithVersions('os', ['v1', 'v2']);
        await imageWithVersions('other', ['v1']);
        await c.images.promote('os', 'stable', 'v1', 'a', undefined);
        await c.images.promote('os', 'beta', 'v2', 'a', undefined);
        await c.images.promote('other', 'stable', 'v1', 'a', undefined);
        expect((await store.listChannels('os')).map((ch) => [ch.name, ch.version])).toEqual([['beta', 'v2'], ['stable', 'v1']]);
        expect(await store.channelHistory('os', 'stable')).toHaveLength(1);
        expect(await store.channelHistory('other', 'stable')).toHaveLength(1);
      });

      it('promote refuses an unknown version and a stale expected revision, changing nothing', async () => {
        await imageWithVersions('os', ['v1', 'v2']);
        await c.images.promote('os', 'stable', 'v1', 'a', undefined);
        await rejectsWith(c.images.promote('os', 'stable', 'v9', 'a', undefined), 'KILN_VERSION_NOT_FOUND');
        await rejectsWith(c.images.promote('os', 'stable', 'v2', 'a', 7), 'KILN_PRECONDITION_FAILED');
        await rejectsWith(c.images.promote('os', 'beta', 'v2', 'a', 1), 'KILN_CHANNEL_NOT_FOUND');
        expect(await store.getChannel('os', 'stable')).toMatchObject({ version: 'v1', revision: 1 });
        expect(await store.getChannel('os', 'beta')).toBeNull();
        expect(await store.channelHistory('os', 'stable')).toHaveLength(1);
        expect((await c.images.promote('os', 'stable', 'v2', 'a', 1)).revision).toBe(2);
      });
    });

    describe('soft delete, restore, purge', () => {
      it('delete hides the image from list({deleted:false}) and shows it in list({deleted:true}); restore brings it back', async () => {
        await c.images.create({ name: 'a' });
        await c.images.create({ name: 'b' });
        const deleted = await c.images.delete('a', 1);
        expect(deleted.deletedAt).not.toBeNull();
        expect(deleted.revision).toBe(2);
        expect((await store.listImages({ deleted: false })).map((i) => i.name)).toEqual(['b']);
        expect((await store.listImages({ deleted: true })).map((i) => i.name)).toEqual(['a']);
        await rejectsWith(c.images.get('a'), 'KILN_IMAGE_NOT_FOUND');
        expect((await c.images.get('a', true)).name).toBe('a');

        const restored = await c.images.restore('a');
        expect(restored.deletedAt).toBeNull();
        expect((await store.listImages({ deleted: false })).map((i) => i.name)).toEqual(['a', 'b']);
        expect(await store.listImages({ deleted: true })).toEqual([]);
      });

      it('purge is refused unless the image is deleted (KILN_IMAGE_NOT_DELETED) or when it does not exist', async () => {
        await imageWithVersions('os', ['1']);
        await rejectsWith(c.images.purge('os'), 'KILN_IMAGE_NOT_DELETED');
        await rejectsWith(c.images.purge('nope'), 'KILN_IMAGE_NOT_FOUND');
        expect(await store.getImage('os')).not.toBeNull();
        expect(await store.countVersions('os')).toBe(1);
      });

      it('purge is refused while a profile uses the image (KILN_IMAGE_IN_USE), and works once it does not', async () => {
        await imageWithVersions('os', ['1']);
        await c.profiles.create({ name: 'pinned', image: { image: 'os', version: '1' } });
        await c.images.delete('os', undefined);
        const err = await rejectsWith(c.images.purge('os'), 'KILN_IMAGE_IN_USE');
        expect(err.details).toEqual({ profiles: ['pinned'] });
        expect(await store.imageUsers('os')).toEqual(['pinned']);
        expect(await store.countVersions('os')).toBe(1);
        await c.profiles.delete('pinned', undefined);
        await c.images.purge('os');
        expect(await store.getImage('os')).toBeNull();
      });

      it('purge removes versions, channels and history, and deletes exactly the blobs nothing else uses', async () => {
        const upload = async (text: string) => (await c.artifacts.upload(Readable.from([Buffer.from(text)]), {})).artifact.sha256;
        const kernelA = await upload('kernel of a');
        const shared = await upload('shared initrd');
        const kernelB = await upload('kernel of b');
        const loose = await upload('uploaded but in no version');
        await c.images.create({ name: 'a' });
        await c.images.create({ name: 'b' });
        const arts = (k: string) => [{ name: 'vmlinuz', role: 'kernel' as const, sha256: k }, { name: 'initrd', role: 'initrd' as const, sha256: shared }];
        await c.images.createVersion('a', { version: '1', artifacts: arts(kernelA) });
        await c.images.createVersion('a', { version: '2', artifacts: arts(kernelA) });
        await c.images.createVersion('b', { version: '1', artifacts: arts(kernelB) });
        await c.images.promote('a', 'stable', '1', 'x', undefined);
        await c.images.promote('a', 'stable', '2', 'x', undefined);

        expect(await store.unreferencedArtifacts([kernelA, shared, kernelB, loose])).toEqual([loose]);
        expect(await store.unreferencedArtifacts([])).toEqual([]);

        await c.images.delete('a', undefined);
        const { purgedBlobs } = await c.images.purge('a');
        expect(purgedBlobs).toBe(1);
        expect(await store.getImage('a')).toBeNull();
        expect(await store.listVersions('a')).toEqual([]);
        expect(await store.countVersions('a')).toBe(0);
        expect(await store.getVersion('a', '1')).toBeNull();
        expect(await store.listChannels('a')).toEqual([]);
        expect(await store.getChannel('a', 'stable')).toBeNull();
        expect(await store.channelHistory('a', 'stable')).toEqual([]);
        expect(await store.listImages({ deleted: true })).toEqual([]);

        // kernelA was only a's: record and bytes are gone. The shared initrd and b stay; the loose upload is no candidate.
        expect(await store.getArtifact(kernelA)).toBeNull();
        expect(await c.blobs.stat(kernelA)).toBeNull();
        for (const keep of [shared, kernelB, loose]) {
          expect(await store.getArtifact(keep)).not.toBeNull();
          expect(await c.blobs.stat(keep)).not.toBeNull();
        }
        expect((await store.getVersion('b', '1'))?.artifacts.map((x) => x.sha256)).toEqual([kernelB, shared]);
        // The name is free again.
        await c.images.create({ name: 'a' });
      });

      it('purged bytes wait in the trash; an identical upload makes the artifact whole again', async () => {
        const data = Buffer.from('kernel bytes that get purged');
        const k = (await c.artifacts.upload(Readable.from([data]), {})).artifact.sha256;
        await c.images.create({ name: 'a' });
        await c.images.createVersion('a', { version: '1', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k }] });
        await c.images.delete('a', undefined);
        expect((await c.images.purge('a')).purgedBlobs).toBe(1);
        expect(await c.blobs.stat(k)).toBeNull();
        const again = await c.artifacts.upload(Readable.from([data]), {});
        expect(again).toMatchObject({ created: true, artifact: { sha256: k, size: data.length } });
        expect(await c.blobs.stat(k)).toEqual({ sha256: k, size: data.length });
        // The trashed copy is now redundant; emptying the trash leaves the live blob alone.
        expect(await c.blobs.emptyTrash(new Date(Date.now() + 60_000))).toBe(1);
        expect(await c.blobs.stat(k)).toEqual({ sha256: k, size: data.length });
      });

      it('a purge racing an identical upload never leaves a record without its bytes', async () => {
        for (let round = 0; round < 15; round++) {
          const data = Buffer.from(`race round ${round}`);
          const k = (await c.artifacts.upload(Readable.from([data]), {})).artifact.sha256;
          const name = `img${round}`;
          await c.images.create({ name });
          await c.images.createVersion(name, { version: '1', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k }] });
          await c.images.delete(name, undefined);
          await Promise.all([c.images.purge(name), c.artifacts.upload(Readable.from([data]), {})]);
          const record = await store.getArtifact(k);
          const bytes = await c.blobs.stat(k);
          expect(record === null || bytes !== null, `round ${round}: record without bytes`).toBe(true);
        }
      });

      it('Store.purgeImage alone leaves the orphans to unreferencedArtifacts', async () => {
        await imageWithVersions('a', ['1']);
        await imageWithVersions('b', ['1']);
        const ka = sha('a-kernel');
        const kb = sha('b-kernel');
        await store.purgeImage('a');
        expect(await store.unreferencedArtifacts([ka, kb])).toEqual([ka]);
        expect(await store.getArtifact(ka)).not.toBeNull();
      });
    });

    describe('revisions and optimistic concurrency', () => {
      it('updateImage with a stale expected revision is KILN_PRECONDITION_FAILED and changes nothing', async () => {
        await c.images.create({ name: 'os', description: 'v0' });
        const r2 = await c.images.update('os', { description: 'v1' }, 1);
        expect(r2).toMatchObject({ description: 'v1', revision: 2 });
        const before = await store.getImage('os');
        await rejectsWith(c.images.update('os', { description: 'stale', labels: { x: 'y' } }, 1), 'KILN_PRECONDITION_FAILED');
        await rejectsWith(store.updateImage('os', { description: 'stale' }, c.clock.now().toISOString(), 1), 'KILN_PRECONDITION_FAILED');
        await rejectsWith(c.images.delete('os', 1), 'KILN_PRECONDITION_FAILED');
        expect(await store.getImage('os')).toEqual(before);
        const r3 = await store.updateImage('os', { labels: { x: 'y' } }, c.clock.now().toISOString(), 2);
        expect(r3).toMatchObject({ description: 'v1', labels: { x: 'y' }, revision: 3 });
        expect(r3.updatedAt > before!.updatedAt).toBe(true);
        const r4 = await store.updateImage('os', { description: 'unconditional' }, c.clock.now().toISOString(), undefined);
        expect(r4.revision).toBe(4);
        await rejectsWith(store.updateImage('nope', { description: 'x' }, c.clock.now().toISOString(), 1), 'KILN_IMAGE_NOT_FOUND');
      });

      it('profiles: replace and delete honour the expected revision', async () => {
        await imageWithVersions('os', ['1', '2']);
        await c.profiles.create({ name: 'p', image: { image: 'os', version: '1' } });
        const p2 = await c.profiles.replace('p', { image: { image: 'os', version: '2' }, kernelArgs: ['quiet'] }, 1);
        expect(p2).toMatchObject({ revision: 2, image: { image: 'os', version: '2' }, kernelArgs: ['quiet'] });
        await rejectsWith(c.profiles.replace('p', { image: { image: 'os', channel: 'stable' } }, 1), 'KILN_PRECONDITION_FAILED');
        await rejectsWith(c.profiles.delete('p', 1), 'KILN_PRECONDITION_FAILED');
        expect(await store.getProfile('p')).toEqual(p2);
        await c.profiles.delete('p', 2);
        expect(await store.getProfile('p')).toBeNull();
        await rejectsWith(c.profiles.delete('p', undefined), 'KILN_PROFILE_NOT_FOUND');
      });

      it('profiles in use by a group or a machine cannot be deleted', async () => {
        await bootable(['p', 'q']);
        await c.groups.create({ name: 'all', profile: 'p' });
        const m = await c.machines.create({ macs: [mac(1)] });
        await c.machines.setNextBoot(m.id, 'q', undefined);
        expect((await rejectsWith(c.profiles.delete('p', undefined), 'KILN_PROFILE_IN_USE')).details).toEqual({ groups: ['all'], machines: [] });
        expect((await rejectsWith(c.profiles.delete('q', undefined), 'KILN_PROFILE_IN_USE')).details).toEqual({ groups: [], machines: [m.id] });
        expect(await store.getProfile('p')).not.toBeNull();
      });

      it('groups: replace and delete honour the expected revision', async () => {
        await bootable(['p']);
        await c.groups.create({ name: 'g', selectors: { arch: 'x86_64' }, profile: 'p' });
        const g2 = await c.groups.replace('g', { selectors: { arch: 'aarch64' }, profile: 'p' }, 1);
        expect(g2).toMatchObject({ revision: 2, selectors: { arch: 'aarch64' } });
        await rejectsWith(c.groups.replace('g', { selectors: {}, profile: 'p' }, 1), 'KILN_PRECONDITION_FAILED');
        await rejectsWith(c.groups.delete('g', 1), 'KILN_PRECONDITION_FAILED');
        expect(await store.getGroup('g')).toEqual(g2);
        await c.groups.delete('g', 2);
        expect(await store.getGroup('g')).toBeNull();
      });

      it('machines: update with a stale revision fails and keeps the MACs', async () => {
        const m = await c.machines.create({ macs: [mac(1)], hostname: 'n1' });
        const m2 = await c.machines.update(m.id, { hostname: 'n2', macs: [mac(1), mac(2)] }, 1);
        expect(m2).toMatchObject({ hostname: 'n2', macs: [mac(1), mac(2)], revision: 2 });
        await rejectsWith(c.machines.update(m.id, { hostname: 'n3', macs: [mac(3)] }, 1), 'KILN_PRECONDITION_FAILED');
        expect(await store.getMachine(m.id)).toEqual(m2);
        expect((await store.findMachineByMac(mac(2)))?.id).toBe(m.id);
        expect(await store.findMachineByMac(mac(3))).toBeNull();
      });
    });

    describe('concurrent writers (every store must hold these with a pool of connections)', () => {
      /** Outcomes of racing calls: how many resolved, and the codes of those that rejected. */
      async function race(calls: (() => Promise<unknown>)[]): Promise<{ ok: number; codes: string[] }> {
        // Open as many connections as racers first (a pool hands them out lazily), so the racers overlap.
        await Promise.all(calls.map(() => store.transaction(async (tx) => {
          await tx.ping();
          await tx.ping();
        })));
        const settled = await Promise.allSettled(calls.map((f) => f()));
        const codes = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason instanceof KilnError ? r.reason.code : String(r.reason)));
        return { ok: settled.length - codes.length, codes };
      }

      it('20 updates of one image with the same expected revision: exactly one wins, 19 are KILN_PRECONDITION_FAILED', async () => {
        await c.images.create({ name: 'os' });
        const r = await race(Array.from({ length: 20 }, (_, i) => () => c.images.update('os', { description: `writer ${i}` }, 1)));
        expect(r).toEqual({ ok: 1, codes: Array(19).fill('KILN_PRECONDITION_FAILED') });
        expect((await store.getImage('os'))?.revision).toBe(2);
      });

      it('20 machine edits with the same expected revision: exactly one wins and its MACs are the ones stored', async () => {
        const m = await c.machines.create({ macs: [mac(1)] });
        const r = await race(Array.from({ length: 20 }, (_, i) => () => c.machines.update(m.id, { hostname: `h${i}`, macs: [mac(1), mac(100 + i)] }, 1)));
        expect(r.ok).toBe(1);
        expect(r.codes).toEqual(Array(19).fill('KILN_PRECONDITION_FAILED'));
        const after = (await store.getMachine(m.id))!;
        expect(after.revision).toBe(2);
        expect(after.macs).toEqual([mac(1), mac(100 + Number(after.hostname!.slice(1)))]);
      });

      it('20 profile replacements with the same expected revision: exactly one wins', async () => {
        await imageWithVersions('os', ['1']);
        await c.profiles.create({ name: 'p', image: { image: 'os', version: '1' } });
        const r = await race(Array.from({ length: 20 }, (_, i) => () => c.profiles.replace('p', { image: { image: 'os', version: '1' }, kernelArgs: [`w=${i}`] }, 1)));
        expect(r).toEqual({ ok: 1, codes: Array(19).fill('KILN_PRECONDITION_FAILED') });
      });

      it('10 racing groups that would tie: exactly one is stored, the others are KILN_GROUP_AMBIGUOUS', async () => {
        await bootable(['p']);
        const r = await race(Array.from({ length: 10 }, (_, i) => () => c.groups.create({ name: `g${i}`, selectors: { arch: 'x86_64' }, profile: 'p' })));
        expect(r).toEqual({ ok: 1, codes: Array(9).fill('KILN_GROUP_AMBIGUOUS') });
        expect(await store.listGroups()).toHaveLength(1);
      });

      it('10 racing promotes of a new channel all land, one after another, in the history', async () => {
        await imageWithVersions('os', ['1', '2', '3']);
        const r = await race(Array.from({ length: 10 }, (_, i) => () => c.images.promote('os', 'new', String((i % 3) + 1), `actor${i}`, undefined)));
        expect(r).toEqual({ ok: 10, codes: [] });
        const history = await store.channelHistory('os', 'new');
        expect(history).toHaveLength(10);
        // Each entry starts where the previous one ended: no promote read a stale channel.
        for (let i = 1; i < history.length; i++) expect(history[i]!.fromVersion).toBe(history[i - 1]!.toVersion);
        expect((await store.getChannel('os', 'new'))?.version).toBe(history[9]!.toVersion);
        expect((await store.getChannel('os', 'new'))?.revision).toBe(10);
      });

      it('racing creates of one name: one wins, the others get the exists code', async () => {
        const r = await race(Array.from({ length: 10 }, () => () => c.images.create({ name: 'same' })));
        expect(r).toEqual({ ok: 1, codes: Array(9).fill('KILN_IMAGE_EXISTS') });
        const m = await race(Array.from({ length: 10 }, () => () => c.machines.create({ macs: [mac(7)] })));
        expect(m).toEqual({ ok: 1, codes: Array(9).fill('KILN_MACHINE_MAC_TAKEN') });
        expect(await store.listMachines({ limit: 100 })).toHaveLength(1);
      });
    });

    // ------------------------------------------------------------ machines

    describe('machines', () => {
      it('a machine has several MACs (any accepted form, canonical and in order) and is found by each', async () => {
        const m = await c.machines.create({ macs: ['52-54-00-00-00-01', '5254.0000.0002', '52:54:00:00:00:01', '525400000003'], uuid: UUID1.toUpperCase(), labels: { rack: 'r1' } });
        expect(m.macs).toEqual([mac(1), mac(2), mac(3)]);
        expect(m).toMatchObject({ uuid: UUID1, state: 'ready', nextBoot: null, profile: null, revision: 1 });
        expect(await store.getMachine(m.id)).toEqual(m);
        for (const x of m.macs) expect(await store.findMachineByMac(x)).toEqual(m);
        expect(await store.findMachineByMac(mac(9))).toBeNull();
        expect(await store.findMachineByUuid(UUID1)).toEqual(m);
        expect(await store.findMachineByUuid(UUID2)).toBeNull();
        expect((await c.machines.get('5254.0000.0003')).id).toBe(m.id);
        await rejectsWith(c.machines.get(mac(9)), 'KILN_MACHINE_NOT_FOUND');
      });

      it('a taken MAC is KILN_MACHINE_MAC_TAKEN and the failed create leaves no partial rows', async () => {
        const first = await c.machines.create({ macs: [mac(1)] });
        await rejectsWith(c.machines.create({ macs: [mac(2), mac(1)], uuid: UUID2 }), 'KILN_MACHINE_MAC_TAKEN');
        expect(await store.findMachineByMac(mac(2))).toBeNull();
        expect(await store.findMachineByUuid(UUID2)).toBeNull();
        expect((await store.listMachines({ limit: 100 })).map((m) => m.id)).toEqual([first.id]);
        // Both the MAC and the UUID of the failed create are still free.
        const second = await c.machines.create({ macs: [mac(2)], uuid: UUID2 });
        expect((await store.findMachineByMac(mac(2)))?.id).toBe(second.id);
        expect((await store.findMachineByMac(mac(1)))?.id).toBe(first.id);
      });

      it('a taken UUID is KILN_MACHINE_UUID_TAKEN and the MACs of the failed create stay free', async () => {
        await c.machines.create({ macs: [mac(1)], uuid: UUID1 });
        await rejectsWith(c.machines.create({ macs: [mac(2), mac(3)], uuid: UUID1 }), 'KILN_MACHINE_UUID_TAKEN');
        expect(await store.findMachineByMac(mac(2))).toBeNull();
        expect(await store.findMachineByMac(mac(3))).toBeNull();
        expect(await store.listMachines({ limit: 100 })).toHaveLength(1);
        await c.machines.create({ macs: [mac(2), mac(3)] });
      });

      it('moving a MAC onto another machine that has it is refused; the update is undone', async () => {
        const a = await c.machines.create({ macs: [mac(1)] });
        const b = await c.machines.create({ macs: [mac(2)] });
        await rejectsWith(c.machines.update(b.id, { macs: [mac(3), mac(1)] }, undefined), 'KILN_MACHINE_MAC_TAKEN');
        expect(await store.getMachine(b.id)).toEqual(b);
        expect(await store.findMachineByMac(mac(3))).toBeNull();
        expect((await store.findMachineByMac(mac(1)))?.id).toBe(a.id);
      });

      it('delete removes the machine, its MACs and its events', async () => {
        const m = await c.machines.create({ macs: [mac(1), mac(2)] });
        await store.recordBootEvents([{ machineId: m.id, at: c.clock.now().toISOString(), kind: 'heartbeat', detail: {}, state: null }]);
        await rejectsWith(c.machines.delete(m.id, 5), 'KILN_PRECONDITION_FAILED');
        await c.machines.delete(mac(2), undefined);
        expect(await store.getMachine(m.id)).toBeNull();
        expect(await store.findMachineByMac(mac(1))).toBeNull();
        expect(await store.listBootEvents(m.id, { limit: 10 })).toEqual([]);
        await c.machines.create({ macs: [mac(1)] });
      });

      it('listMachines filters by MAC and by state', async () => {
        const a = await c.machines.create({ macs: [mac(1), mac(2)] });
        const b = await c.machines.create({ macs: [mac(3)] });
        const d = await c.machines.create({ macs: [mac(4)] });
        const at = c.clock.now().toISOString();
        await store.recordBootEvents([
          { machineId: a.id, at, kind: 'script', detail: {}, state: 'booting' },
          { machineId: b.id, at, kind: 'callback', detail: {}, state: 'failed' },
          { machineId: d.id, at, kind: 'script', detail: {}, state: 'booting' },
        ]);
        expect((await store.listMachines({ mac: mac(2), limit: 10 })).map((m) => m.id)).toEqual([a.id]);
        expect((await store.listMachines({ mac: mac(2), limit: 10 }))[0]?.macs).toEqual([mac(1), mac(2)]);
        expect(await store.listMachines({ mac: mac(9), limit: 10 })).toEqual([]);
        expect((await store.listMachines({ state: 'booting', limit: 10 })).map((m) => m.id)).toEqual([a.id, d.id].sort());
        expect((await store.listMachines({ state: 'failed', limit: 10 })).map((m) => m.id)).toEqual([b.id]);
        expect(await store.listMachines({ state: 'booted', limit: 10 })).toEqual([]);
        expect((await store.listMachines({ state: 'booting', mac: mac(4), limit: 10 })).map((m) => m.id)).toEqual([d.id]);
      });

      it('listMachines label filter matches exactly one key/value pair (LIKE wildcards are escaped, case matters)', async () => {
        let n = 0;
        const make = async (labels: Record<string, string>) => (await c.machines.create({ macs: [mac(++n)], labels })).id;
        const r_1 = await make({ alpha: 'x', rack: 'r_1', zone: 'z' });
        const rx1 = await make({ rack: 'rx1' });
        const rdot1 = await make({ rack: 'r.1' });
        const rUpper = await make({ rack: 'R_1' });
        const r_10 = await make({ rack: 'r_10' });
        const preRack = await make({ xrack: 'r_1' });
        const keyUnderscore = await make({ a_b: 'v' });
        const keyX = await make({ axb: 'v' });
        const keyDotted = await make({ 'kiln.io/rack': 'r1' });
        const keyDottedX = await make({ 'kilnxio/rack': 'r1' });
        const ids = async (key: string, value: string) => (await store.listMachines({ label: { key, value }, limit: 100 })).map((m) => m.id);

        expect(await ids('rack', 'r_1')).toEqual([r_1]);
        expect(await ids('rack', 'rx1')).toEqual([rx1]);
        expect(await ids('rack', 'r.1')).toEqual([rdot1]);
        expect(await ids('rack', 'R_1')).toEqual([rUpper]);
        expect(await ids('rack', 'r_10')).toEqual([r_10]);
        expect(await ids('xrack', 'r_1')).toEqual([preRack]);
        expect(await ids('rack', 'r')).toEqual([]);
        expect(await ids('rack', '')).toEqual([]);
        expect(await ids('a_b', 'v')).toEqual([keyUnderscore]);
        expect(await ids('axb', 'v')).toEqual([keyX]);
        expect(await ids('kiln.io/rack', 'r1')).toEqual([keyDotted]);
        expect(await ids('kilnxio/rack', 'r1')).toEqual([keyDottedX]);
        expect(await ids('zone', 'z')).toEqual([r_1]);
        expect(await ids('alpha', 'x')).toEqual([r_1]);
      });

      it('listMachines pages with after / limit in id order, also combined with a filter', async () => {
        const all: Machine[] = [];
        for (let i = 0; i < 7; i++) all.push(await c.machines.create({ macs: [mac(i + 1)], labels: i % 2 === 0 ? { even: 'yes' } : {} }));
        const sorted = all.map((m) => m.id).sort();
        const pages: string[][] = [];
        let after: string | undefined;
        for (let guard = 0; guard < 10; guard++) {
          const page = (await store.listMachines({ after, limit: 3 })).map((m) => m.id);
          if (page.length === 0) break;
          pages.push(page);
          after = page.at(-1);
        }
        expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
        expect(pages.flat()).toEqual(sorted);

        const evens = all.filter((_, i) => i % 2 === 0).map((m) => m.id).sort();
        const p1 = (await store.listMachines({ label: { key: 'even', value: 'yes' }, limit: 2 })).map((m) => m.id);
        const p2 = (await store.listMachines({ label: { key: 'even', value: 'yes' }, after: p1.at(-1), limit: 2 })).map((m) => m.id);
        const p3 = (await store.listMachines({ label: { key: 'even', value: 'yes' }, after: p2.at(-1), limit: 2 })).map((m) => m.id);
        expect([p1, p2, p3]).toEqual([evens.slice(0, 2), evens.slice(2, 4), []]);
        expect(await store.listMachines({ after: sorted.at(-1), limit: 10 })).toEqual([]);
      });

      it('an edit does not roll back state or last seen, which belong to the boot path', async () => {
        const m = await c.machines.create({ macs: [mac(1)] });
        const at = c.clock.now().toISOString();
        await store.recordBootEvents([{ machineId: m.id, at, kind: 'callback', detail: {}, state: 'booted' }]);
        const edited = await store.replaceMachine({ ...m, hostname: 'edited' }, 1);
        expect(edited).toMatchObject({ hostname: 'edited', state: 'booted', lastSeenAt: at, revision: 2 });
      });
    });

    // ------------------------------------------------------------ groups

    describe('groups', () => {
      it('GroupService refuses a group that ties with another (KILN_GROUP_AMBIGUOUS) and stores nothing', async () => {
        await bootable(['p']);
        await c.groups.create({ name: 'default', profile: 'p' });
        const e1 = await rejectsWith(c.groups.create({ name: 'default2', profile: 'p' }), 'KILN_GROUP_AMBIGUOUS');
        expect(e1.details).toEqual({ conflictsWith: 'default' });

        await c.groups.create({ name: 'rack1', selectors: { labels: { rack: 'r1' } }, profile: 'p' });
        await c.groups.create({ name: 'rack2', selectors: { labels: { rack: 'r2' } }, profile: 'p' }); // same key, other value
        await c.groups.create({ name: 'net-a', selectors: { labels: { rack: 'r3' }, subnet: '10.0.0.0/24' }, profile: 'p' });
        await c.groups.create({ name: 'net-b', selectors: { labels: { rack: 'r3' }, subnet: '10.0.1.0/24' }, profile: 'p' }); // disjoint CIDRs
        await rejectsWith(c.groups.create({ name: 'net-c', selectors: { labels: { rack: 'r3' }, subnet: '10.0.0.0/16' }, profile: 'p' }), 'KILN_GROUP_AMBIGUOUS');
        const e2 = await rejectsWith(c.groups.create({ name: 'x86', selectors: { arch: 'x86_64' }, profile: 'p' }), 'KILN_GROUP_AMBIGUOUS');
        expect(['rack1', 'rack2']).toContain(e2.details?.conflictsWith);
        await c.groups.create({ name: 'rack1-x86', selectors: { labels: { rack: 'r1' }, arch: 'x86_64' }, profile: 'p' }); // more specific

        expect((await store.listGroups()).map((g) => g.name)).toEqual(['default', 'net-a', 'net-b', 'rack1', 'rack1-x86', 'rack2']);
        await rejectsWith(c.groups.create({ name: 'rack1', selectors: { labels: { rack: 'r9' } }, profile: 'p' }), 'KILN_GROUP_EXISTS');
        await rejectsWith(c.groups.create({ name: 'nop', profile: 'missing' }), 'KILN_PROFILE_NOT_FOUND');
        await rejectsWith(c.groups.create({ name: 'bad', selectors: { subnet: '10.0.0.0/33' }, profile: 'p' }), 'KILN_GROUP_SELECTOR_INVALID');
      });

      it('replacing a group is checked against the others but not against itself', async () => {
        await bootable(['p']);
        await c.groups.create({ name: 'rack1', selectors: { labels: { rack: 'r1' } }, profile: 'p' });
        await c.groups.create({ name: 'rack2', selectors: { labels: { rack: 'r2' } }, profile: 'p' });
        const same = await c.groups.replace('rack1', { selectors: { labels: { rack: 'r1' } }, description: 'same selectors', profile: 'p' }, undefined);
        expect(same.revision).toBe(2);
        await rejectsWith(c.groups.replace('rack1', { selectors: { labels: { rack: 'r2' } }, profile: 'p' }, undefined), 'KILN_GROUP_AMBIGUOUS');
        expect(await store.getGroup('rack1')).toEqual(same);
        await rejectsWith(c.groups.replace('nope', { profile: 'p' }, undefined), 'KILN_GROUP_NOT_FOUND');
      });

      it('selection: next boot, then assignment, then the most specific group, then the default group', async () => {
        await bootable(['p-default', 'p-rack', 'p-rack-x86', 'p-assigned', 'p-next']);
        await c.groups.create({ name: 'default', profile: 'p-default' });
        await c.groups.create({ name: 'rack', selectors: { labels: { rack: 'r1' } }, profile: 'p-rack' });
        await c.groups.create({ name: 'rack-x86', selectors: { labels: { rack: 'r1' }, arch: 'x86_64' }, profile: 'p-rack-x86' });
        const plan = async (m: Machine) => {
          const o = await c.boot.explain((await store.getMachine(m.id))!);
          expect(o.plan, o.reason).not.toBeNull();
          return [o.plan!.source, o.plan!.profile.name];
        };
        const bare = await c.machines.create({ macs: [mac(1)] });
        const racked = await c.machines.create({ macs: [mac(2)], labels: { rack: 'r1' } });
        const rackedX86 = await c.machines.create({ macs: [mac(3)], labels: { rack: 'r1' }, arch: 'x86_64' });
        expect(await plan(bare)).toEqual([{ kind: 'group', group: 'default' }, 'p-default']);
        expect(await plan(racked)).toEqual([{ kind: 'group', group: 'rack' }, 'p-rack']);
        expect(await plan(rackedX86)).toEqual([{ kind: 'group', group: 'rack-x86' }, 'p-rack-x86']);
        await c.machines.assign(rackedX86.id, 'p-assigned', undefined);
        expect(await plan(rackedX86)).toEqual([{ kind: 'assignment' }, 'p-assigned']);
        await c.machines.setNextBoot(rackedX86.id, 'p-next', undefined);
        expect(await plan(rackedX86)).toEqual([{ kind: 'next-boot' }, 'p-next']);

        await c.groups.delete('default', undefined);
        const o = await c.boot.explain((await store.getMachine(bare.id))!);
        expect(o.plan).toBeNull();
      });
    });

    // ------------------------------------------------------------ next boot

    describe('next boot', () => {
      it('consumeNextBoot: of 20 concurrent calls exactly one wins', async () => {
        await bootable(['p-next']);
        const m = await c.machines.create({ macs: [mac(1)] });
        const set = await c.machines.setNextBoot(m.id, 'p-next', 1);
        expect(set.nextBoot).toBe('p-next');
        expect(await store.consumeNextBoot(m.id, 'other-profile', 't')).toBe(false);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeNextBoot(m.id, 'p-next', 't')));
        expect(results.filter((r) => r)).toHaveLength(1);
        const after = await store.getMachine(m.id);
        expect(after?.nextBoot).toBeNull();
        expect(after!.revision).toBeGreaterThan(set.revision);
        expect(await store.consumeNextBoot(m.id, 'p-next', 't')).toBe(false);
        expect(await store.consumeNextBoot('no-such-machine', 'p-next', 't')).toBe(false);
      });

      it('consumeNextBoot: concurrent calls each in their own transaction still give one winner', async () => {
        await bootable(['p-next']);
        const m = await c.machines.create({ macs: [mac(1)] });
        await c.machines.setNextBoot(m.id, 'p-next', undefined);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.transaction((tx) => tx.consumeNextBoot(m.id, 'p-next', 't'))));
        expect(results.filter((r) => r)).toHaveLength(1);
      });

      it('BootService.decide: of 10 concurrent boots exactly one takes the next boot, the others fall back', async () => {
        await bootable(['p-default', 'p-next']);
        await c.groups.create({ name: 'default', profile: 'p-default' });
        const m = await c.machines.create({ macs: [mac(1)] });
        await c.machines.setNextBoot(m.id, 'p-next', undefined);
        const decisions = await Promise.all(Array.from({ length: 10 }, () => c.boot.decide({ mac: mac(1), address: '10.0.0.5' })));
        const kinds = decisions.map((d) => d.outcome.plan?.source.kind);
        expect(kinds.filter((k) => k === 'next-boot')).toHaveLength(1);
        expect(kinds.filter((k) => k === 'group')).toHaveLength(9);
        for (const d of decisions) expect(d.machine?.id).toBe(m.id);
        expect((await store.getMachine(m.id))?.nextBoot).toBeNull();

        await c.recorder.flush();
        const events = await store.listBootEvents(m.id, { limit: 100 });
        expect(events.filter((e) => e.kind === 'next-boot-consumed')).toHaveLength(1);
        expect(events.filter((e) => e.kind === 'script')).toHaveLength(10);
        expect((await store.getMachine(m.id))?.state).toBe('booting');

        const next = await c.boot.decide({ mac: mac(1) });
        expect(next.outcome.plan?.source).toEqual({ kind: 'group', group: 'default' });
      });

      it('BootService.decide enrolls an unknown machine once, even under concurrent first boots', async () => {
        await bootable(['p-default']);
        await c.groups.create({ name: 'default', profile: 'p-default' });
        const decisions = await Promise.all(Array.from({ length: 5 }, () => c.boot.decide({ mac: mac(7), uuid: UUID1, platform: 'efi', arch: 'x86_64' })));
        expect(new Set(decisions.map((d) => d.machine?.id)).size).toBe(1);
        const machines = await store.listMachines({ limit: 10 });
        expect(machines).toHaveLength(1);
        expect(machines[0]).toMatchObject({ macs: [mac(7)], uuid: UUID1, firmware: 'uefi', arch: 'x86_64' });
        for (const d of decisions) expect(d.outcome.plan?.profile.name).toBe('p-default');
      });
    });

    // ------------------------------------------------------------ boot events

    describe('boot events', () => {
      it('recordBootEvents moves state and last seen; listBootEvents returns them in order and pages with after', async () => {
        const m = await c.machines.create({ macs: [mac(1)] });
        const other = await c.machines.create({ macs: [mac(2)] });
        const t = () => c.clock.now().toISOString();
        const t1 = t();
        const t2 = t();
        await store.recordBootEvents([
          { machineId: m.id, at: t1, kind: 'script', detail: { n: 1 }, state: 'booting' },
          { machineId: other.id, at: t1, kind: 'heartbeat', detail: { n: 0 }, state: null },
          { machineId: m.id, at: t2, kind: 'artifact', detail: { n: 2, file: 'vmlinuz' }, state: null },
        ]);
        let cur = await store.getMachine(m.id);
        expect(cur).toMatchObject({ state: 'booting', lastSeenAt: t2 });
        // A machine whose event carries no state keeps its state; its last seen moves into the batch's time span
        // (adapters may use the batch's latest time for every machine in it).
        const o = await store.getMachine(other.id);
        expect(o?.state).toBe('ready');
        expect(o?.lastSeenAt !== null && o!.lastSeenAt >= t1 && o!.lastSeenAt <= t2).toBe(true);

        const t3 = t();
        await store.recordBootEvents([{ machineId: m.id, at: t3, kind: 'callback', detail: { n: 3 }, state: 'booted' }]);
        const t4 = t();
        await store.recordBootEvents([{ machineId: m.id, at: t4, kind: 'heartbeat', detail: { n: 4 }, state: null }]);
        cur = await store.getMachine(m.id);
        expect(cur).toMatchObject({ state: 'booted', lastSeenAt: t4 });

        const events = await store.listBootEvents(m.id, { limit: 100 });
        expect(events.map((e) => [e.kind, e.detail.n, e.at])).toEqual([
          ['script', 1, t1],
          ['artifact', 2, t2],
          ['callback', 3, t3],
          ['heartbeat', 4, t4],
        ]);
        expect(events[1]?.detail).toEqual({ n: 2, file: 'vmlinuz' });
        expect(events.every((e) => e.machineId === m.id)).toBe(true);
        const ids = events.map((e) => e.id);
        expect([...ids].sort((a, b) => a - b)).toEqual(ids);

        const page1 = await store.listBootEvents(m.id, { limit: 2 });
        const page2 = await store.listBootEvents(m.id, { after: page1.at(-1)!.id, limit: 2 });
        const page3 = await store.listBootEvents(m.id, { after: page2.at(-1)!.id, limit: 2 });
        expect([...page1, ...page2]).toEqual(events);
        expect(page3).toEqual([]);
        expect((await c.machines.events(mac(1), { after: events[0]!.id, limit: 100 })).map((e) => e.id)).toEqual(ids.slice(1));
        expect(await store.listBootEvents(other.id, { limit: 100 })).toHaveLength(1);
      });

      it('within one batch the last state-moving event wins and last seen is the latest time', async () => {
        const m = await c.machines.create({ macs: [mac(1)] });
        const t1 = c.clock.now().toISOString();
        const t2 = c.clock.now().toISOString();
        const t3 = c.clock.now().toISOString();
        await store.recordBootEvents([
          { machineId: m.id, at: t3, kind: 'script', detail: {}, state: 'booting' },
          { machineId: m.id, at: t1, kind: 'callback', detail: {}, state: 'failed' },
          { machineId: m.id, at: t2, kind: 'artifact', detail: {}, state: null },
        ]);
        expect(await store.getMachine(m.id)).toMatchObject({ state: 'failed', lastSeenAt: t3 });
        await store.recordBootEvents([]);
        expect(await store.listBootEvents(m.id, { limit: 10 })).toHaveLength(3);
      });

      it('with a last-seen resolution, only state changes and stale last seen rewrite the machine; last seen never moves back', async () => {
        const m = await c.machines.create({ macs: [mac(1)] });
        const other = await c.machines.create({ macs: [mac(2)] });
        const at = (s: number) => new Date(Date.UTC(2031, 0, 1, 0, 0, s)).toISOString();
        const opts = { lastSeenResolutionMs: 10_000 };
        const ev = (id: string, s: number, state: 'booting' | 'booted' | null) => ({ machineId: id, at: at(s), kind: 'heartbeat' as const, detail: {}, state });
        await store.recordBootEvents([ev(m.id, 0, 'booting'), ev(other.id, 0, null)], opts);
        expect(await store.getMachine(m.id)).toMatchObject({ state: 'booting', lastSeenAt: at(0) });
        // Within the resolution and the same state: the event is kept, the machine row is not rewritten.
        await store.recordBootEvents([ev(m.id, 5, 'booting'), ev(other.id, 5, null)], opts);
        expect(await store.getMachine(m.id)).toMatchObject({ state: 'booting', lastSeenAt: at(0) });
        expect((await store.getMachine(other.id))?.lastSeenAt).toBe(at(0));
        // A state change is written at once, with its time.
        await store.recordBootEvents([ev(m.id, 6, 'booted')], opts);
        expect(await store.getMachine(m.id)).toMatchObject({ state: 'booted', lastSeenAt: at(6) });
        // Past the resolution, last seen moves.
        await store.recordBootEvents([ev(other.id, 11, null)], opts);
        expect((await store.getMachine(other.id))?.lastSeenAt).toBe(at(11));
        // An older batch (another process's clock) never moves last seen backward, even with a state change.
        await store.recordBootEvents([ev(m.id, 2, 'booting'), ev(other.id, 1, null)]);
        expect(await store.getMachine(m.id)).toMatchObject({ state: 'booting', lastSeenAt: at(6) });
        expect((await store.getMachine(other.id))?.lastSeenAt).toBe(at(11));
        expect(await store.listBootEvents(m.id, { limit: 10 })).toHaveLength(4);
        expect(await store.listBootEvents(other.id, { limit: 10 })).toHaveLength(4);
      });

      it('BootService callback and heartbeat are durable when they return', async () => {
        await c.machines.create({ macs: [mac(1)] });
        await c.boot.callback(mac(1), 'booted', { from: 'os' });
        const m = await store.findMachineByMac(mac(1));
        expect(m?.state).toBe('booted');
        expect((await store.listBootEvents(m!.id, { limit: 10 })).map((e) => e.kind)).toEqual(['callback']);
        await rejectsWith(c.boot.heartbeat(mac(9), {}), 'KILN_MACHINE_NOT_FOUND');
      });
    });

    // ------------------------------------------------------------ change notifications

    describe('onChange', () => {
      it('a write outside a transaction notifies at once; unsubscribe stops notifications', async () => {
        const seen: Change[] = [];
        const off = store.onChange((ch) => seen.push(ch));
        await c.images.create({ name: 'os' });
        expect(seen).toEqual([{ entity: 'image', key: 'os' }]);
        off();
        await c.images.create({ name: 'os2' });
        expect(seen).toHaveLength(1);
      });

      it('fires only after the transaction commits', async () => {
        const seen: Change[] = [];
        store.onChange((ch) => seen.push(ch));
        let seenInside = -1;
        await store.transaction(async (tx) => {
          await tx.createImage({ name: 'os', description: '', labels: {}, createdAt: 't', updatedAt: 't', deletedAt: null, revision: 1, owner: null });
          await tx.updateImage('os', { description: 'x' }, 't2', 1);
          seenInside = seen.length;
        });
        expect(seenInside).toBe(0);
        expect(seen).toEqual([{ entity: 'image', key: 'os' }, { entity: 'image', key: 'os' }]);
      });

      it('a transaction that throws publishes nothing and writes nothing', async () => {
        const seen: Change[] = [];
        store.onChange((ch) => seen.push(ch));
        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.createImage({ name: 'os', description: '', labels: {}, createdAt: 't', updatedAt: 't', deletedAt: null, revision: 1, owner: null });
            await tx.createToken({ id: randomUUID(), name: 't', role: 'admin', hash: sha('t'), createdAt: 't', lastUsedAt: null, revokedAt: null, user: null, machineId: null });
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(seen).toEqual([]);
        expect(await store.getImage('os')).toBeNull();
        expect(await store.countTokens()).toBe(0);
      });

      it('a service operation refused inside its transaction publishes nothing', async () => {
        await bootable(['p']);
        await c.groups.create({ name: 'default', profile: 'p' });
        const m = await c.machines.create({ macs: [mac(1)] });
        const seen: Change[] = [];
        store.onChange((ch) => seen.push(ch));
        await rejectsWith(c.groups.create({ name: 'default2', profile: 'p' }), 'KILN_GROUP_AMBIGUOUS');
        await rejectsWith(c.machines.create({ macs: [mac(2), mac(1)] }), 'KILN_MACHINE_MAC_TAKEN');
        expect(seen).toEqual([]);
        await c.machines.setNextBoot(m.id, 'p', undefined);
        expect(seen).toEqual([{ entity: 'machine', key: m.id }]);
      });

      it('keeps the boot cache exact: a promote is seen by the next boot', async () => {
        await imageWithVersions('os', ['1', '2']);
        await c.images.promote('os', 'stable', '1', 'a', undefined);
        await c.profiles.create({ name: 'p', image: { image: 'os', channel: 'stable' } });
        await c.groups.create({ name: 'default', profile: 'p' });
        await c.machines.create({ macs: [mac(1)] });
        expect((await c.boot.decide({ mac: mac(1) })).outcome.plan?.version.version).toBe('1');
        await c.images.promote('os', 'stable', '2', 'a', undefined);
        expect((await c.boot.decide({ mac: mac(1) })).outcome.plan?.version.version).toBe('2');
      });

      it('a warmed boot cache answers every MAC from memory and stays exact', async () => {
        const made = [await c.machines.create({ macs: [mac(1), mac(2)] })];
        for (let i = 3; i <= 6; i++) made.push(await c.machines.create({ macs: [mac(i)] }));
        // The real store, with its MAC lookups counted.
        let lookups = 0;
        const counted = new Proxy(store, {
          get(target, prop) {
            if (prop === 'findMachineByMac') return (m: string) => (lookups++, target.findMachineByMac(m));
            const v: unknown = Reflect.get(target, prop, target);
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
          },
        });
        const cache = new BootCache(counted);
        try {
          expect(cache.warmed).toBeNull();
          const warming = cache.warm(2);
          // Not warm until the last page is in (/healthz reports this).
          expect(cache.warmed).toBeNull();
          expect(await warming).toBe(5);
          expect(cache.warmed).toBe(5);
          for (let i = 1; i <= 6; i++) expect((await cache.findMachineByMac(mac(i)))?.id).toBe(made[i === 1 ? 0 : i - 2]!.id);
          expect(lookups).toBe(0);
          await c.machines.update(mac(2), { hostname: 'changed' }, undefined);
          expect((await cache.findMachineByMac(mac(1)))?.hostname).toBe('changed');
          expect(lookups).toBe(1);
          expect(await cache.findMachineByMac(mac(9))).toBeNull();
          expect(lookups).toBe(2);
        } finally {
          cache.close();
        }
        // A closed cache stops warming.
        expect(await cache.warm(2)).toBe(0);
      });

      it('a boot cache closed before its warm-up finished never reports itself warm', async () => {
        for (let i = 1; i <= 6; i++) await c.machines.create({ macs: [mac(i)] });
        const cache = new BootCache(store);
        const warming = cache.warm(2);
        cache.close();
        expect(await warming).toBeLessThan(6);
        expect(cache.warmed).toBeNull();
      });
    });

    // ------------------------------------------------------------ tokens

    describe('tokens', () => {
      it('create, find by hash, list, revoke, count', async () => {
        expect(await store.countTokens()).toBe(0);
        const admin = await c.tokens.create('admin', 'admin');
        const viewer = await c.tokens.create('ci', 'viewer');
        expect(admin.secret).toMatch(/^kiln_/);
        expect(admin.token).not.toHaveProperty('hash');

        const found = await store.findTokenByHash(hashToken(admin.secret));
        expect(found).toEqual({ ...admin.token, hash: hashToken(admin.secret) });
        expect(await store.findTokenByHash(hashToken('kiln_wrong'))).toBeNull();
        expect((await store.listTokens()).map((t) => t.id).sort()).toEqual([admin.token.id, viewer.token.id].sort());
        expect((await store.listTokens()).every((t) => !('hash' in t))).toBe(true);

        expect(await store.countTokens()).toBe(2);
        expect(await store.countTokens('admin')).toBe(1);
        expect(await store.countTokens('operator')).toBe(0);
        expect(await c.tokens.authenticate(viewer.secret)).toEqual(viewer.token);

        const revoked = await c.tokens.revoke(viewer.token.id);
        expect(revoked.revokedAt).not.toBeNull();
        expect((await store.findTokenByHash(hashToken(viewer.secret)))?.revokedAt).toBe(revoked.revokedAt);
        expect(await store.countTokens()).toBe(1);
        expect(await store.countTokens('viewer')).toBe(0);
        expect(await c.tokens.authenticate(viewer.secret)).toBeNull();
        expect(await c.tokens.authenticate(admin.secret)).toEqual(admin.token);

        // Revoking twice keeps the first revocation time.
        expect((await store.revokeToken(viewer.token.id, c.clock.now().toISOString())).revokedAt).toBe(revoked.revokedAt);
        await rejectsWith(store.revokeToken('no-such-token', c.clock.now().toISOString()), 'KILN_TOKEN_NOT_FOUND');

        // Use is recorded (throttled by the service) and publishes no change.
        const seen: Change[] = [];
        store.onChange((ch) => seen.push(ch));
        await store.touchToken(admin.token.id, '2030-01-01T00:00:00.000Z');
        expect((await store.listTokens()).find((t) => t.id === admin.token.id)?.lastUsedAt).toBe('2030-01-01T00:00:00.000Z');
        expect(seen).toEqual([]);
        await rejectsWith(c.tokens.revoke('no-such-token'), 'KILN_TOKEN_NOT_FOUND');
      });

      it('bootstrapAdmin makes an admin only when none is live', async () => {
        const secret = await c.tokens.bootstrapAdmin();
        expect(secret).not.toBeNull();
        expect(await c.tokens.bootstrapAdmin()).toBeNull();
        const admin = await c.tokens.authenticate(secret!);
        await c.tokens.revoke(admin!.id);
        expect(await c.tokens.bootstrapAdmin()).not.toBeNull();
        expect(await store.countTokens('admin')).toBe(1);
      });
    });

    compatStoreCases(() => store);
    publicKeyStoreCases(() => store);
    imsStoreCases(() => store);
    recipeStoreCases(() => store);
  });
}
