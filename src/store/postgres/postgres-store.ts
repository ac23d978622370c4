// PostgresStore: the scale-out store. The same Kysely query code as SQLite over a pg pool; this file
// holds only what differs: connection handling, error classes, row locks, and change notification
// between replicas (LISTEN/NOTIFY).
import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import pg from 'pg';
import { KilnError } from '../../core/kiln-error.js';
import type { BootEventWriteOptions, Change, NewBootEvent } from '../../core/ports.js';
import { bootEventEffects, KyselyStore } from '../kysely-store.js';
import { assertMigrated, migrateToLatest } from '../migrations/migrate.js';
import type { Database as Schema } from '../schema.js';

export interface PostgresOptions {
  url: string;
  poolMax?: number;
  /** Server-side limit per statement; a stuck query fails instead of holding a connection forever. */
  statementTimeoutMs?: number;
  /** How long to wait for a connection (new or from the pool) before answering unavailable. */
  connectTimeoutMs?: number;
  /** Apply pending migrations at open (default); false refuses to open an outdated schema. */
  migrate?: boolean;
  /** Listen for other replicas' changes (default on; tools that only migrate turn it off). */
  listen?: boolean;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const CHANNEL = 'kiln_changes';
/** NOTIFY payloads are limited to 8000 bytes; beyond this a batch is announced as "everything". */
const MAX_PAYLOAD = 7000;

/** Errors meaning "the database is not there right now" rather than "this query is wrong". */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300', '57014'].includes(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(code)) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Client was closed/i.test(msg);
}

function unavailable(err: unknown): KilnError {
  const code = (err as { code?: unknown }).code;
  const why = code === '57014' ? 'did not answer within the statement timeout' : 'cannot be reached';
  return new KilnError('KILN_STORE_UNAVAILABLE', `the database ${why}; retry shortly`, { cause: String((err as Error).message ?? err) });
}

/**
 * The pg pool as Kysely sees it, with connection failures turned into KILN_STORE_UNAVAILABLE at
 * this one place, and a client whose connection broke destroyed instead of returned to the pool.
 */
class GuardedPool implements PostgresPool {
  constructor(readonly pool: pg.Pool) {}

  async connect(): Promise<PostgresPoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw isConnectionError(err) ? unavailable(err) : err;
    }
    let broken = false;
    const query = async <R>(text: string, params: readonly unknown[]): Promise<PostgresQueryResult<R>> => {
      try {
        return (await client.query(text, params as unknown[])) as unknown as PostgresQueryResult<R>;
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        // A statement timeout leaves the connection usable; anything else may not.
        if ((err as { code?: unknown }).code !== '57014') broken = true;
        throw unavailable(err);
      }
    };
    return {
      query: query as PostgresPoolClient['query'],
      release: () => client.release(broken),
    };
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

/** The configured pool and its Kysely, without migrating (`kiln db` inspects before it acts). */
export function connectPostgres(opts: PostgresOptions): Kysely<Schema> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    application_name: 'kiln',
  });
  // An idle client whose server went away emits here; without a listener that would crash Kiln.
  pool.on('error', (err) => opts.log?.warn({ err: err.message }, 'idle database connection failed'));
  return new Kysely<Schema>({ dialect: new PostgresDialect({ pool: new GuardedPool(pool) }) });
}

export async function openPostgresStore(opts: PostgresOptions): Promise<KyselyStore> {
  const db = connectPostgres(opts);
  const replica = randomUUID();
  let listener: ChangeListener | null = null;
  try {
    if (opts.migrate === false) await assertMigrated(db as Kysely<unknown>, 'postgres');
    else await migrateToLatest(db as Kysely<unknown>, 'postgres');
    const store = KyselyStore.create(
      db,
      {
        name: 'postgres',
        isUniqueViolation: (err) => (err as { code?: unknown }).code === '23505',
        // Transaction-scoped advisory lock: writers of the same key queue up across every replica.
        lock: async (tx, key) => {
          await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(tx);
        },
        // Inside the writing transaction: other replicas hear of the change exactly when it commits.
        announce: async (tx, changes) => {
          await sql`select pg_notify(${CHANNEL}, ${encodeChanges(replica, changes)})`.execute(tx);
        },
        fast: { recordBootEvents: (events, o) => recordBootEventsAsArrays(db, events, o) },
      },
      async () => {
        await listener?.close();
        await db.destroy();
      },
    );
    if (opts.listen !== false) {
      listener = new ChangeListener(opts.url, replica, (changes) => store.publishExternal(changes), opts.log);
      await listener.start();
    }
    return store;
  } catch (err) {
    await listener?.close();
    await db.destroy();
    throw isConnectionError(err) ? unavailable(err) : err;
  }
}

export function encodeChanges(replica: string, changes: readonly Change[]): string {
  const full = JSON.stringify({ r: replica, c: changes.map((c) => [c.entity, c.key]) });
  return full.length <= MAX_PAYLOAD ? full : JSON.stringify({ r: replica, all: true });
}

/** Decodes a notification; null for our own, 'all' when the sender could not list them. */
export function decodeChanges(replica: string, payload: string): Change[] | 'all' | null {
  try {
    const p = JSON.parse(payload) as { r?: unknown; c?: unknown; all?: unknown };
    if (p.r === replica) return null;
    if (p.all === true || !Array.isArray(p.c)) return 'all';
    return (p.c as [Change['entity'], string][]).map(([entity, key]) => ({ entity, key }));
  } catch {
    return 'all';
  }
}

/**
 * One dedicated connection LISTENing for other replicas' changes. When it drops, notifications
 * may have been missed, so after reconnecting it reports "everything changed" and caches refill.
 */
class ChangeListener {
  private client: pg.Client | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  private delayMs = 250;

  constructor(
    private readonly url: string,
    private readonly replica: string,
    private readonly deliver: (changes: Change[] | 'all') => void,
    private readonly log: PostgresOptions['log'],
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'kiln-listen' });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n) => {
      if (n.channel !== CHANNEL || n.payload === undefined) return;
      const changes = decodeChanges(this.replica, n.payload);
      if (changes !== null) this.deliver(changes);
    });
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    this.client = client;
    this.delayMs = 250;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client || this.closed) return;
    this.client = null;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.log?.warn({ err: err.message }, 'change notifications interrupted; reconnecting');
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.retry !== null) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start().then(
        () => {
          this.log?.info({}, 'change notifications resumed');
          this.deliver('all');
        },
        () => {
          this.delayMs = Math.min(this.delayMs * 2, 5000);
          this.schedule();
        },
      );
    }, this.delayMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    const c = this.client;
    this.client = null;
    if (c !== null) {
      c.removeAllListeners('end');
      await c.end().catch(() => undefined);
    }
  }
}

/**
 * The boot event batch as arrays: two or three statements of fixed text however large the batch,
 * where the shared code sends a VALUES list of up to 2,000 parameters that PostgreSQL parses and
 * plans anew for every batch size. Same effects as the shared code (the store contract checks both).
 */
async function recordBootEventsAsArrays(db: Kysely<Schema>, events: readonly NewBootEvent[], opts: BootEventWriteOptions): Promise<void> {
  if (events.length === 0) return;
  const { at, staleBefore, byState } = bootEventEffects(events, opts);
  await db.transaction().execute(async (tx) => {
    await sql`insert into boot_events (machine_id, at, kind, detail)
      select * from unnest(${events.map((e) => e.machineId)}::text[], ${events.map((e) => e.at)}::text[], ${events.map((e) => e.kind)}::text[], ${events.map((e) => JSON.stringify(e.detail))}::text[])`.execute(tx);
    const lastSeen = sql`case when last_seen_at is not null and last_seen_at > ${at} then last_seen_at else ${at} end`;
    for (const [state, ids] of byState) {
      if (state === null) {
        await sql`update machines set last_seen_at = ${lastSeen}
          where id = any(${ids}::text[]) and (last_seen_at is null or last_seen_at < ${staleBefore})`.execute(tx);
      } else {
        await sql`update machines set last_seen_at = ${lastSeen}, state = ${state}
          where id = any(${ids}::text[]) and (last_seen_at is null or last_seen_at < ${staleBefore} or state <> ${state})`.execute(tx);
      }
    }
  });
}
