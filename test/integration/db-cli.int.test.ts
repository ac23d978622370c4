// `kiln db status|migrate` as an operator runs it: the built binary, on SQLite and on PostgreSQL.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { removeDir } from './helpers.js';

const BIN = new URL('../../bin/kiln.js', import.meta.url).pathname;

function kiln(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

interface Status {
  dialect: string;
  migrations: { name: string; appliedAt: string | null }[];
}

async function roundTrip(env: Record<string, string>): Promise<void> {
  const first = await kiln(['-o', 'json', 'db', 'status'], env);
  expect(first.code, first.stderr).toBe(0);
  const fresh = JSON.parse(first.stdout) as Status;
  // Every migration Kiln ships, in order; none applied yet.
  const names = fresh.migrations.map((m) => m.name);
  expect(names.slice(0, 3)).toEqual(['0001_initial', '0002_secrets', '0003_compat']);
  expect(fresh.migrations.map((m) => m.appliedAt)).toEqual(names.map(() => null));
  const up = await kiln(['db', 'migrate'], env);
  expect(up.code, up.stderr).toBe(0);
  expect(up.stdout).toContain(`applied ${names.join(', ')}`);
  expect((await kiln(['db', 'migrate'], env)).stdout).toContain('up to date');
  const table = await kiln(['db', 'status'], env);
  expect(table.stdout).toMatch(new RegExp(`${names.at(-1)!}\\s+\\d{4}-`));
  const down = await kiln(['db', 'migrate', '--down', '2'], env);
  expect(down.stdout).toContain(`reverted ${names.at(-1)!}, ${names.at(-2)!}`);
  const after = JSON.parse((await kiln(['-o', 'json', 'db', 'status'], env)).stdout) as Status;
  expect(after.migrations.map((m) => m.appliedAt === null)).toEqual(names.map((_, i) => i >= names.length - 2));
  // A server told not to migrate refuses the outdated schema with a clear message and exit code 7.
  const refused = await kiln(['serve', '--listen', '127.0.0.1:0', '--database-migrate', 'false'], env);
  expect(refused.code).toBe(7);
  expect(refused.stderr).toContain('KILN_SCHEMA_OUTDATED');
  expect((await kiln(['db', 'migrate', '--down', 'x'], env)).code).toBe(2);
}

describe('kiln db', () => {
  it('status, migrate, migrate --down on SQLite in the data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-db-cli-'));
    try {
      await roundTrip({ KILN_DATA_DIR: dir });
    } finally {
      await removeDir(dir);
    }
  });

  it.skipIf(pgUrl === null)(`the same on PostgreSQL${pgUrl === null ? ` (skipped: ${pgSkipReason})` : ''}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-db-cli-'));
    try {
      await roundTrip({ KILN_DATA_DIR: dir, KILN_DATABASE_URL: await freshPgDatabase('cli') });
    } finally {
      await removeDir(dir);
    }
  });

  it('an unreachable database is exit code 7 with KILN_STORE_UNAVAILABLE', async () => {
    const r = await kiln(['db', 'status', '--database-url', 'postgres://kiln@127.0.0.1:1/none'], { KILN_DATABASE_CONNECT_TIMEOUT_MS: '1000' });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('KILN_STORE_UNAVAILABLE');
  });
});
