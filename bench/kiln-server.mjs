// A fresh `kiln serve` child per case (SQLite and blobs in the case's data directory, loopback,
// port 0), ready when it prints its admin URL; stopped with SIGTERM like any deployment.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { onCleanup, stopChild } from './cleanup.mjs';
import { peakRssBytesOf, treeCpuSeconds, treePeakRssBytes } from './proc-stats.mjs';

/** A concurrent `npm run build` (rm -rf dist, then tsc) leaves dist/ missing for a while: wait it out. */
async function waitForBuild(repoRoot) {
  const stamp = join(repoRoot, 'dist', '.build-stamp');
  for (let waited = 0; !existsSync(stamp); waited++) {
    if (waited === 0) console.error('dist/ is being rebuilt: waiting for the build to finish...');
    if (waited > 300) throw new Error('dist/ did not come back within 5 minutes: run `npm run build`');
    await sleep(1000);
  }
}

/**
 * Waits until every process has loaded the fleet into its boot cache (/healthz bootCacheWarmed),
 * so that a run measures the steady state, not the start: with 100,000 machines the load takes a
 * few seconds per worker, and under load it overlapped the first measured seconds (5-11% fewer
 * req/s in the render case). New connections reach the workers at random; every worker must answer.
 */
async function waitForWarmCaches(url, workers) {
  const warm = new Set();
  const deadline = Date.now() + 120_000;
  while (warm.size < workers) {
    if (Date.now() > deadline) throw new Error(`kiln's boot caches were not warm within 120 s (warm: ${[...warm].join(', ') || 'none'})`);
    const h = await fetch(`${url}/healthz`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5000) }).then((r) => r.json(), () => null);
    if (h !== null && h.bootCacheWarmed !== null && h.bootCacheWarmed !== undefined) warm.add(h.worker ?? 0);
    else await sleep(100);
  }
}

/**
 * `nodeArgs` go to the server's node (KILN_BENCH_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to profile the server under load; profiles are written when it stops). `extraArgs` are more
 * `kiln serve` flags (e.g. an S3 blob store); `env` adds variables, for settings such as
 * credentials that do not belong on a command line.
 */
export async function startKiln({ repoRoot, dataDir, nodeArgs = [], workers = 1, extraArgs = [], env = {} }) {
  await waitForBuild(repoRoot);
  const child = spawn(process.execPath, [...nodeArgs, join(repoRoot, 'bin/kiln.js'), 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn', '--workers', String(workers), ...extraArgs], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = onCleanup(`kiln ${child.pid}`, () => stopChild(child, { signal: 'SIGTERM', graceMs: 20000 }));
  // Keep a tail of the log: warnings during a run are reported, and a failed start shows why.
  let tail = '';
  let warnings = 0;
  const url = await new Promise((resolve, reject) => {
    let ready = false;
    child.stderr.on('data', (d) => {
      const s = String(d);
      tail = (tail + s).slice(-8192);
      if (ready) {
        warnings += s.split('\n').filter((l) => l.trim() !== '').length;
        return;
      }
      const m = /admin API (http:\/\/[^/\s]+)\/api\/v1/.exec(tail);
      if (m) {
        ready = true;
        resolve(m[1]);
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`kiln serve exited (${code ?? signal}) before it was ready:\n${tail}`)));
  });
  await waitForWarmCaches(url, workers);
  return {
    name: 'kiln',
    url,
    pid: child.pid,
    // With --workers the primary forks workers: count the whole process tree.
    cpuSeconds: () => treeCpuSeconds(child.pid),
    peakRssBytes: () => (workers > 1 ? treePeakRssBytes(child.pid) : peakRssBytesOf(child.pid)),
    adminToken: async () => (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim(),
    logTail: () => tail,
    logLines: () => warnings,
    stop,
  };
}
