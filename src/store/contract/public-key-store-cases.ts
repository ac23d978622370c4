// Store contract cases for public keys (live-name uniqueness, soft delete, restore, purge, owners)
// and customize sessions (save, connection, done requests). Called inside describeStoreContract, so
// every adapter runs them.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../core/ports.js';
import type { CustomizeSession, PublicKey } from '../../core/types.js';
import { rejects, T } from './contract-helpers.js';

const T2 = '2030-01-01T00:00:05.000Z';

const key = (name: string, over: Partial<PublicKey> = {}): PublicKey => ({
  id: randomUUID(), name, owner: null, publicKey: `ssh-ed25519 AAAA${name} ${name}@example`, type: 'ssh-ed25519', comment: `${name}@example`,
  fingerprint: `SHA256:${name}`, createdAt: T, deletedAt: null, ...over,
});

const session = (jobId: string, over: Partial<CustomizeSession> = {}): CustomizeSession => ({
  jobId, image: 'debian', version: '1', publicKeyId: randomUUID(), publicKeyFingerprint: 'SHA256:abc', connection: null,
  doneRequestedAt: null, doneRequestedBy: null, createdAt: T, updatedAt: T, ...over,
});

export function publicKeyStoreCases(get: () => Store): void {
  describe('public keys', () => {
    it('create / get / find by name / list; a live name is unique', async () => {
      const store = get();
      const alice = await store.createPublicKey(key('alice'));
      expect(await store.getPublicKey(alice.id)).toEqual(alice);
      expect(await store.findPublicKeyByName('alice')).toEqual(alice);
      await rejects(store.createPublicKey(key('alice')), 'KILN_PUBLIC_KEY_EXISTS');
      await store.createPublicKey(key('bob'));
      expect((await store.listPublicKeys({ deleted: false })).map((k) => k.name)).toEqual(['alice', 'bob']);
      expect(await store.getPublicKey(randomUUID())).toBeNull();
      expect(await store.findPublicKeyByName('carol')).toBeNull();
    });

    it('soft delete frees the name; restore refuses a name taken meanwhile; purge removes for good', async () => {
      const store = get();
      const first = await store.createPublicKey(key('ops'));
      const deleted = await store.setPublicKeyDeleted(first.id, T2);
      expect(deleted.deletedAt).toBe(T2);
      expect(await store.findPublicKeyByName('ops')).toBeNull();
      expect((await store.listPublicKeys({ deleted: false })).map((k) => k.id)).not.toContain(first.id);
      expect((await store.listPublicKeys({ deleted: true })).map((k) => k.id)).toEqual([first.id]);
      const second = await store.createPublicKey(key('ops'));
      await rejects(store.setPublicKeyDeleted(first.id, null), 'KILN_PUBLIC_KEY_EXISTS');
      expect((await store.getPublicKey(first.id))?.deletedAt).toBe(T2);
      await store.purgePublicKey(second.id);
      expect((await store.setPublicKeyDeleted(first.id, null)).deletedAt).toBeNull();
      await rejects(store.purgePublicKey(second.id), 'KILN_PUBLIC_KEY_NOT_FOUND');
      await rejects(store.setPublicKeyDeleted(second.id, T2), 'KILN_PUBLIC_KEY_NOT_FOUND');
    });

    it('filters by owner; deleting the user deletes their keys', async () => {
      const store = get();
      await store.createUser({ name: 'dana', displayName: 'Dana', email: null, role: 'operator', externalId: null, createdAt: T, updatedAt: T, revision: 1 });
      const owned = await store.createPublicKey(key('dana-laptop', { owner: 'dana' }));
      await store.createPublicKey(key('shared'));
      expect((await store.listPublicKeys({ deleted: false, owner: 'dana' })).map((k) => k.name)).toEqual(['dana-laptop']);
      await store.deleteUser('dana', undefined);
      expect(await store.getPublicKey(owned.id)).toBeNull();
      expect((await store.listPublicKeys({ deleted: false })).map((k) => k.name)).toEqual(['shared']);
    });
  });

  describe('customize sessions', () => {
    it('save, publish and withdraw the connection, record the first done request', async () => {
      const store = get();
      const jobId = randomUUID();
      await rejects(store.setCustomizeConnection(jobId, null, T2), 'KILN_CUSTOMIZE_NOT_FOUND');
      await rejects(store.requestCustomizeDone(jobId, 'ops', T2), 'KILN_CUSTOMIZE_NOT_FOUND');
      expect(await store.getCustomizeSession(jobId)).toBeNull();
      const saved = session(jobId);
      expect(await store.saveCustomizeSession(saved)).toEqual(saved);
      expect(await store.getCustomizeSession(jobId)).toEqual(saved);
      const conn = { host: '127.0.0.1', port: 32201, user: 'root', hostKeyFingerprint: 'SHA256:host' };
      expect(await store.setCustomizeConnection(jobId, conn, T2)).toMatchObject({ connection: conn, updatedAt: T2 });
      const done = await store.requestCustomizeDone(jobId, 'alice', T2);
      expect(done).toMatchObject({ doneRequestedAt: T2, doneRequestedBy: 'alice' });
      expect(await store.requestCustomizeDone(jobId, 'bob', '2030-01-01T00:01:00.000Z')).toMatchObject({ doneRequestedAt: T2, doneRequestedBy: 'alice' });
      expect((await store.setCustomizeConnection(jobId, null, T2)).connection).toBeNull();
    });

    it('saving again (a new attempt of the job) replaces the session but keeps its creation time', async () => {
      const store = get();
      const jobId = randomUUID();
      await store.saveCustomizeSession(session(jobId, { doneRequestedAt: T, doneRequestedBy: 'x', connection: { host: 'h', port: 1, user: 'root', hostKeyFingerprint: 'f' } }));
      const again = await store.saveCustomizeSession(session(jobId, { createdAt: T2, updatedAt: T2 }));
      expect(again).toMatchObject({ connection: null, doneRequestedAt: null, doneRequestedBy: null, createdAt: T, updatedAt: T2 });
    });
  });
}
