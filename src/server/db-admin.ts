// `kiln db`: schema status and migrations, run against the configured database without serving.
import { join, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { isConnectionError } from '../store/postgres/postgres-store.js';
import { migrateDown, migrateToLatest, migrationStatus, type MigrationState } from '../store/migrations/migrate.js';
import type { DialectName } from '../store/migrations/migrations.js';
import { KilnError } from '../core/kiln-error.js';
import type { KilnConfig } from './config.js';
import { describeStorage } from './open-storage.js';

interface Connection {
  db: Kysely<unknown>;
  dialect: DialectName;
  location: string;
}

async function connect(config: KilnConfig): Promise<Connection> {
  const dataDir = resolve(config.dataDir);
  const location = describeStorage(config, dataDir).store;
  if (config.database.url !== null) {
    const { connectPostgres } = await import('../store/postgres/postgres-store.js');
    const db = connectPostgres({ url: config.database.url, poolMax: 2, connectTimeoutMs: config.database.connectTimeoutMs, statementTimeoutMs: 0 });
    return { db: db as Kysely<unknown>, dialect: 'postgres', location };
  }
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { connectSqlite } = await import('../store/sqlite/sqlite-store.js');
  return { db: connectSqlite({ path: join(dataDir, 'kiln.db') }).db as Kysely<unknown>, dialect: 'sqlite', location };
}

async function using<T>(config: KilnConfig, fn: (c: Connection) => Promise<T>): Promise<T> {
  const c = await connect(config);
  try {
    return await fn(c);
  } catch (err) {
    if (isConnectionError(err)) throw new KilnError('KILN_STORE_UNAVAILABLE', `cannot reach the database at ${c.location}: ${(err as Error).message}`);
    throw err;
  } finally {
    await c.db.destroy();
  }
}

export function dbStatus(config: KilnConfig): Promise<{ dialect: DialectName; location: string; migrations: MigrationState[] }> {
  return using(config, async (c) => ({ dialect: c.dialect, location: c.location, migrations: await migrationStatus(c.db, c.dialect) }));
}

export function dbMigrateUp(config: KilnConfig): Promise<{ location: string; applied: string[] }> {
  return using(config, async (c) => ({ location: c.location, applied: await migrateToLatest(c.db, c.dialect) }));
}

export function dbMigrateDown(config: KilnConfig, steps: number): Promise<{ location: string; reverted: string[] }> {
  return using(config, async (c) => ({ location: c.location, reverted: await migrateDown(c.db, c.dialect, steps) }));
}
