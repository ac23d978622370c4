// Store contract cases for recipes (image builds): create, get, list, replace with revision, delete;
// names unique; a recipe's file must be a recorded artifact. Called inside describeStoreContract, so
// every adapter runs them.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../core/ports.js';
import type { Recipe } from '../../core/recipes/recipe.js';
import { rejects, sha, T } from './contract-helpers.js';


const recipe = (name: string, over: Partial<Recipe> = {}): Recipe => ({
  id: randomUUID(), name, kind: 'debootstrap', arch: 'x86_64', description: '', sha256: sha(`${name}-1`), size: 10, createdAt: T, updatedAt: T, revision: 1, ...over,
});

async function artifact(store: Store, seed: string, size = 10): Promise<string> {
  await store.putArtifact({ sha256: sha(seed), size, mediaType: 'application/yaml', createdAt: T });
  return sha(seed);
}

export function recipeStoreCases(get: () => Store): void {
  describe('recipes', () => {
    it('a recipe\'s file is not an unreferenced artifact (a purge keeps it)', async () => {
      const store = get();
      const file = await artifact(store, 'kept-1');
      const loose = await artifact(store, 'loose-1');
      await store.createRecipe(recipe('kept', { sha256: file }));
      expect(await store.unreferencedArtifacts([file, loose])).toEqual([loose]);
    });

    it('create / get / list / replace with revision / delete; duplicate names and stale writes refused', async () => {
      const store = get();
      await artifact(store, 'bookworm-1');
      await artifact(store, 'alpine-1');
      const r = recipe('bookworm', { description: 'Debian' });
      expect(await store.createRecipe(r)).toEqual(r);
      await store.createRecipe(recipe('alpine', { kind: 'oci-archive', arch: 'aarch64' }));
      await rejects(store.createRecipe(recipe('bookworm', { sha256: sha('alpine-1') })), 'KILN_RECIPE_EXISTS');
      expect(await store.getRecipe('bookworm')).toEqual(r);
      expect(await store.getRecipe('nope')).toBeNull();
      expect((await store.listRecipes()).map((x) => [x.name, x.kind, x.arch])).toEqual([['alpine', 'oci-archive', 'aarch64'], ['bookworm', 'debootstrap', 'x86_64']]);

      const content = await artifact(store, 'bookworm-2', 99);
      const next = await store.replaceRecipe({ ...r, sha256: content, size: 99, description: 'Debian 12', updatedAt: '2030-01-02T00:00:00.000Z', revision: 2 }, 1);
      expect(next).toEqual({ ...r, sha256: content, size: 99, description: 'Debian 12', updatedAt: '2030-01-02T00:00:00.000Z', revision: 2 });
      await rejects(store.replaceRecipe({ ...next, revision: 3 }, 1), 'KILN_PRECONDITION_FAILED');
      await rejects(store.replaceRecipe(recipe('nope', { revision: 2 }), 1), 'KILN_RECIPE_NOT_FOUND');
      // kind, arch and id stay what they were created with
      await store.replaceRecipe({ ...next, kind: 'kiwi-ng', arch: 'aarch64', id: randomUUID(), revision: 3 }, 2);
      expect(await store.getRecipe('bookworm')).toMatchObject({ id: r.id, kind: 'debootstrap', arch: 'x86_64', revision: 3 });

      await rejects(store.deleteRecipe('bookworm', 1), 'KILN_PRECONDITION_FAILED');
      await store.deleteRecipe('bookworm', 3);
      await rejects(store.deleteRecipe('bookworm', undefined), 'KILN_RECIPE_NOT_FOUND');
      await store.deleteRecipe('alpine', undefined);
      expect(await store.listRecipes()).toEqual([]);
      // The recipe files stay recorded artifacts.
      expect(await store.getArtifact(content)).not.toBeNull();
    });

    it('a recipe refers to a recorded artifact', async () => {
      const store = get();
      const err = await store.createRecipe(recipe('orphan', { sha256: sha('never uploaded') })).then(() => null, (e: unknown) => e);
      expect(err).not.toBeNull();
      expect(await store.getRecipe('orphan')).toBeNull();
    });
  });
}
