// Store contract cases for what the compat layers added: payloads, machine payload and taken next
// boot, MAC suffix lookup, channel delete, version artifact swap, users and sessions, image owners,
// image setups and the boot queue. Called inside describeStoreContract, so every adapter runs them.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../core/ports.js';
import type { ImageSetup, Machine, Payload, User } from '../../core/types.js';
import { rejects, sha, T } from './contract-helpers.js';


function machine(n: number, over: Partial<Machine> = {}): Machine {
  const hex = n.toString(16).padStart(6, '0');
  return {
    id: randomUUID(), macs: [`52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4)}`], uuid: null, serial: null, hostname: null, labels: {},
    arch: null, firmware: null, state: 'ready', profile: null, nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null,
    createdAt: T, updatedAt: T, revision: 1, ...over,
  };
}

const payload = (name: string, over: Partial<Payload> = {}): Payload => ({
  name, description: '', directory: name, schema: ['a', 'b'], parameters: { a: '1' }, createdAt: T, updatedAt: T, revision: 1, ...over,
});
const user = (name: string, over: Partial<User> = {}): User => ({
  name, displayName: name, email: `${name}@example.org`, role: 'viewer', externalId: null, createdAt: T, updatedAt: T, revision: 1, ...over,
});

async function imageWithVersion(store: Store, name: string, owner: string | null = null): Promise<void> {
  await store.createImage({ name, description: '', labels: {}, owner, createdAt: T, updatedAt: T, deletedAt: null, revision: 1 });
  await store.putArtifact({ sha256: sha(`${name}-k`), size: 1, mediaType: 'application/octet-stream', createdAt: T });
  await store.createVersion({ id: randomUUID(), image: name, version: '0', arch: 'x86_64', cmdline: '', metadata: {}, artifacts: [{ name: 'disk.img', role: 'other', sha256: sha(`${name}-k`), size: 1, mediaType: 'application/octet-stream' }], createdAt: T });
}

export function compatStoreCases(get: () => Store): void {
  describe('payloads', () => {
    it('create / get / list / replace with revision / delete; duplicates and stale writes refused', async () => {
      const store = get();
      await store.createPayload(payload('kube-worker'));
      await rejects(store.createPayload(payload('kube-worker')), 'KILN_PAYLOAD_EXISTS');
      expect(await store.getPayload('kube-worker')).toEqual(payload('kube-worker'));
      const next = await store.replacePayload(payload('kube-worker', { parameters: { a: '2', b: '3' }, revision: 2 }), 1);
      expect(next).toMatchObject({ parameters: { a: '2', b: '3' }, revision: 2 });
      await rejects(store.replacePayload(payload('kube-worker', { revision: 2 }), 1), 'KILN_PRECONDITION_FAILED');
      await rejects(store.replacePayload(payload('nope', { revision: 2 }), 1), 'KILN_PAYLOAD_NOT_FOUND');
      expect((await store.listPayloads()).map((p) => p.name)).toEqual(['kube-worker']);
      await store.deletePayload('kube-worker', 2);
      expect(await store.getPayload('kube-worker')).toBeNull();
      await rejects(store.deletePayload('kube-worker', undefined), 'KILN_PAYLOAD_NOT_FOUND');
    });

    it('a machine keeps its payload across edits; a payload in use by a machine or profile cannot be deleted', async () => {
      const store = get();
      await store.createPayload(payload('p1'));
      const m = await store.createMachine(machine(1, { payload: 'p1' }));
      expect((await store.getMachine(m.id))!.payload).toBe('p1');
      expect((await store.replaceMachine({ ...m, hostname: 'n1' }, 1)).payload).toBe('p1');
      await rejects(store.deletePayload('p1', undefined), 'KILN_PAYLOAD_IN_USE');
      await store.replaceMachine({ ...(await store.getMachine(m.id))!, payload: null }, undefined);
      await imageWithVersion(store, 'os');
      await store.createProfile({ name: 'pp', description: '', image: { image: 'os', version: '0' }, kernelArgs: [], template: null, payload: 'p1', createdAt: T, updatedAt: T, revision: 1 });
      expect((await store.getProfile('pp'))!.payload).toBe('p1');
      await rejects(store.deletePayload('p1', undefined), 'KILN_PAYLOAD_IN_USE');
    });
  });

  describe('machines: taken next boot and MAC suffixes', () => {
    it('consumeNextBoot records what was taken and when; an edit does not erase it', async () => {
      const store = get();
      await imageWithVersion(store, 'os');
      await store.createProfile({ name: 'rescue', description: '', image: { image: 'os', version: '0' }, kernelArgs: [], template: null, payload: null, createdAt: T, updatedAt: T, revision: 1 });
      const m = await store.createMachine(machine(2, { nextBoot: 'rescue' }));
      expect(await store.consumeNextBoot(m.id, 'rescue', '2030-01-02T00:00:00.000Z')).toBe(true);
      const after = (await store.getMachine(m.id))!;
      expect(after).toMatchObject({ nextBoot: null, nextBootTaken: { profile: 'rescue', at: '2030-01-02T00:00:00.000Z' } });
      const edited = await store.replaceMachine({ ...after, hostname: 'h', nextBootTaken: null }, undefined);
      expect(edited.nextBootTaken).toEqual({ profile: 'rescue', at: '2030-01-02T00:00:00.000Z' });
      expect((await store.findMachineByMac(m.macs[0]!))!.nextBootTaken?.profile).toBe('rescue');
    });

    it('findMachinesByMacSuffix matches the last octets only, and never treats the suffix as a pattern', async () => {
      const store = get();
      const a = await store.createMachine(machine(0xabcd01));
      await store.createMachine(machine(0xabcd02));
      expect((await store.findMachinesByMacSuffix('ab:cd:01', 10)).map((m) => m.id)).toEqual([a.id]);
      expect(await store.findMachinesByMacSuffix('%', 10)).toEqual([]);
      expect(await store.findMachinesByMacSuffix('_b:cd:01', 10)).toEqual([]);
      expect(await store.findMachinesByMacSuffix('ff:ff:ff', 10)).toEqual([]);
    });
  });

  describe('channels and versions', () => {
    it('deleteChannel removes the channel and its history; a missing one is KILN_CHANNEL_NOT_FOUND', async () => {
      const store = get();
      await imageWithVersion(store, 'os');
      await store.moveChannel({ image: 'os', name: 'develop', toVersion: '0', action: 'promote', actor: 't', at: T }, undefined);
      await store.deleteChannel('os', 'develop');
      expect(await store.getChannel('os', 'develop')).toBeNull();
      expect(await store.channelHistory('os', 'develop')).toEqual([]);
      await rejects(store.deleteChannel('os', 'develop'), 'KILN_CHANNEL_NOT_FOUND');
    });

    it('replaceVersionArtifacts swaps the artifacts in place and leaves the old blob unreferenced', async () => {
      const store = get();
      await imageWithVersion(store, 'disk');
      await store.putArtifact({ sha256: sha('new'), size: 5, mediaType: 'application/octet-stream', createdAt: T });
      const v = await store.replaceVersionArtifacts('disk', '0', [{ name: 'disk.img', role: 'other', sha256: sha('new'), size: 5, mediaType: 'application/octet-stream' }]);
      expect(v.artifacts.map((a) => [a.sha256, a.size])).toEqual([[sha('new'), 5]]);
      expect(await store.unreferencedArtifacts([sha('disk-k'), sha('new')])).toEqual([sha('disk-k')]);
      await rejects(store.replaceVersionArtifacts('disk', '9', []), 'KILN_VERSION_NOT_FOUND');
    });
  });

  describe('users, sessions, owners', () => {
    it('users: unique name, e-mail and external id; replace with revision; lookups', async () => {
      const store = get();
      await store.createUser(user('alice', { externalId: 'oidc:1' }));
      await rejects(store.createUser(user('alice', { email: 'other@example.org' })), 'KILN_USER_EXISTS');
      await rejects(store.createUser(user('bob', { email: 'alice@example.org' })), 'KILN_USER_EXISTS');
      await rejects(store.createUser(user('carol', { externalId: 'oidc:1' })), 'KILN_USER_EXISTS');
      await store.createUser(user('bob', { email: null }));
      await store.createUser(user('dave', { email: null }));
      expect((await store.findUserByExternalId('oidc:1'))!.name).toBe('alice');
      expect((await store.replaceUser(user('alice', { role: 'admin', externalId: 'oidc:1', revision: 2 }), 1)).role).toBe('admin');
      await rejects(store.replaceUser(user('alice', { revision: 2 }), 1), 'KILN_PRECONDITION_FAILED');
      await rejects(store.replaceUser(user('bob', { email: 'alice@example.org', revision: 2 }), 1), 'KILN_USER_EXISTS');
      expect((await store.listUsers()).map((u) => u.name)).toEqual(['alice', 'bob', 'dave']);
    });

    it('sessions expire; deleting a user takes their sessions, tokens and setups, but not while they own images', async () => {
      const store = get();
      await store.createUser(user('erin'));
      await store.createSession({ hash: sha('s1'), user: 'erin', createdAt: T, expiresAt: '2030-01-01T08:00:00.000Z' });
      await store.createSession({ hash: sha('s2'), user: 'erin', createdAt: T, expiresAt: '2030-01-01T01:00:00.000Z' });
      expect(await store.findSession(sha('s1'), '2030-01-01T07:00:00.000Z')).toMatchObject({ user: 'erin' });
      expect(await store.findSession(sha('s2'), '2030-01-01T07:00:00.000Z')).toBeNull();
      expect(await store.deleteExpiredSessions('2030-01-01T07:00:00.000Z')).toBe(1);
      await store.createToken({ id: randomUUID(), name: 'erin-cli', role: 'viewer', hash: sha('t1'), createdAt: T, lastUsedAt: null, revokedAt: null, user: 'erin', machineId: null });
      expect((await store.findTokenByHash(sha('t1')))!.user).toBe('erin');
      await imageWithVersion(store, 'erin-disk', 'erin');
      expect((await store.listImagesByOwner('erin')).map((i) => i.name)).toEqual(['erin-disk']);
      await rejects(store.deleteUser('erin', undefined), 'KILN_USER_IN_USE');
      await store.updateImage('erin-disk', { owner: null }, T, undefined);
      await store.createImageSetup({ id: randomUUID(), name: 's', owner: 'erin', images: [], createdAt: T, updatedAt: T, revision: 1 });
      await store.deleteUser('erin', undefined);
      expect(await store.getUser('erin')).toBeNull();
      expect(await store.findSession(sha('s1'), T)).toBeNull();
      expect(await store.findTokenByHash(sha('t1'))).toBeNull();
      expect(await store.listImageSetups({ owner: 'erin' })).toEqual([]);
      await store.deleteSession(sha('none'));
    });

    it('machine-scoped tokens go with their machine', async () => {
      const store = get();
      const m = await store.createMachine(machine(3));
      await store.createToken({ id: randomUUID(), name: 'mgmt', role: 'viewer', hash: sha('m1'), createdAt: T, lastUsedAt: null, revokedAt: null, user: null, machineId: m.id });
      expect((await store.findTokenByHash(sha('m1')))!.machineId).toBe(m.id);
      await store.deleteMachine(m.id, undefined);
      expect(await store.findTokenByHash(sha('m1'))).toBeNull();
    });
  });

  describe('image setups and the boot queue', () => {
    const setup = (id: string, over: Partial<ImageSetup> = {}): ImageSetup => ({ id, name: 'lab', owner: null, images: [{ image: 'disk', version: '0', update: true }], createdAt: T, updatedAt: T, revision: 1, ...over });

    it('setups: create, replace with revision, list by owner, delete (with their queue entries)', async () => {
      const store = get();
      await store.createUser(user('frank'));
      await store.createImageSetup(setup('s1', { owner: 'frank' }));
      await store.createImageSetup(setup('s2'));
      expect((await store.getImageSetup('s1'))!.images).toEqual([{ image: 'disk', version: '0', update: true }]);
      expect((await store.listImageSetups({ owner: 'frank' })).map((s) => s.id)).toEqual(['s1']);
      expect((await store.listImageSetups({})).map((s) => s.id).sort()).toEqual(['s1', 's2']);
      expect((await store.replaceImageSetup(setup('s1', { owner: 'frank', name: 'renamed', revision: 2 }), 1)).name).toBe('renamed');
      await rejects(store.replaceImageSetup(setup('s1', { revision: 2 }), 1), 'KILN_PRECONDITION_FAILED');
      const m = await store.createMachine(machine(4));
      await store.enqueueBoot({ machineId: m.id, setup: 's1', update: false, actor: 'frank', createdAt: T });
      await store.deleteImageSetup('s1', undefined);
      expect(await store.listBootQueue(m.id, { popped: false, limit: 10 })).toEqual([]);
      await rejects(store.deleteImageSetup('s1', undefined), 'KILN_SETUP_NOT_FOUND');
    });

    it('the queue is FIFO per machine; concurrent pops each get a different entry; popped entries stay listed', async () => {
      const store = get();
      await store.createImageSetup(setup('q'));
      const [m1, m2] = [await store.createMachine(machine(5)), await store.createMachine(machine(6))];
      for (let i = 0; i < 6; i++) await store.enqueueBoot({ machineId: m1.id, setup: 'q', update: i % 2 === 0, actor: `a${i}`, createdAt: T });
      await store.enqueueBoot({ machineId: m2.id, setup: 'q', update: false, actor: 'other', createdAt: T });
      const first = await store.popBoot(m1.id, '2030-01-03T00:00:00.000Z');
      expect(first).toMatchObject({ actor: 'a0', update: true, poppedAt: '2030-01-03T00:00:00.000Z' });
      const popped = await Promise.all(Array.from({ length: 8 }, () => store.popBoot(m1.id, T)));
      const got = popped.filter((p) => p !== null).map((p) => p.actor);
      expect(got.sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
      expect(await store.popBoot(m1.id, T)).toBeNull();
      expect((await store.listBootQueue(m1.id, { popped: true, limit: 2 })).map((e) => e.actor)).toHaveLength(2);
      expect((await store.listBootQueue(m2.id, { popped: false, limit: 10 })).map((e) => e.actor)).toEqual(['other']);
    });
  });
}
