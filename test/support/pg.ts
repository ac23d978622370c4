// PostgreSQL for test files: a fresh database per call on the suite's shared cluster.
import { inject } from 'vitest';
import pg from 'pg';

export const pgUrl = inject('pgUrl');
export const pgSkipReason = inject('pgSkipReason');
let n = 0;

/** Creates an empty database on the shared cluster and returns its URL. */
export async function freshPgDatabase(prefix = 'kiln'): Promise<string> {
  if (pgUrl === null) throw new Error(`no PostgreSQL: ${pgSkipReason}`);
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${n++}`;
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } finally {
    await client.end();
  }
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  return u.href;
}
