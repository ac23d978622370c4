// Store contract cases for Cray IMS records (store.ims): object keys (put, prefix listing, delete,
// all-or-none moves, in and out of transactions), recipes, images and jobs, and objects keeping
// their artifacts from a purge. Called inside describeStoreContract, so every adapter runs them.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ImsImage, ImsJob, ImsObject, ImsRecipe } from '../../core/ims/ims-records.js';
import type { Store } from '../../core/ports.js';
import { rejects, sha, T } from './contract-helpers.js';

const T2 = '2030-01-01T00:00:05.000Z';
const EARLIER = '2029-12-31T00:00:00.000Z';

const object = (bucket: string, key: string, over: Partial<ImsObject> = {}): ImsObject => ({
  // Over 2^32 bytes: sizes must survive a bigint column.
  bucket, key, sha256: sha(`${bucket}/${key}`), size: 5_000_000_000, md5: '0123456789abcdef0123456789abcdef', contentType: 'application/octet-stream',
  createdAt: T, ...over,
});

const link = (path: string) => ({ path, etag: 'e-' + path.length, type: 's3' });

const recipe = (name: string, over: Partial<ImsRecipe> = {}): ImsRecipe => ({
  id: randomUUID(), name, recipeType: 'kiwi-ng', linuxDistribution: 'sles15', templateDictionary: [{ key: 'CSM_RELEASE', value: '1.6' }, { key: 'a', value: '' }],
  requireDkms: true, arch: 'x86_64', link: null, createdAt: T, deletedAt: null, ...over,
});

const image = (name: string, over: Partial<ImsImage> = {}): ImsImage => ({
  id: randomUUID(), name, arch: 'aarch64', metadata: { 'z-key': '1', a: 'two words' }, link: null, createdAt: T, deletedAt: null, ...over,
});

const job = (over: Partial<ImsJob> = {}): ImsJob => ({
  id: randomUUID(), jobType: 'create', artifactId: randomUUID(), targetImageId: randomUUID(), resultantImageId: null,
  fields: { image_root_archive_name: 'x', enable_debug: false, build_env_size: 15, kernel_parameters: null, ssh_containers: [{ jail: true }] }, createdAt: T, ...over,
});

const keys = (objects: readonly ImsObject[]) => objects.map((o) => `${o.bucket}/${o.key}`);

export function imsStoreCases(get: () => Store): void {
  describe('IMS objects', () => {
    it('put / get / replace round-trip every field; a missing key is null', async () => {
      const { ims } = get();
      const o = object('boot-images', 'abc/rootfs');
      expect(await ims.putObject(o)).toEqual(o);
      expect(await ims.getObject('boot-images', 'abc/rootfs')).toEqual(o);
      const replaced = object('boot-images', 'abc/rootfs', { sha256: sha('other'), size: 7, md5: 'ffffffffffffffffffffffffffffffff', contentType: 'application/json', createdAt: T2 });
      expect(await ims.putObject(replaced)).toEqual(replaced);
      expect(await ims.getObject('boot-images', 'abc/rootfs')).toEqual(replaced);
      expect(await ims.getObject('boot-images', 'abc/kernel')).toBeNull();
      expect(await ims.getObject('ims', 'abc/rootfs')).toBeNull();
    });

    it('lists by literal prefix (% and _ are plain characters), by key, one bucket only', async () => {
      const { ims } = get();
      for (const key of ['axb/1', 'a%b/2', 'a_c/1', 'abc/1', 'a%b/1', 'a%bc/1']) await ims.putObject(object('boot-images', key));
      await ims.putObject(object('ims', 'a%b/3'));
      expect(keys(await ims.listObjects('boot-images', 'a%b/'))).toEqual(['boot-images/a%b/1', 'boot-images/a%b/2']);
      expect(keys(await ims.listObjects('boot-images', 'a_c'))).toEqual(['boot-images/a_c/1']);
      expect(keys(await ims.listObjects('boot-images', ''))).toEqual(['a%b/1', 'a%b/2', 'a%bc/1', 'a_c/1', 'abc/1', 'axb/1'].map((k) => `boot-images/${k}`));
      expect(keys(await ims.listObjects('ims', 'a'))).toEqual(['ims/a%b/3']);
      expect(await ims.listObjects('boot-images', 'a%b/1/')).toEqual([]);
      expect(await ims.listObjects('recipes', '')).toEqual([]);
    });

    it('delete says whether there was one', async () => {
      const { ims } = get();
      await ims.putObject(object('boot-images', 'k'));
      expect(await ims.deleteObject('boot-images', 'k')).toBe(true);
      expect(await ims.deleteObject('boot-images', 'k')).toBe(false);
      expect(await ims.getObject('boot-images', 'k')).toBeNull();
    });

    it('moves rename keys in their bucket and keep everything else', async () => {
      const { ims } = get();
      const a = await ims.putObject(object('boot-images', 'img/manifest.json', { contentType: 'application/json' }));
      const b = await ims.putObject(object('boot-images', 'img/rootfs'));
      const r = await ims.putObject(object('ims', 'recipes/r.tgz'));
      await ims.moveObjects([
        { bucket: 'boot-images', from: 'img/manifest.json', to: 'deleted/img/manifest.json' },
        { bucket: 'boot-images', from: 'img/rootfs', to: 'deleted/img/rootfs' },
        { bucket: 'ims', from: 'recipes/r.tgz', to: 'deleted/recipes/r.tgz' },
      ]);
      expect(await ims.listObjects('boot-images', 'img/')).toEqual([]);
      expect(await ims.listObjects('boot-images', 'deleted/')).toEqual([{ ...a, key: 'deleted/img/manifest.json' }, { ...b, key: 'deleted/img/rootfs' }]);
      expect(await ims.listObjects('ims', '')).toEqual([{ ...r, key: 'deleted/recipes/r.tgz' }]);
      await ims.moveObjects([]);
    });

    it('moves are all or none: a missing from or a taken to moves nothing', async () => {
      const { ims } = get();
      const a = await ims.putObject(object('boot-images', 'a'));
      const b = await ims.putObject(object('boot-images', 'b'));
      const taken = await ims.putObject(object('boot-images', 'taken'));
      await ims.putObject(object('ims', 'a2'));
      const before = await ims.listObjects('boot-images', '');
      await rejects(ims.moveObjects([{ bucket: 'boot-images', from: 'a', to: 'a2' }, { bucket: 'boot-images', from: 'missing', to: 'm2' }]), 'KILN_IMS_OBJECT_NOT_FOUND');
      expect(await ims.listObjects('boot-images', '')).toEqual(before);
      await rejects(ims.moveObjects([{ bucket: 'boot-images', from: 'a', to: 'a2' }, { bucket: 'boot-images', from: 'b', to: 'taken' }]), 'KILN_IMS_OBJECT_EXISTS');
      expect(await ims.listObjects('boot-images', '')).toEqual(before);
      // The same key of another bucket is not taken; a key freed earlier in the batch may be reused.
      await ims.moveObjects([{ bucket: 'boot-images', from: 'a', to: 'a2' }, { bucket: 'boot-images', from: 'taken', to: 'a' }]);
      expect(await ims.listObjects('boot-images', '')).toEqual([{ ...taken, key: 'a' }, { ...a, key: 'a2' }, b]);
    });

    it('moves take part in the caller\'s transaction: rolled back with it, committed with it', async () => {
      const store = get();
      const a = await store.ims.putObject(object('boot-images', 'a'));
      const boom = new Error('after the move');
      const err = await store
        .transaction(async (tx) => {
          await tx.ims.moveObjects([{ bucket: 'boot-images', from: 'a', to: 'deleted/a' }]);
          expect(await tx.ims.getObject('boot-images', 'deleted/a')).toEqual({ ...a, key: 'deleted/a' });
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      expect(await store.ims.listObjects('boot-images', '')).toEqual([a]);
      await store.transaction((tx) => tx.ims.moveObjects([{ bucket: 'boot-images', from: 'a', to: 'deleted/a' }]));
      expect(await store.ims.listObjects('boot-images', '')).toEqual([{ ...a, key: 'deleted/a' }]);
    });

    it('an object keeps its artifact from a purge while it names it', async () => {
      const store = get();
      const named = sha('ims-named');
      const loose = sha('ims-loose');
      for (const s of [named, loose]) await store.putArtifact({ sha256: s, size: 10, mediaType: 'application/octet-stream', createdAt: T });
      await store.ims.putObject(object('boot-images', 'img/rootfs', { sha256: named, size: 10 }));
      expect(await store.unreferencedArtifacts([named, loose])).toEqual([loose]);
      await store.ims.deleteObject('boot-images', 'img/rootfs');
      expect(await store.unreferencedArtifacts([named, loose])).toEqual([named, loose]);
    });
  });

  describe('IMS recipes', () => {
    it('create / get / list live or deleted, oldest first / replace / delete', async () => {
      const { ims } = get();
      const later = recipe('later', { requireDkms: false, link: link('s3://ims/recipes/later/recipe.tar.gz') });
      const first = recipe('first', { createdAt: EARLIER });
      const gone = recipe('gone', { deletedAt: T2 });
      for (const r of [later, first, gone]) expect(await ims.createRecipe(r)).toEqual(r);
      expect(await ims.getRecipe(later.id)).toEqual(later);
      expect(await ims.getRecipe(first.id)).toEqual(first);
      expect(await ims.getRecipe(randomUUID())).toBeNull();
      await rejects(ims.createRecipe({ ...first, name: 'again' }), 'KILN_IMS_CONFLICT');
      expect(await ims.listRecipes({ deleted: false })).toEqual([first, later]);
      expect(await ims.listRecipes({ deleted: true })).toEqual([gone]);

      // Every field but id and createdAt is replaced.
      const changed: ImsRecipe = {
        ...first, name: 'renamed', recipeType: 'packer', linuxDistribution: 'centos', templateDictionary: [], requireDkms: false, arch: 'aarch64',
        link: link('s3://ims/recipes/first/recipe.tar.gz'), deletedAt: T2, createdAt: T2,
      };
      expect(await ims.replaceRecipe(changed)).toEqual({ ...changed, createdAt: EARLIER });
      expect(await ims.getRecipe(first.id)).toEqual({ ...changed, createdAt: EARLIER });
      expect((await ims.listRecipes({ deleted: true })).map((r) => r.name)).toEqual(['renamed', 'gone']);
      await rejects(ims.replaceRecipe(recipe('nobody')), 'KILN_IMS_RECORD_NOT_FOUND');

      expect(await ims.deleteRecipe(gone.id)).toBe(true);
      expect(await ims.deleteRecipe(gone.id)).toBe(false);
      expect(await ims.getRecipe(gone.id)).toBeNull();
    });

    it('find by link path, live or deleted; a record without a link is never found', async () => {
      const { ims } = get();
      const linked = await ims.createRecipe(recipe('linked', { link: link('s3://ims/recipes/a/recipe.tar.gz'), deletedAt: T2 }));
      await ims.createRecipe(recipe('bare'));
      expect(await ims.findRecipeByLinkPath('s3://ims/recipes/a/recipe.tar.gz')).toEqual(linked);
      expect(await ims.findRecipeByLinkPath('s3://ims/recipes/b/recipe.tar.gz')).toBeNull();
      expect(await ims.findRecipeByLinkPath('')).toBeNull();
      // Clearing the link clears its path too.
      await ims.replaceRecipe({ ...linked, link: null });
      expect(await ims.findRecipeByLinkPath('s3://ims/recipes/a/recipe.tar.gz')).toBeNull();
      expect((await ims.getRecipe(linked.id))?.link).toBeNull();
    });
  });

  describe('IMS images', () => {
    it('create / get / list live or deleted, oldest first / replace / delete', async () => {
      const { ims } = get();
      const later = image('later', { link: link('s3://boot-images/later/manifest.json') });
      const first = image('first', { createdAt: EARLIER, metadata: {} });
      const gone = image('gone', { deletedAt: T2 });
      for (const i of [later, first, gone]) expect(await ims.createImage(i)).toEqual(i);
      expect(await ims.getImage(later.id)).toEqual(later);
      expect(await ims.getImage(randomUUID())).toBeNull();
      expect(await ims.listImages({ deleted: false })).toEqual([first, later]);
      expect(await ims.listImages({ deleted: true })).toEqual([gone]);

      const changed: ImsImage = { ...later, name: 'renamed', arch: 'x86_64', metadata: { k: 'v' }, link: null, deletedAt: T2, createdAt: EARLIER };
      expect(await ims.replaceImage(changed)).toEqual({ ...changed, createdAt: T });
      expect(await ims.listImages({ deleted: false })).toEqual([first]);
      await rejects(ims.replaceImage(image('nobody')), 'KILN_IMS_RECORD_NOT_FOUND');

      expect(await ims.deleteImage(first.id)).toBe(true);
      expect(await ims.deleteImage(first.id)).toBe(false);
      expect(await ims.listImages({ deleted: false })).toEqual([]);
    });

    it('find by link path, live or deleted; a record without a link is never found', async () => {
      const { ims } = get();
      const live = await ims.createImage(image('live', { link: link('s3://boot-images/a/manifest.json') }));
      const gone = await ims.createImage(image('gone', { link: link('s3://boot-images/deleted/b/manifest.json'), deletedAt: T2 }));
      await ims.createImage(image('bare'));
      expect(await ims.findImageByLinkPath('s3://boot-images/a/manifest.json')).toEqual(live);
      expect(await ims.findImageByLinkPath('s3://boot-images/deleted/b/manifest.json')).toEqual(gone);
      expect(await ims.findImageByLinkPath('s3://boot-images/c/manifest.json')).toBeNull();
      // Recipes and images are looked up apart.
      expect(await ims.findRecipeByLinkPath('s3://boot-images/a/manifest.json')).toBeNull();
    });
  });

  describe('IMS jobs', () => {
    it('create / get / list oldest first / set the result once / delete', async () => {
      const { ims } = get();
      const later = job();
      const first = job({ jobType: 'customize', createdAt: EARLIER });
      for (const j of [later, first]) expect(await ims.createJob(j)).toEqual(j);
      expect(await ims.getJob(first.id)).toEqual(first);
      expect(await ims.getJob(randomUUID())).toBeNull();
      expect(await ims.listJobs()).toEqual([first, later]);
      expect(await ims.listUnfinishedJobs()).toEqual([first, later]);

      const result = randomUUID();
      expect(await ims.setJobResult(first.id, result)).toBe(true);
      expect(await ims.setJobResult(first.id, randomUUID())).toBe(false);
      expect(await ims.getJob(first.id)).toEqual({ ...first, resultantImageId: result });
      expect(await ims.listUnfinishedJobs()).toEqual([later]);
      expect((await ims.listJobs()).map((j) => j.id)).toEqual([first.id, later.id]);
      await rejects(ims.setJobResult(randomUUID(), result), 'KILN_IMS_RECORD_NOT_FOUND');

      expect(await ims.deleteJob(first.id)).toBe(true);
      expect(await ims.deleteJob(first.id)).toBe(false);
      expect(await ims.listJobs()).toEqual([later]);
    });
  });
}
