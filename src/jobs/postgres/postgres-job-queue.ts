// PostgresJobQueue: workers on many machines claim from one database with FOR UPDATE SKIP LOCKED.
// Its own small pool next to the Store's: claims, heartbeats and log appends are short statements.
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/ports.js';
import { assertMigrated, migrateToLatest } from '../../store/migrations/migrate.js';
import { connectPostgres, type PostgresOptions } from '../../store/postgres/postgres-store.js';
import type { JobsDatabase } from '../job-schema.js';
import { KyselyJobQueue } from '../kysely-job-queue.js';

export interface PostgresJobQueueOptions extends Pick<PostgresOptions, 'url' | 'statementTimeoutMs' | 'connectTimeoutMs' | 'log'> {
  clock: Clock;
  /** Connections in the queue's pool (default 4). */
  poolMax?: number;
  /** Apply pending migrations at open (tests); default: refuse a schema that is not up to date. */
  migrate?: boolean;
}

export async function openPostgresJobQueue(opts: PostgresJobQueueOptions): Promise<KyselyJobQueue> {
  const db = connectPostgres({ ...opts, poolMax: opts.poolMax ?? 4 });
  try {
    if (opts.migrate === true) await migrateToLatest(db as Kysely<unknown>, 'postgres');
    else await assertMigrated(db as Kysely<unknown>, 'postgres');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return new KyselyJobQueue(
    db as unknown as Kysely<JobsDatabase>,
    {
      name: 'postgres',
      skipLocked: true,
      // The pool already turns "cannot reach the database" into KILN_STORE_UNAVAILABLE.
      retry: (fn) => fn(),
      isUniqueViolation: (err) => (err as { code?: unknown }).code === '23505',
    },
    opts.clock,
    () => db.destroy(),
  );
}
