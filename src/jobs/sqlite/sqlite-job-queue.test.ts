import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../../core/kiln-error.js';
import { openSqliteStore } from '../../store/sqlite/sqlite-store.js';
import { describeJobQueueContract, ManualClock } from '../contract/job-queue-contract.js';
import { openSqliteJobQueue } from './sqlite-job-queue.js';

async function tempDb(): Promise<{ path: string; drop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-jobq-'));
  return { path: join(dir, 'kiln.db'), drop: () => rm(dir, { recursive: true, force: true }) };
}

describeJobQueueContract('sqlite', async () => {
  const { path, drop } = await tempDb();
  return { open: (clock) => openSqliteJobQueue({ path, clock, migrate: true }), drop };
});

describe('SqliteJobQueue', () => {
  it('waits for a busy database without blocking the process, then writes', async () => {
    const { path, drop } = await tempDb();
    const queue = await openSqliteJobQueue({ path, clock: new ManualClock(), migrate: true });
    const other = new Database(path);
    try {
      other.exec('begin immediate');
      let settled = false;
      const pending = queue.enqueue({ id: randomUUID(), type: 'build', input: {}, maxAttempts: 1, timeoutSeconds: 60, priority: 0, createdBy: null }).finally(() => (settled = true));
      // Timers still fire while the enqueue waits: better-sqlite3's own busy wait would block them.
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
      expect(settled).toBe(false);
      other.exec('commit');
      expect((await pending).status).toBe('queued');
    } finally {
      other.close();
      await queue.close();
      await drop();
    }
  });

  it('gives up on a database that stays busy with KILN_STORE_UNAVAILABLE', async () => {
    const { path, drop } = await tempDb();
    const queue = await openSqliteJobQueue({ path, clock: new ManualClock(), migrate: true, busyTimeoutMs: 100 });
    const other = new Database(path);
    try {
      other.exec('begin immediate');
      const err = await queue.claim('w', ['build'], 10).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe('KILN_STORE_UNAVAILABLE');
      other.exec('rollback');
    } finally {
      other.close();
      await queue.close();
      await drop();
    }
  });

  it('migration 0004_jobs goes down and up again', async () => {
    const { path, drop } = await tempDb();
    const { connectSqlite } = await import('../../store/sqlite/sqlite-store.js');
    const { migrateDown, migrateToLatest } = await import('../../store/migrations/migrate.js');
    const { db, conn } = connectSqlite({ path });
    try {
      const applied = await migrateToLatest(db as never, 'sqlite');
      // 0004_jobs and whatever came after it, newest first.
      const fromJobs = applied.slice(applied.indexOf('0004_jobs')).reverse();
      expect(fromJobs.at(-1)).toBe('0004_jobs');
      expect(await migrateDown(db as never, 'sqlite', fromJobs.length)).toEqual(fromJobs);
      expect(conn.prepare("select name from sqlite_master where name in ('jobs', 'job_log_chunks')").all()).toEqual([]);
      expect(await migrateToLatest(db as never, 'sqlite')).toEqual([...fromJobs].reverse());
    } finally {
      await db.destroy();
      await drop();
    }
  });

  it('opens on the database the Store migrated, and refuses one that is not', async () => {
    const { path, drop } = await tempDb();
    try {
      const err = await openSqliteJobQueue({ path, clock: new ManualClock() }).catch((e: unknown) => e);
      expect((err as KilnError).code).toBe('KILN_SCHEMA_OUTDATED');
      const store = await openSqliteStore({ path });
      await store.close();
      const queue = await openSqliteJobQueue({ path, clock: new ManualClock() });
      expect(await queue.list({ limit: 1 })).toEqual([]);
      await queue.close();
    } finally {
      await drop();
    }
  });
});
