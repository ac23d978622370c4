// Wiring of the job system for `kiln serve` (the queue, the service the API uses, an in-process
// worker or at least the lease sweeper) and for `kiln worker` (a worker alone, against the same
// database and blob store as the servers).
import { join, resolve } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { BlobStore, Clock, IdSource, Store } from '../core/ports.js';
import type { KilnConfig } from '../server/config.js';
import { JobLogs } from './job-logs.js';
import type { JobQueue } from './job-queue.js';
import { kilnJobTypes } from './job-registry.js';
import { JobService } from './job-service.js';
import type { JobTypes } from './job-types.js';
import { SpawnProcessRunner, type ProcessRunner } from './process-runner.js';
import { reapExpiredLeases, Worker, type WorkerLogger } from './worker.js';

export interface JobDeps {
  store: Store;
  blobs: BlobStore;
  clock: Clock;
  ids: IdSource;
  log: WorkerLogger;
  runner?: ProcessRunner;
  /** Replaces Kiln's registry (tests). */
  types?: JobTypes;
}

/**
 * The queue on the Store's database. The Store keeps its Kysely to itself, so the queue opens its
 * own connection from the same settings: the same SQLite file (a second connection that never
 * blocks the process, see SqliteJobQueue) or the same PostgreSQL URL (a small second pool).
 */
export async function openJobQueue(config: KilnConfig, dataDir: string, clock: Clock, log: WorkerLogger): Promise<JobQueue> {
  const db = config.database;
  if (db.url !== null) {
    const { openPostgresJobQueue } = await import('./postgres/postgres-job-queue.js');
    return openPostgresJobQueue({ url: db.url, clock, statementTimeoutMs: db.statementTimeoutMs, connectTimeoutMs: db.connectTimeoutMs, poolMax: Math.min(4, db.poolMax), log });
  }
  const { openSqliteJobQueue } = await import('./sqlite/sqlite-job-queue.js');
  return openSqliteJobQueue({ path: join(dataDir, 'kiln.db'), clock });
}

export function workRootOf(config: KilnConfig, dataDir: string): string {
  return config.jobs.workDir !== null ? resolve(config.jobs.workDir) : join(dataDir, 'work');
}

export interface RunningJobs {
  queue: JobQueue;
  service: JobService;
  /** The in-process worker when jobs.inProcess, else null. */
  worker: Worker | null;
  /** Starts the in-process worker (or only the lease sweeper); call once serving. */
  start(): Promise<void>;
  /** Stops the worker: running jobs get up to `graceMs`, then go back to the queue. */
  stop(graceMs: number): Promise<void>;
  /** Closes the queue (after stop, and after the listeners that use the service). */
  close(): Promise<void>;
}

export async function openJobs(config: KilnConfig, dataDir: string, deps: JobDeps, opts: { inProcess?: boolean } = {}): Promise<RunningJobs> {
  const queue = await openJobQueue(config, dataDir, deps.clock, deps.log);
  const types = deps.types ?? kilnJobTypes({ store: deps.store, blobs: deps.blobs, clock: deps.clock, ids: deps.ids, customize: config.customize });
  const logs = new JobLogs(queue, deps.blobs);
  const service = new JobService(queue, types, logs, deps.ids, deps.clock);
  const c = config.jobs;
  const worker = (opts.inProcess ?? c.inProcess)
    ? new Worker({
        queue, logs, types, only: c.types, concurrency: c.concurrency, leaseSeconds: c.leaseSeconds, heartbeatSeconds: c.heartbeatSeconds,
        pollIntervalMs: c.pollIntervalMs, workRoot: workRootOf(config, dataDir), clock: deps.clock, runner: deps.runner ?? new SpawnProcessRunner(), log: deps.log,
      })
    : null;
  let unsubscribe: () => void = () => undefined;
  let sweeper: NodeJS.Timeout | null = null;
  return {
    queue,
    service,
    worker,
    async start() {
      if (worker !== null) {
        await worker.start();
        unsubscribe = service.onEnqueued(() => worker.wake());
        deps.log.info({ worker: worker.id, concurrency: c.concurrency, types: c.types ?? Object.keys(types) }, 'job worker started');
        return;
      }
      // No worker here, maybe none anywhere: jobs must still not stay "running" after a worker died.
      sweeper = setInterval(() => {
        reapExpiredLeases(queue, logs, deps.log).catch((err: unknown) => deps.log.warn({ err }, 'sweeping expired job leases failed'));
      }, c.heartbeatSeconds * 1000);
      sweeper.unref();
    },
    async stop(graceMs) {
      unsubscribe();
      if (sweeper !== null) clearInterval(sweeper);
      await worker?.stop(graceMs);
    },
    close: () => queue.close(),
  };
}

/** `kiln worker`: a worker process against the servers' database and blob store. */
export async function startWorkerProcess(config: KilnConfig, log: FastifyBaseLogger): Promise<{ worker: Worker; close(): Promise<void> }> {
  const dataDir = resolve(config.dataDir);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const { openBlobStore, openStore } = await import('../server/open-storage.js');
  const { randomIds, systemClock } = await import('../server/start-kiln.js');
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log.error({ err }, 'closing failed'));
  };
  try {
    // The Store too: builders register what they build, and its migrations make the job tables.
    const store = await openStore(config, dataDir, log, { listen: false });
    closers.push(() => store.close());
    const blobs = await openBlobStore(config, dataDir);
    closers.push(() => blobs.close());
    const jobs = await openJobs(config, dataDir, { store, blobs, clock: systemClock, ids: randomIds, log }, { inProcess: true });
    closers.push(() => jobs.close());
    await jobs.start();
    closers.push(() => jobs.stop(config.jobs.shutdownGraceSeconds * 1000));
    return { worker: jobs.worker!, close };
  } catch (err) {
    await close();
    throw err;
  }
}
