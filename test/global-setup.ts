// Once before the suite: builds dist/ (tests run the `kiln` binary as a child process) and starts a
// private PostgreSQL cluster for the PostgreSQL tests. Locally they skip when PostgreSQL is missing;
// in CI (CI set) a missing PostgreSQL fails the run instead of silently skipping.
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { pgUnavailableReason, startPgCluster, type PgCluster } from './support/pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Maintenance-database URL of the shared test cluster, or null with `pgSkipReason` set. */
    pgUrl: string | null;
    pgSkipReason: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync('sh', ['scripts/ensure-ready.sh'], { stdio: 'inherit' });
  let cluster: PgCluster | null = null;
  const reason = pgUnavailableReason();
  if (reason === null) {
    cluster = await startPgCluster();
    project.provide('pgUrl', cluster.url());
    project.provide('pgSkipReason', '');
  } else {
    if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') {
      throw new Error(`CI must run the PostgreSQL tests, but: ${reason}`);
    }
    process.stderr.write(`\n  PostgreSQL tests are skipped: ${reason}\n\n`);
    project.provide('pgUrl', null);
    project.provide('pgSkipReason', reason);
  }
  return async () => {
    await cluster?.destroy();
  };
}
