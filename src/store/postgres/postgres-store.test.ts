// PostgresStore: the shared store contract, plus what only a server database has: migrations raced
// by replicas, notifications between processes, connection loss and recovery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { KilnError } from '../../core/kiln-error.js';
import type { Change } from '../../core/ports.js';
import { startPgCluster, type PgCluster } from '../../../test/support/pg-cluster.js';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../../../test/support/pg.js';
import { describeStoreContract } from '../contract/store-contract.js';
import { migrateDown, migrateToLatest, migrationStatus } from '../migrations/migrate.js';
import { migrationProvider } from '../migrations/migrations.js';
import { decodeChanges, encodeChanges, openPostgresStore } from './postgres-store.js';

if (pgUrl === null) console.warn(`PostgreSQL store tests skipped: ${pgSkipReason}`);

/** Every migration Kiln ships, in order (the provider's own list, so a new migration needs no edit here). */
async function allMigrations(): Promise<string[]> {
  return Object.keys(await migrationProvider('postgres').getMigrations()).sort();
}

const image = (name: string) => ({ name, description: '', labels: {}, createdAt: 't', updatedAt: 't', deletedAt: null, revision: 1, owner: null });

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(pgUrl === null)('PostgresStore', () => {
  describeStoreContract('postgres', async () => openPostgresStore({ url: await freshPgDatabase() }));

  describe('migrations', () => {
    it('three replicas opening a fresh database at once migrate it exactly once', async () => {
      const url = await freshPgDatabase();
      const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore({ url })));
      try {
        const rows = await query<{ name: string }>(url, 'select name from kysely_migration order by name');
        expect(rows.map((r) => r.name)).toEqual(await allMigrations());
        await stores[0]!.createImage(image('os'));
        expect(await stores[2]!.getImage('os')).not.toBeNull();
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it('migrate: false refuses an unmigrated database with KILN_SCHEMA_OUTDATED; down and up again', async () => {
      const url = await freshPgDatabase();
      const err = await openPostgresStore({ url, migrate: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe('KILN_SCHEMA_OUTDATED');
      await (await openPostgresStore({ url })).close();
      const { Kysely, PostgresDialect } = await import('kysely');
      const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
      try {
        const all = await allMigrations();
        expect(all.slice(0, 2)).toEqual(['0001_initial', '0002_secrets']);
        expect((await migrationStatus(db, 'postgres')).map((m) => m.appliedAt !== null)).toEqual(all.map(() => true));
        expect(await migrateDown(db, 'postgres', all.length + 1)).toEqual([...all].reverse());
        expect(await query(url, "select 1 from information_schema.tables where table_name = 'machines'")).toEqual([]);
        expect(await migrateToLatest(db, 'postgres')).toEqual(all);
        expect(await migrateToLatest(db, 'postgres')).toEqual([]);
      } finally {
        await db.destroy();
      }
      const store = await openPostgresStore({ url, migrate: false });
      await store.close();
    });

    it('a database migrated by a newer Kiln is refused with KILN_SCHEMA_NEWER', async () => {
      const url = await freshPgDatabase();
      await (await openPostgresStore({ url })).close();
      await query(url, "insert into kysely_migration (name, timestamp) values ('9999_future', 'now')");
      const err = await openPostgresStore({ url }).catch((e: unknown) => e);
      expect((err as KilnError).code).toBe('KILN_SCHEMA_NEWER');
    });
  });

  describe('change notification between processes', () => {
    it('a write on one store reaches the other store\'s listeners; own writes are not echoed', async () => {
      const url = await freshPgDatabase();
      const a = await openPostgresStore({ url });
      const b = await openPostgresStore({ url });
      try {
        const seenA: Change[] = [];
        const seenB: Change[] = [];
        a.onChange((c) => seenA.push(c));
        b.onChange((c) => seenB.push(c));
        await a.createImage(image('os'));
        await a.transaction(async (tx) => {
          await tx.updateImage('os', { description: 'x' }, 't2', undefined);
          await tx.createProfile({ name: 'p', description: '', image: { image: 'os', channel: 'stable' }, kernelArgs: [], template: null, payload: null, createdAt: 't', updatedAt: 't', revision: 1 });
        });
        await until('b to hear both writes', () => seenB.length >= 3);
        expect(seenB).toEqual([{ entity: 'image', key: 'os' }, { entity: 'image', key: 'os' }, { entity: 'profile', key: 'p' }]);
        // a heard itself once per change, locally, not again through the database.
        await new Promise((r) => setTimeout(r, 200));
        expect(seenA).toEqual(seenB);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('a rolled-back transaction announces nothing', async () => {
      const url = await freshPgDatabase();
      const a = await openPostgresStore({ url });
      const b = await openPostgresStore({ url });
      try {
        const seenB: Change[] = [];
        b.onChange((c) => seenB.push(c));
        await a.transaction(async (tx) => {
          await tx.createImage(image('ghost'));
          throw new Error('abort');
        }).catch(() => undefined);
        await a.createImage(image('real'));
        await until('b to hear the real write', () => seenB.length >= 1);
        expect(seenB).toEqual([{ entity: 'image', key: 'real' }]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('payloads: a batch too large for NOTIFY becomes "everything changed"', () => {
      const few: Change[] = [{ entity: 'machine', key: 'm1' }];
      expect(decodeChanges('other', encodeChanges('me', few))).toEqual(few);
      expect(decodeChanges('me', encodeChanges('me', few))).toBeNull();
      const many: Change[] = Array.from({ length: 1000 }, (_, i) => ({ entity: 'machine', key: `machine-${i}` }));
      expect(encodeChanges('me', many).length).toBeLessThan(8000);
      expect(decodeChanges('other', encodeChanges('me', many))).toBe('all');
      expect(decodeChanges('other', 'not json')).toBe('all');
    });
  });

  describe('when the database goes away', () => {
    let cluster: PgCluster;

    beforeAll(async () => {
      cluster = await startPgCluster();
    });

    afterAll(async () => {
      await cluster.destroy();
    });

    it('queries fail with KILN_STORE_UNAVAILABLE while it is down and work again when it is back; caches are told to refill', async () => {
      const url = await cluster.createDatabase();
      const store = await openPostgresStore({ url, connectTimeoutMs: 1000 });
      try {
        const seen: Change[] = [];
        store.onChange((c) => seen.push(c));
        await store.createImage(image('before'));
        await cluster.stop('fast');
        for (const op of [() => store.getImage('before'), () => store.createImage(image('during')), () => store.ping()]) {
          const err = await op().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(KilnError);
          expect((err as KilnError).code).toBe('KILN_STORE_UNAVAILABLE');
        }
        await cluster.start();
        await until('the store to answer again', () => store.ping().then(() => true, () => false), 20_000);
        expect((await store.getImage('before'))?.name).toBe('before');
        expect(await store.getImage('during')).toBeNull();
        await store.createImage(image('after'));
        // The listener reconnected and, having possibly missed notifications, said "everything changed".
        await until('the listener to resume', () => seen.some((c) => c.entity === 'all'), 20_000);
      } finally {
        await store.close();
      }
    });

    it('opening a store on a database that is not there fails with KILN_STORE_UNAVAILABLE', async () => {
      const err = await openPostgresStore({ url: 'postgres://kiln@127.0.0.1:1/nothing', connectTimeoutMs: 1000 }).catch((e: unknown) => e);
      expect((err as KilnError).code).toBe('KILN_STORE_UNAVAILABLE');
    });
  });
});
