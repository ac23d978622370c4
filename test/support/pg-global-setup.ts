// Global setup for running PostgreSQL suites locally without `npm test`'s (which rebuilds dist/):
// provides `pgUrl` from a private cluster, nothing else. Used by vitest.dev.config.ts.
import type { TestProject } from 'vitest/node';
import { pgUnavailableReason, startPgCluster } from './pg-cluster.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reason = pgUnavailableReason();
  if (reason !== null) {
    project.provide('pgUrl', null);
    project.provide('pgSkipReason', reason);
    return async () => undefined;
  }
  const cluster = await startPgCluster();
  project.provide('pgUrl', cluster.url());
  project.provide('pgSkipReason', '');
  return () => cluster.destroy();
}
