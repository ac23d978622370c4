// The jobs.* settings as src/server/config.ts reads them (kept here with the job system they steer).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../server/config.js';
import { workRootOf } from './start-jobs.js';

const cwd = () => mkdtempSync(join(tmpdir(), 'kiln-jobcfg-'));

describe('jobs settings', () => {
  it('defaults: an in-process worker running one job at a time, every type', () => {
    const c = loadConfig({ env: {}, flags: {}, cwd: cwd() });
    expect(c.jobs).toEqual({ inProcess: true, concurrency: 1, types: null, workDir: null, leaseSeconds: 30, heartbeatSeconds: 3, pollIntervalMs: 1000, shutdownGraceSeconds: 5 });
    expect(Object.isFrozen(c.jobs)).toBe(true);
    expect(workRootOf(c, '/srv/kiln')).toBe('/srv/kiln/work');
  });

  it('reads them from the environment and flags; types are a list', () => {
    const c = loadConfig({ env: { KILN_JOBS_TYPES: 'self-test, image-build', KILN_JOBS_IN_PROCESS: 'false' }, flags: { 'jobs.concurrency': '4', 'jobs.workDir': '/scratch/kiln' }, cwd: cwd() });
    expect(c.jobs).toMatchObject({ inProcess: false, concurrency: 4, types: ['self-test', 'image-build'], workDir: '/scratch/kiln' });
    expect(workRootOf(c, '/srv/kiln')).toBe('/scratch/kiln');
  });

  it('refuses a heartbeat slower than half the lease and bad type names, all at once', () => {
    let err: unknown;
    try {
      loadConfig({ env: { KILN_JOBS_LEASE_SECONDS: '10', KILN_JOBS_HEARTBEAT_SECONDS: '6', KILN_JOBS_TYPES: 'ok,Not OK' }, flags: {}, cwd: cwd() });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'jobs.types: "Not OK" is not a job type name',
      'jobs.heartbeatSeconds: at most half of jobs.leaseSeconds (a late heartbeat must not lose the lease)',
    ]);
  });
});
