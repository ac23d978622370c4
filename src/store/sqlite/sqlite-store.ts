// SqliteStore: the embedded default. One better-sqlite3 connection in WAL mode; Kysely serializes access.
// A server adds a second, on a thread, that writes boot events and checkpoints (event-writer-thread.ts).
import Database from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteDialectConfig } from 'kysely';
import type { BootEventWriteOptions, NewBootEvent } from '../../core/ports.js';
import type { Machine } from '../../core/types.js';
import { KyselyStore, toMachine } from '../kysely-store.js';
import { bootEventParams, INSERT_BOOT_EVENT, TOUCH_MACHINE, type InsertParams, type TouchParams } from './boot-event-sql.js';
import { SqliteEventWriter } from './event-writer-thread.js';
import { DEFAULT_CACHE_MIB, sqlitePragmas } from './sqlite-pragmas.js';
import { assertMigrated, migrateToLatest } from '../migrations/migrate.js';
import type { Database as Schema } from '../schema.js';

export interface SqliteOptions {
  /** File path, or ':memory:' for tests. */
  path: string;
  /** Native statements for the boot path's two hottest queries (default on; off runs the shared Kysely code). */
  fastPaths?: boolean;
  /** Page cache in MiB: the boot path's cache misses land here (measured +12-15% req/s with 128 MiB). */
  cacheMiB?: number;
  /** Apply pending migrations at open (default); false refuses to open an outdated schema. */
  migrate?: boolean;
  /**
   * 'thread': boot events are written, and the file checkpointed, by a thread with its own
   * connection, off the event loop (a server's one writer per file); 'inline' (default): on this
   * connection. Needs a file, not ':memory:'.
   */
  bootEvents?: 'inline' | 'thread';
  /** Where the writer thread reports a failed checkpoint (it retries on the next interval). */
  onCheckpointError?: (message: string) => void;
}

/**
 * Transactions begin IMMEDIATE, taking the write lock at once: a deferred one that read before another
 * connection (the event writer thread, the job queue, another worker) committed could not write any
 * more (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class KilnSqliteDialect extends SqliteDialect {
  constructor(private readonly kilnConfig: SqliteDialectConfig) {
    super(kilnConfig);
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.kilnConfig);
  }
}

/** The configured connection and its Kysely, without migrating (`kiln db` inspects before it acts). */
export function connectSqlite(opts: SqliteOptions): { db: Kysely<Schema>; conn: Database.Database } {
  const conn = new Database(opts.path);
  for (const p of sqlitePragmas({ cacheMiB: opts.cacheMiB })) conn.pragma(p);
  const db = new Kysely<Schema>({ dialect: new KilnSqliteDialect({ database: withStatementCache(conn) }) });
  return { db, conn };
}

export async function openSqliteStore(opts: SqliteOptions): Promise<KyselyStore> {
  const { db, conn } = connectSqlite(opts);
  try {
    if (opts.migrate === false) await assertMigrated(db as Kysely<unknown>, 'sqlite');
    else await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  let writer: SqliteEventWriter | null = null;
  if (opts.bootEvents === 'thread') {
    // The thread's own ':memory:' would be another, empty database.
    if (opts.path === ':memory:') {
      await db.destroy();
      throw new Error('boot events on a writer thread need a database file, not :memory:');
    }
    try {
      writer = await SqliteEventWriter.open({ path: opts.path, cacheMiB: opts.cacheMiB ?? DEFAULT_CACHE_MIB }, opts.onCheckpointError);
    } catch (err) {
      await db.destroy();
      throw err;
    }
  }
  const native = opts.fastPaths === false ? null : nativeBootQueries(db, conn);
  const fast = writer === null ? (native ?? undefined) : { ...native, recordBootEvents: writer.recordBootEvents.bind(writer) };
  return KyselyStore.create(
    db,
    {
      name: 'sqlite',
      fast,
      isUniqueViolation: (err) => {
        const code = (err as { code?: unknown }).code;
        return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
      },
    },
    // Events the thread still holds are written before the connection goes.
    async () => {
      await writer?.close();
      await db.destroy();
    },
  );
}

/**
 * Kysely prepares every query anew; better-sqlite3 statements are reusable, and preparing cost more
 * than running on the boot path (profiled). Kysely runs one statement at a time per connection,
 * so sharing a prepared statement is safe.
 */
function withStatementCache(conn: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => conn.close(),
    prepare: (sqlText: string) => {
      let stmt = cache.get(sqlText);
      if (stmt === undefined) {
        stmt = conn.prepare(sqlText);
        // IN-lists of varying length make distinct texts; bound the cache instead of tracking use.
        if (cache.size >= 2000) cache.clear();
        cache.set(sqlText, stmt);
      }
      return stmt;
    },
  };
}

/**
 * The boot path's lookup and event write as native better-sqlite3 statements. They run while holding
 * Kysely's connection (its mutex), so they never interleave with a Kysely transaction on the same
 * connection, and see exactly what the shared query code would.
 */
function nativeBootQueries(db: Kysely<Schema>, conn: Database.Database) {
  // The machine and all its MACs in one statement: a boot-time cache miss is one round through SQLite
  // (measured 27 µs against 31 µs for two statements, on 20,000 machines).
  const byMac = conn.prepare<[string], Schema['machines'] & { macs_json: string }>(
    'select m.*, (select json_group_array(mac) from (select mac from machine_macs where machine_id = m.id order by position)) as macs_json ' +
      'from machines m where m.id = (select machine_id from machine_macs where mac = ?)',
  );
  const insertEvent = conn.prepare<InsertParams>(INSERT_BOOT_EVENT);
  const touch = conn.prepare<TouchParams>(TOUCH_MACHINE);
  const record = conn.transaction((events: readonly NewBootEvent[], opts: BootEventWriteOptions) => {
    const { inserts, touches } = bootEventParams(events, opts);
    for (const p of inserts) insertEvent.run(...p);
    for (const p of touches) touch.run(...p);
  });
  const held = <T>(fn: () => T): Promise<T> => db.connection().execute(() => Promise.resolve(fn()));
  return {
    findMachineByMac: (mac: string): Promise<Machine | null> =>
      held(() => {
        const row = byMac.get(mac);
        if (row === undefined) return null;
        const { macs_json: macs, ...machine } = row;
        return toMachine(machine, JSON.parse(macs) as string[]);
      }),
    recordBootEvents: (events: readonly NewBootEvent[], opts: BootEventWriteOptions): Promise<void> => held(() => record(events, opts)),
  };
}
