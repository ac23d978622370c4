// The boot event writer thread against real SQLite files: what it writes, what it refuses, that it
// checkpoints, and that transactions on the store's own connection never lose a race against it.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewBootEvent, Store } from '../../core/ports.js';
import { SqliteEventWriter } from './event-writer-thread.js';
import { openSqliteStore } from './sqlite-store.js';

const T = '2030-01-01T00:00:00.000Z';
const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function freshPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-events-'));
  dirs.push(dir);
  return join(dir, 'kiln.db');
}

async function storeWithMachines(path: string, n: number, bootEvents: 'inline' | 'thread' = 'inline'): Promise<Store> {
  const store = await openSqliteStore({ path, bootEvents });
  closers.push(() => store.close());
  for (let i = 0; i < n; i++) {
    await store.createMachine({
      id: `m-${i}`, macs: [`52:54:00:00:00:${i.toString(16).padStart(2, '0')}`], uuid: null, serial: null, hostname: null, labels: {}, arch: null, firmware: null,
      state: 'ready', profile: null, nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null, createdAt: T, updatedAt: T, revision: 1,
    });
  }
  return store;
}

const script = (machineId: string, n: number): NewBootEvent => ({ machineId, at: `2030-01-01T00:00:${String(n % 60).padStart(2, '0')}.000Z`, kind: 'script', detail: { n }, state: 'booting' });

describe('SqliteEventWriter', () => {
  it('writes a batch in one transaction: the events, and the state and last seen they move', async () => {
    const path = await freshPath();
    const store = await storeWithMachines(path, 2);
    const writer = await SqliteEventWriter.open({ path });
    closers.push(() => writer.close());
    await writer.recordBootEvents([script('m-0', 1), { ...script('m-1', 2), kind: 'heartbeat', state: null }, { ...script('m-0', 3), kind: 'callback', state: 'booted' }]);
    expect((await store.listBootEvents('m-0', { limit: 10 })).map((e) => [e.kind, e.detail])).toEqual([['script', { n: 1 }], ['callback', { n: 3 }]]);
    expect(await store.getMachine('m-0')).toMatchObject({ state: 'booted', lastSeenAt: '2030-01-01T00:00:03.000Z' });
    expect(await store.getMachine('m-1')).toMatchObject({ state: 'ready', lastSeenAt: '2030-01-01T00:00:03.000Z' });
  });

  it('refuses a batch naming an unknown machine, keeps none of it, and writes the next one', async () => {
    const path = await freshPath();
    const store = await storeWithMachines(path, 1);
    const writer = await SqliteEventWriter.open({ path });
    closers.push(() => writer.close());
    await expect(writer.recordBootEvents([script('m-0', 1), script('no-such-machine', 2)])).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    expect(await store.listBootEvents('m-0', { limit: 10 })).toEqual([]);
    expect((await store.getMachine('m-0'))?.state).toBe('ready');
    await writer.recordBootEvents([script('m-0', 3)]);
    expect((await store.listBootEvents('m-0', { limit: 10 })).map((e) => e.detail)).toEqual([{ n: 3 }]);
  });

  it('writes every batch sent before close, then refuses more', async () => {
    const path = await freshPath();
    await storeWithMachines(path, 4);
    const writer = await SqliteEventWriter.open({ path });
    const sent = Array.from({ length: 20 }, (_, i) => writer.recordBootEvents([script(`m-${i % 4}`, i)]));
    await writer.close();
    await Promise.all(sent);
    await expect(writer.recordBootEvents([script('m-0', 99)])).rejects.toThrow('closed');
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('select count(*) as n from boot_events').get()).toEqual({ n: 20 });
    } finally {
      db.close();
    }
  });

  it('checkpoints the WAL into the database file while it runs', async () => {
    const path = await freshPath();
    await storeWithMachines(path, 3);
    const writer = await SqliteEventWriter.open({ path, checkpointIntervalMs: 20 });
    closers.push(() => writer.close());
    await writer.recordBootEvents([script('m-0', 1), script('m-1', 2), script('m-2', 3)]);
    // The database file alone, without its WAL, holds the events once a checkpoint ran (the store's
    // connection stays open, so nothing else checkpoints: its threshold is 20,000 pages).
    const copy = join(path, '..', 'copy.db');
    let n = 0;
    for (let tries = 0; tries < 100 && n < 3; tries++) {
      await new Promise((r) => setTimeout(r, 20));
      await copyFile(path, copy);
      const db = new Database(copy, { readonly: true });
      try {
        n = (db.prepare('select count(*) as n from boot_events').get() as { n: number }).n;
      } catch {
        // Copied while a checkpoint was writing pages: a torn copy; the next one comes after it.
      } finally {
        db.close();
      }
    }
    expect(n).toBe(3);
  });

  it('fails to open a database it cannot create, with the reason', async () => {
    const path = await freshPath();
    await expect(SqliteEventWriter.open({ path: join(path, 'missing-dir', 'kiln.db') })).rejects.toThrow(/boot event writer thread/);
  });
});

describe('SqliteStore with boot events on the writer thread', () => {
  it("a transaction that read before the thread's commit still writes (transactions begin immediate)", async () => {
    const path = await freshPath();
    const store = await storeWithMachines(path, 2, 'thread');
    const written: Promise<void>[] = [];
    await store.transaction(async (tx) => {
      const m = await tx.getMachine('m-0');
      // The thread's write waits for this transaction's lock instead of committing in between.
      written.push(store.recordBootEvents([script('m-1', 1)]));
      await new Promise((r) => setTimeout(r, 100));
      await tx.replaceMachine({ ...m!, hostname: 'renamed', revision: m!.revision + 1 }, m!.revision);
    });
    await Promise.all(written);
    expect((await store.getMachine('m-0'))?.hostname).toBe('renamed');
    expect((await store.listBootEvents('m-1', { limit: 10 })).map((e) => e.detail)).toEqual([{ n: 1 }]);
  });

  it('refuses :memory:, which the thread could not share', async () => {
    await expect(openSqliteStore({ path: ':memory:', bootEvents: 'thread' })).rejects.toThrow('need a database file');
  });

  it('closing the store writes the events it was given first', async () => {
    const path = await freshPath();
    const store = await openSqliteStore({ path, bootEvents: 'thread' });
    await store.createMachine({
      id: 'm-0', macs: ['52:54:00:00:00:00'], uuid: null, serial: null, hostname: null, labels: {}, arch: null, firmware: null,
      state: 'ready', profile: null, nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null, createdAt: T, updatedAt: T, revision: 1,
    });
    const sent = store.recordBootEvents([script('m-0', 1)]);
    await store.close();
    await sent;
    const reopened = await openSqliteStore({ path });
    try {
      expect((await reopened.listBootEvents('m-0', { limit: 10 })).map((e) => e.detail)).toEqual([{ n: 1 }]);
    } finally {
      await reopened.close();
    }
  });
});
