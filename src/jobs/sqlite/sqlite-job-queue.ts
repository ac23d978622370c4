// SqliteJobQueue: the embedded default, on its own connection to the Store's database file.
// better-sqlite3 waits for a busy database synchronously, blocking the whole process; the queue's
// connection waits not at all and retries asynchronously instead, so a worker's heartbeat can never
// stall the boot path behind another connection's open transaction.
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/ports.js';
import { KilnError } from '../../core/kiln-error.js';
import { assertMigrated, migrateToLatest } from '../../store/migrations/migrate.js';
import { connectSqlite } from '../../store/sqlite/sqlite-store.js';
import type { JobsDatabase } from '../job-schema.js';
import { KyselyJobQueue } from '../kysely-job-queue.js';

export interface SqliteJobQueueOptions {
  /** The Store's database file (the tables come from its migrations). */
  path: string;
  clock: Clock;
  /** Apply pending migrations at open (tests); default: refuse a schema that is not up to date. */
  migrate?: boolean;
  /** How long a statement keeps retrying a busy database before KILN_STORE_UNAVAILABLE. */
  busyTimeoutMs?: number;
}

const BUSY = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_LOCKED']);

export async function openSqliteJobQueue(opts: SqliteJobQueueOptions): Promise<KyselyJobQueue> {
  const { db, conn } = connectSqlite({ path: opts.path, cacheMiB: 8 });
  try {
    if (opts.migrate === true) await migrateToLatest(db as Kysely<unknown>, 'sqlite');
    else await assertMigrated(db as Kysely<unknown>, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  conn.pragma('busy_timeout = 0');
  const budgetMs = opts.busyTimeoutMs ?? 10_000;
  return new KyselyJobQueue(
    db as unknown as Kysely<JobsDatabase>,
    {
      name: 'sqlite',
      skipLocked: false,
      retry: async (fn) => {
        const end = Date.now() + budgetMs;
        for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
          try {
            return await fn();
          } catch (err) {
            if (!BUSY.has(String((err as { code?: unknown }).code))) throw err;
            if (Date.now() > end) throw new KilnError('KILN_STORE_UNAVAILABLE', `the job queue's database stayed busy for ${budgetMs} ms; retry shortly`);
            await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
          }
        }
      },
      isUniqueViolation: (err) => {
        const code = (err as { code?: unknown }).code;
        return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
      },
    },
    opts.clock,
    () => db.destroy(),
  );
}
