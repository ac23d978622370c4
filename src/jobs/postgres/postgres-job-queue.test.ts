// The JobQueue contract on PostgreSQL: the suite's shared cluster under `npm test` (CI requires it);
// run alone without the global setup, a private cluster when PostgreSQL is installed.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { pgUnavailableReason, startPgCluster, type PgCluster } from '../../../test/support/pg-cluster.js';
import { FsBlobStore } from '../../blobs/fs/fs-blob-store.js';
import { describeJobQueueContract } from '../contract/job-queue-contract.js';
import { until } from '../contract/probes.js';
import { JobLogs } from '../job-logs.js';
import { JobService } from '../job-service.js';
import { jobRegistry } from '../job-types.js';
import { SpawnProcessRunner } from '../process-runner.js';
import { selfTestJob } from '../self-test-job.js';
import { Worker } from '../worker.js';
import { openPostgresJobQueue } from './postgres-job-queue.js';

const provided = inject('pgUrl');
const skipReason = provided === null ? inject('pgSkipReason') : provided === undefined ? pgUnavailableReason() : null;
if (skipReason !== null) console.warn(`PostgreSQL job queue tests skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('PostgresJobQueue', () => {
  let cluster: PgCluster | null = null;
  let maintenance: string;
  let n = 0;

  beforeAll(async () => {
    if (typeof provided === 'string') maintenance = provided;
    else {
      cluster = await startPgCluster();
      maintenance = cluster.url();
    }
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  async function admin(text: string): Promise<void> {
    const client = new pg.Client({ connectionString: maintenance });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  }

  async function database(): Promise<{ url: string; drop: () => Promise<void> }> {
    const name = `kiln_jobs_${process.pid}_${Date.now().toString(36)}_${n++}`;
    await admin(`create database "${name}"`);
    const u = new URL(maintenance);
    u.pathname = `/${name}`;
    return { url: u.href, drop: () => admin(`drop database "${name}" with (force)`) };
  }

  describeJobQueueContract('postgres', async () => {
    const { url, drop } = await database();
    return { open: (clock) => openPostgresJobQueue({ url, clock, migrate: true }), drop };
  });

  it('a worker runs jobs end to end on PostgreSQL: claim, heartbeats, log, outcome, cancel', async () => {
    const { url, drop } = await database();
    const dir = await mkdtemp(join(tmpdir(), 'kiln-pgworker-'));
    const clock = { now: () => new Date() };
    const queue = await openPostgresJobQueue({ url, clock, migrate: true });
    const logs = new JobLogs(queue, await FsBlobStore.open(join(dir, 'blobs')), { pollMs: 50 });
    const types = jobRegistry([selfTestJob]);
    const service = new JobService(queue, types, logs, { id: () => randomUUID(), secret: () => '' }, clock);
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const worker = new Worker({
      queue, logs, types, concurrency: 2, leaseSeconds: 4, heartbeatSeconds: 1, pollIntervalMs: 50, workRoot: join(dir, 'work'), clock, runner: new SpawnProcessRunner(), log: quiet,
    });
    await worker.start();
    try {
      const quick = await service.create('self-test', { seconds: 1, processes: 1 }, { actor: null });
      const slow = await service.create('self-test', { seconds: 60, processes: 1 }, { actor: null });
      const done = await until('the quick job to succeed', async () => ((await service.get(quick.id)).status === 'succeeded' ? service.get(quick.id) : null));
      expect(done).toMatchObject({ attempts: 1, workerId: worker.id, result: { seconds: 1, processes: 1 } });
      const parts: Buffer[] = [];
      for await (const c of await logs.read(quick.id)) parts.push(c as Buffer);
      expect(Buffer.concat(parts).toString()).toContain('sleepers done');
      await until('the slow job to run', async () => (await service.get(slow.id)).status === 'running');
      await service.cancel(slow.id);
      await until('the slow job to be cancelled', async () => (await service.get(slow.id)).status === 'cancelled');
    } finally {
      await worker.stop(0);
      await queue.close();
      await rm(dir, { recursive: true, force: true });
      await drop();
    }
  });
});
