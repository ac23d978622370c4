// The JobQueue on Kysely: all query code, shared by SQLite and PostgreSQL. Every operation is one
// conditional statement (no transaction spans an await), so on SQLite the queue's connection never
// holds the write lock while other code runs, and on PostgreSQL a claim is one round trip.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Clock } from '../core/ports.js';
import { KilnError } from '../core/kiln-error.js';
import type { Job, JobError, JobFilter, JobLogChunk, JobStatus, NewJob } from './job.js';
import type { JobProgress, JobQueue } from './job-queue.js';
import type { JobsDatabase } from './job-schema.js';

export interface JobQueueDialect {
  readonly name: 'sqlite' | 'postgres';
  /**
   * Claims lock the picked row and skip rows other claimers hold (PostgreSQL `FOR UPDATE SKIP LOCKED`).
   * SQLite has a single writer: the claim's one UPDATE statement is atomic by itself.
   */
  readonly skipLocked: boolean;
  /** Runs one statement, retrying while the database is busy; maps "unreachable" to KILN_STORE_UNAVAILABLE. */
  retry<T>(fn: () => Promise<T>): Promise<T>;
  isUniqueViolation(err: unknown): boolean;
}

type Row = Selectable<JobsDatabase['jobs']>;

const json = (v: unknown): string => JSON.stringify(v ?? null);

function toJob(r: Row): Job {
  return {
    id: r.id,
    type: r.type,
    status: r.status as JobStatus,
    stage: r.stage,
    progress: r.progress === null ? null : Number(r.progress),
    input: JSON.parse(r.input) as unknown,
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    error: r.error === null ? null : (JSON.parse(r.error) as JobError),
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    timeoutSeconds: Number(r.timeout_seconds),
    priority: Number(r.priority),
    runAfter: r.run_after,
    workerId: r.worker_id,
    leaseExpiresAt: r.lease_expires_at,
    cancelRequestedAt: r.cancel_requested_at,
    createdBy: r.created_by,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    updatedAt: r.updated_at,
  };
}

function toChunk(r: Selectable<JobsDatabase['job_log_chunks']>): JobLogChunk {
  return { seq: Number(r.seq), start: Number(r.start_byte), size: Number(r.size), sha256: r.sha256, createdAt: r.created_at };
}

export class KyselyJobQueue implements JobQueue {
  constructor(
    private readonly db: Kysely<JobsDatabase>,
    private readonly hooks: JobQueueDialect,
    private readonly clock: Clock,
    private readonly closeDb: () => Promise<void>,
  ) {}

  get dialect(): string {
    return this.hooks.name;
  }

  private times(leaseSeconds = 0): { at: string; lease: string } {
    const t = this.clock.now().getTime();
    return { at: new Date(t).toISOString(), lease: new Date(t + Math.round(leaseSeconds * 1000)).toISOString() };
  }

  private run<T>(fn: (db: Kysely<JobsDatabase>) => Promise<T>): Promise<T> {
    return this.hooks.retry(() => fn(this.db));
  }

  /** After a conditional write on a job held by `workerId` touched nothing: not found, or not ours any more. */
  private async lost(id: string, workerId: string): Promise<never> {
    const job = await this.get(id);
    if (job === null) throw new KilnError('KILN_JOB_NOT_FOUND', `no job ${id}`);
    throw new KilnError('KILN_JOB_LEASE_LOST', `job ${id} is ${job.status}${job.workerId !== null && job.workerId !== workerId ? ` under worker ${job.workerId}` : ''}; worker ${workerId} no longer holds it`);
  }

  async enqueue(job: NewJob): Promise<Job> {
    const { at } = this.times();
    const row = await this.run((db) =>
      db
        .insertInto('jobs')
        .values({
          id: job.id, type: job.type, status: 'queued', stage: null, progress: null, input: json(job.input), result: null, error: null,
          attempts: 0, max_attempts: job.maxAttempts, timeout_seconds: job.timeoutSeconds, priority: job.priority, run_after: at,
          worker_id: null, lease_expires_at: null, cancel_requested_at: null, created_by: job.createdBy,
          created_at: at, started_at: null, finished_at: null, updated_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toJob(row);
  }

  async get(id: string): Promise<Job | null> {
    const row = await this.run((db) => db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst());
    return row === undefined ? null : toJob(row);
  }

  async list(filter: JobFilter): Promise<Job[]> {
    const rows = await this.run((db) => {
      let q = db.selectFrom('jobs').selectAll().orderBy('seq', 'desc').limit(filter.limit);
      if (filter.status !== undefined && filter.status.length > 0) q = q.where('status', 'in', [...filter.status]);
      if (filter.type !== undefined) q = q.where('type', '=', filter.type);
      const after = filter.after;
      if (after !== undefined) q = q.where('seq', '<', (eb) => eb.selectFrom('jobs').select('seq').where('id', '=', after));
      return q.execute();
    });
    return rows.map(toJob);
  }

  async claim(workerId: string, types: readonly string[], leaseSeconds: number): Promise<Job | null> {
    if (types.length === 0) return null;
    const { at, lease } = this.times(leaseSeconds);
    const row = await this.run((db) => {
      let pick = db
        .selectFrom('jobs')
        .select('seq')
        .where('status', '=', 'queued')
        .where('type', 'in', [...types])
        .where('run_after', '<=', at)
        .orderBy('priority', 'desc')
        .orderBy('seq')
        .limit(1);
      if (this.hooks.skipLocked) pick = pick.forUpdate().skipLocked();
      return db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'running', worker_id: workerId, lease_expires_at: lease, attempts: eb('attempts', '+', 1),
          stage: null, progress: null, started_at: at, updated_at: at,
        }))
        .where('seq', '=', pick)
        // Re-checked on the row itself: on PostgreSQL the subquery's snapshot may be older than the row.
        .where('status', '=', 'queued')
        .returningAll()
        .executeTakeFirst();
    });
    return row === undefined ? null : toJob(row);
  }

  async heartbeat(id: string, workerId: string, leaseSeconds: number): Promise<{ cancelRequested: boolean }> {
    const { lease } = this.times(leaseSeconds);
    const row = await this.run((db) =>
      db
        .updateTable('jobs')
        .set({ lease_expires_at: lease })
        .where('id', '=', id)
        .where('worker_id', '=', workerId)
        .where('status', '=', 'running')
        .returning('cancel_requested_at')
        .executeTakeFirst(),
    );
    if (row === undefined) return this.lost(id, workerId);
    return { cancelRequested: row.cancel_requested_at !== null };
  }

  async report(id: string, workerId: string, update: JobProgress): Promise<void> {
    const { at } = this.times();
    const set: { updated_at: string; stage?: string; progress?: number } = { updated_at: at };
    if (update.stage !== undefined) set.stage = update.stage;
    if (update.progress !== undefined) set.progress = Math.max(0, Math.min(100, Math.round(update.progress)));
    const res = await this.run((db) =>
      db.updateTable('jobs').set(set).where('id', '=', id).where('worker_id', '=', workerId).where('status', '=', 'running').executeTakeFirst(),
    );
    if (res.numUpdatedRows === 0n) await this.lost(id, workerId);
  }

  /** Moves a job held by `workerId` out of `running`; null when it is not held by it (any more). */
  private async settle(id: string, workerId: string, set: Partial<Row>, opts: { attemptsLeft?: boolean } = {}): Promise<Job | null> {
    const row = await this.run((db) => {
      let q = db.updateTable('jobs').set(set).where('id', '=', id).where('worker_id', '=', workerId).where('status', '=', 'running');
      if (opts.attemptsLeft === true) q = q.whereRef('attempts', '<', 'max_attempts');
      return q.returningAll().executeTakeFirst();
    });
    return row === undefined ? null : toJob(row);
  }

  async complete(id: string, workerId: string, result: unknown): Promise<Job> {
    const { at } = this.times();
    const job = await this.settle(id, workerId, {
      status: 'succeeded', result: json(result), error: null, progress: 100, lease_expires_at: null, finished_at: at, updated_at: at,
    });
    return job ?? this.lost(id, workerId);
  }

  async fail(id: string, workerId: string, error: JobError, opts: { retryAt?: string | undefined } = {}): Promise<Job> {
    const { at } = this.times();
    if (opts.retryAt !== undefined) {
      const retryAt = opts.retryAt;
      const retried = await this.settle(
        id, workerId,
        { status: 'queued', error: json(error), worker_id: null, lease_expires_at: null, run_after: retryAt, updated_at: at },
        { attemptsLeft: true },
      );
      if (retried !== null) return retried;
    }
    const job = await this.settle(id, workerId, { status: 'failed', error: json(error), lease_expires_at: null, finished_at: at, updated_at: at });
    return job ?? this.lost(id, workerId);
  }

  async cancelled(id: string, workerId: string, error: JobError): Promise<Job> {
    const { at } = this.times();
    const job = await this.settle(id, workerId, { status: 'cancelled', error: json(error), lease_expires_at: null, finished_at: at, updated_at: at });
    return job ?? this.lost(id, workerId);
  }

  async release(id: string, workerId: string, error: JobError): Promise<Job> {
    const { at } = this.times();
    const row = await this.run((db) =>
      db
        .updateTable('jobs')
        .set((eb) => ({ status: 'queued', attempts: eb('attempts', '-', 1), error: json(error), worker_id: null, lease_expires_at: null, run_after: at, updated_at: at }))
        .where('id', '=', id)
        .where('worker_id', '=', workerId)
        .where('status', '=', 'running')
        .returningAll()
        .executeTakeFirst(),
    );
    return row === undefined ? this.lost(id, workerId) : toJob(row);
  }

  async requestCancel(id: string): Promise<Job> {
    const { at } = this.times();
    const queued = await this.run((db) =>
      db
        .updateTable('jobs')
        .set({ status: 'cancelled', cancel_requested_at: at, error: json({ code: 'KILN_JOB_CANCELLED', message: 'cancelled before it started' }), finished_at: at, updated_at: at })
        .where('id', '=', id)
        .where('status', '=', 'queued')
        .returningAll()
        .executeTakeFirst(),
    );
    if (queued !== undefined) return toJob(queued);
    const running = await this.run((db) =>
      db
        .updateTable('jobs')
        .set({ cancel_requested_at: at, updated_at: at })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .where('cancel_requested_at', 'is', null)
        .returningAll()
        .executeTakeFirst(),
    );
    if (running !== undefined) return toJob(running);
    const job = await this.get(id);
    if (job === null) throw new KilnError('KILN_JOB_NOT_FOUND', `no job ${id}`);
    // Asked twice, or it went from queued to running in between and was asked already: nothing to do.
    if (job.status === 'cancelled' || (job.status === 'running' && job.cancelRequestedAt !== null)) return job;
    if (job.status === 'running' || job.status === 'queued') return this.requestCancel(id);
    throw new KilnError('KILN_JOB_NOT_CANCELLABLE', `job ${id} has ${job.status}; only queued and running jobs can be cancelled`);
  }

  async expireLeases(): Promise<Job[]> {
    const { at } = this.times();
    const expired = await this.run((db) =>
      db.selectFrom('jobs').selectAll().where('status', '=', 'running').where('lease_expires_at', '<', at).orderBy('seq').limit(100).execute(),
    );
    const moved: Job[] = [];
    for (const r of expired) {
      const attempt = `attempt ${r.attempts} of ${r.max_attempts}`;
      const lostWorker = `worker ${r.worker_id ?? '?'} stopped renewing its lease during ${attempt} (it died or lost the database)`;
      let set: Partial<Row>;
      if (r.cancel_requested_at !== null) {
        set = { status: 'cancelled', error: json({ code: 'KILN_JOB_CANCELLED', message: `cancelled; ${lostWorker}` }), finished_at: at };
      } else if (Number(r.attempts) < Number(r.max_attempts)) {
        set = { status: 'queued', error: json({ code: 'KILN_JOB_LEASE_EXPIRED', message: `${lostWorker}; queued again` }), worker_id: null, run_after: at };
      } else {
        set = { status: 'failed', error: json({ code: 'KILN_JOB_LEASE_EXPIRED', message: `${lostWorker}; no attempts left` }), finished_at: at };
      }
      // Only if nothing moved meanwhile: a late heartbeat (a new lease) keeps the job with its worker.
      const row = await this.run((db) =>
        db
          .updateTable('jobs')
          .set({ ...set, lease_expires_at: null, updated_at: at })
          .where('id', '=', r.id)
          .where('status', '=', 'running')
          .where('lease_expires_at', '=', r.lease_expires_at)
          .returningAll()
          .executeTakeFirst(),
      );
      if (row !== undefined) moved.push(toJob(row));
    }
    return moved;
  }

  async appendLogChunk(id: string, chunk: { sha256: string; size: number }): Promise<JobLogChunk> {
    const { at } = this.times();
    if ((await this.get(id)) === null) throw new KilnError('KILN_JOB_NOT_FOUND', `no job ${id}`);
    // The next sequence number and offset come from the index itself, in the same statement. One
    // writer per job is the rule; should two race on PostgreSQL, the primary key turns one away: retry.
    for (let tries = 0; ; tries++) {
      try {
        const row = await this.run((db) =>
          db
            .insertInto('job_log_chunks')
            .columns(['job_id', 'seq', 'start_byte', 'size', 'sha256', 'created_at'])
            .expression((eb) =>
              eb
                .selectFrom('job_log_chunks')
                .select([
                  sql<string>`cast(${id} as text)`.as('job_id'),
                  sql<number>`coalesce(max(seq) + 1, 0)`.as('seq'),
                  sql<number>`coalesce(max(start_byte + size), 0)`.as('start_byte'),
                  sql<number>`cast(${chunk.size} as integer)`.as('size'),
                  sql<string>`cast(${chunk.sha256} as text)`.as('sha256'),
                  sql<string>`cast(${at} as text)`.as('created_at'),
                ])
                .where('job_id', '=', id),
            )
            .returningAll()
            .executeTakeFirstOrThrow(),
        );
        return toChunk(row);
      } catch (err) {
        if (tries >= 5 || !this.hooks.isUniqueViolation(err)) throw err;
      }
    }
  }

  async logChunks(id: string, opts: { afterSeq?: number | undefined; limit?: number | undefined } = {}): Promise<JobLogChunk[]> {
    const rows = await this.run((db) => {
      let q = db.selectFrom('job_log_chunks').selectAll().where('job_id', '=', id).orderBy('seq');
      if (opts.afterSeq !== undefined) q = q.where('seq', '>', opts.afterSeq);
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return q.execute();
    });
    return rows.map(toChunk);
  }

  async close(): Promise<void> {
    await this.closeDb();
  }
}
