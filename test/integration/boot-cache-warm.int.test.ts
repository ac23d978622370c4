// The boot cache's warm-up on a real SQLite store: every machine of a fleet larger than one page is
// loaded, is then served from memory, and `warmed` (reported by /healthz) tells when that is done.
import { afterEach, describe, expect, it } from 'vitest';
import { BootCache } from '../../src/core/boot-cache.js';
import type { Store } from '../../src/core/ports.js';
import type { Machine } from '../../src/core/types.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

const macOf = (i: number) => `52:54:00:${[16, 8, 0].map((s) => ((i >> s) & 0xff).toString(16).padStart(2, '0')).join(':')}`;

function machine(i: number): Machine {
  const at = '2026-11-22T00:00:00.000Z';
  return {
    id: `m-${String(i).padStart(5, '0')}`, macs: [macOf(i)], uuid: null, serial: null, hostname: `node-${i}`, labels: { rack: `r${i % 7}` },
    arch: null, firmware: null, state: 'ready', profile: null, nextBoot: null, nextBootTaken: null, payload: null,
    lastSeenAt: null, createdAt: at, updatedAt: at, revision: 1,
  };
}

/** The real store, counting the lookups that reach it. */
async function countedStore(fleet: number): Promise<{ store: Store; lookups: () => number }> {
  const store = await openSqliteStore({ path: ':memory:' });
  stores.push(store);
  for (let i = 0; i < fleet; i++) await store.createMachine(machine(i));
  let lookups = 0;
  const counted = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'findMachineByMac') return (mac: string) => (lookups++, target.findMachineByMac(mac));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: counted, lookups: () => lookups };
}

describe('BootCache.warm', () => {
  it('loads a fleet of several pages; afterwards every machine is answered from memory', async () => {
    const fleet = 2_345;
    const { store, lookups } = await countedStore(fleet);
    const cache = new BootCache(store);
    expect(cache.warmed).toBeNull();
    const warming = cache.warm(1000);
    // Not warm until the last page is in.
    expect(cache.warmed).toBeNull();
    expect(await warming).toBe(fleet);
    expect(cache.warmed).toBe(fleet);
    for (const i of [0, 999, 1000, 1999, 2000, fleet - 1]) expect((await cache.findMachineByMac(macOf(i)))?.id, `machine ${i}`).toBe(machine(i).id);
    expect(lookups()).toBe(0);
    // A stranger still goes to the store, and is not found.
    expect(await cache.findMachineByMac('52:54:00:ff:ff:ff')).toBeNull();
    expect(lookups()).toBe(1);
    cache.close();
  });

  it('a machine changed after the warm-up is read again, not served stale', async () => {
    const { store, lookups } = await countedStore(3);
    const cache = new BootCache(store);
    await cache.warm();
    const m = (await store.getMachine(machine(1).id))!;
    await store.replaceMachine({ ...m, hostname: 'renamed' }, m.revision);
    expect((await cache.findMachineByMac(macOf(1)))?.hostname).toBe('renamed');
    expect(lookups()).toBe(1);
    cache.close();
  });

  it('stays not warmed when closed before it finished', async () => {
    const { store } = await countedStore(50);
    const cache = new BootCache(store);
    const warming = cache.warm(10);
    cache.close();
    expect(await warming).toBeLessThan(50);
    expect(cache.warmed).toBeNull();
  });
});
