// Case 1, render: per-MAC /boot/ipxe requests over a seeded fleet at c=64 and c=256, against nginx
// serving a static file of the same size under the same request line.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startKiln } from '../kiln-server.mjs';
import { startNginx } from '../nginx-server.mjs';
import { runClient } from '../run-client.mjs';
import { seedStore } from '../seed-store.mjs';
import { macOf } from '../mac-of.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';
import { treeCpuSeconds } from '../proc-stats.mjs';
import { pgUnavailableReason, startPgCluster } from '../../scripts/pg-cluster.mjs';

const FAKE_BLOB = (c) => ({ sha256: c.repeat(64), size: 1 });

function runRow(c, server, m) {
  const r = m.result;
  return {
    label: `c=${c}`, server, figure: `${fmt(r.rps)} req/s, ${fmt((m.serverCpuS * 1e6) / r.requests, 1)} µs server CPU/req`,
    latency: `${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p99)} / ${fmt(r.latencyMs.p999)}`, ...cpuColumns(m), errors: r.errors,
  };
}

export async function renderCase(ctx) {
  const { opts } = ctx;
  const dir = join(ctx.workDir, 'render');
  const dataDir = join(dir, 'kiln');
  await mkdir(dataDir, { recursive: true });
  const t0 = performance.now();
  // The render path never fetches the blobs: the records are enough.
  await seedStore(dataDir, { machines: opts.fleet, kernel: FAKE_BLOB('a'), initrd: FAKE_BLOB('b') });
  const seedS = (performance.now() - t0) / 1000;
  console.error(`render: seeded ${opts.fleet} machines in ${seedS.toFixed(1)} s`);

  const kiln = await startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers });
  const sample = await (await fetch(`${kiln.url}/boot/ipxe?mac=${macOf(Math.floor(opts.fleet / 2))}`)).text();
  let nginx = null;
  if (ctx.nginx.bin !== null) {
    await mkdir(join(dir, 'www', 'boot'), { recursive: true });
    await writeFile(join(dir, 'www', 'boot', 'ipxe'), sample);
    nginx = await startNginx({ bin: ctx.nginx.bin, root: join(dir, 'www'), dir: join(dir, 'nginx'), workers: opts.nginxWorkers });
  }
  const job = (server, connections, seconds) => ({ kind: 'render', url: server.url, machines: opts.fleet, connections, seconds });
  const runs = [];
  const measured = {};
  try {
    console.error(`render: warm-up ${opts.warmupSeconds} s each`);
    await runClient(job(kiln, 64, opts.warmupSeconds), kiln);
    if (nginx !== null) await runClient(job(nginx, 64, Math.min(2, opts.warmupSeconds)), nginx);
    for (const c of [64, 256]) {
      for (const server of [kiln, nginx]) {
        if (server === null) continue;
        console.error(`render: ${server.name}, ${c} connections, ${opts.seconds} s`);
        const m = await runClient(job(server, c, opts.seconds), server);
        measured[`${server.name}-${c}`] = m;
        runs.push(runRow(c, server.name, m));
      }
    }
  } finally {
    await kiln.stop();
    await nginx?.stop();
  }
  const pg = await onPostgres(ctx, dir, runs, measured);
  const k = (c) => measured[`kiln-${c}`];
  const n = (c) => measured[`nginx-${c}`];
  const cpuPerRequest = (m) => (m === undefined ? null : (m.serverCpuS * 1e6) / m.result.requests);
  const rows = [];
  for (const [c, ratio] of [[64, 0.7], [256, 0.65]]) {
    rows.push(row(`req/s, c=${c}`, { kiln: k(c).result.rps, reference: n(c)?.result.rps ?? null, target: { ratioAtLeast: ratio } }));
    rows.push(row(`p99 latency, c=${c}`, { kiln: k(c).result.latencyMs.p99, reference: n(c)?.result.latencyMs.p99 ?? null, unit: 'ms' }));
  }
  rows.push(row('server CPU per request, c=64', { kiln: cpuPerRequest(k(64)), reference: cpuPerRequest(n(64)), unit: 'µs', digits: 1 }));
  if (pg.ran) {
    for (const [c, ratio] of [[64, 0.7], [256, 0.65]]) {
      rows.push(row(`on PostgreSQL: req/s, c=${c}`, { kiln: measured[`kiln-pg-${c}`].result.rps, reference: n(c)?.result.rps ?? null, target: { ratioAtLeast: ratio } }));
    }
    rows.push(row('on PostgreSQL: server CPU per request, c=64 (Kiln + PostgreSQL)', { kiln: cpuPerRequest(measured['kiln-pg-64']), reference: cpuPerRequest(n(64)), unit: 'µs', digits: 1 }));
  }
  return {
    rows,
    details: [
      `${opts.fleet.toLocaleString('en-US')} machines seeded in ${seedS.toFixed(1)} s (53 groups, 4 profiles; 10% pinned to a profile), uniformly random MACs, ` +
        `${opts.seconds} s per run after a ${opts.warmupSeconds} s warm-up; autocannon, keep-alive. Script ${Buffer.byteLength(sample)} bytes; ` +
        `nginx serves a file of exactly that size at the same path (nginx ${opts.nginxWorkers} worker${opts.nginxWorkers === 1 ? '' : 's'}, Kiln ${opts.workers}). ` +
        'Every Kiln request also records a boot event (batched writes). ' +
        (pg.ran
          ? `"kiln-pg" is Kiln on a private PostgreSQL ${pg.version} (fsync off, as a throwaway cluster) with ${pg.fleet.toLocaleString('en-US')} machines seeded the same way in ${fmt(pg.seedS)} s; ` +
            'its server CPU counts PostgreSQL\'s processes too, and its reference is the nginx runs above.'
          : `No PostgreSQL run: ${pg.reason}.`),
      '',
      ...runsTable(runs),
    ],
    data: { seedS, scriptBytes: Buffer.byteLength(sample), postgres: pg, runs: measured },
  };
}

/**
 * The same fleet and runs with Kiln on PostgreSQL (when the Debian package is installed): a private
 * cluster on loopback, its processes' CPU added to Kiln's, since a lookup there costs CPU in both.
 */
async function onPostgres(ctx, dir, runs, measured) {
  const { opts } = ctx;
  const reason = pgUnavailableReason();
  if (reason !== null) {
    console.error(`render: no PostgreSQL run: ${reason}`);
    return { ran: false, reason };
  }
  // Quick runs only prove the path works; seeding PostgreSQL row by row is what takes the time.
  const fleet = opts.quick ? Math.min(opts.fleet, 5000) : opts.fleet;
  const cluster = await startPgCluster();
  try {
    const url = await cluster.createDatabase('bench');
    const dataDir = join(dir, 'kiln-pg');
    await mkdir(dataDir, { recursive: true });
    const t0 = performance.now();
    await seedStore(dataDir, { machines: fleet, kernel: FAKE_BLOB('a'), initrd: FAKE_BLOB('b'), databaseUrl: url });
    const seedS = (performance.now() - t0) / 1000;
    console.error(`render: seeded ${fleet} machines in PostgreSQL in ${seedS.toFixed(1)} s`);
    const postmaster = Number((await readFile(join(cluster.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const kiln = await startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers, extraArgs: ['--database-url', url] });
    const server = { ...kiln, name: 'kiln-pg', cpuSeconds: () => kiln.cpuSeconds() + treeCpuSeconds(postmaster) };
    try {
      await runClient({ kind: 'render', url: kiln.url, machines: fleet, connections: 64, seconds: opts.warmupSeconds }, server);
      for (const c of [64, 256]) {
        console.error(`render: kiln on PostgreSQL, ${c} connections, ${opts.seconds} s`);
        const m = await runClient({ kind: 'render', url: kiln.url, machines: fleet, connections: c, seconds: opts.seconds }, server);
        measured[`kiln-pg-${c}`] = m;
        runs.push(runRow(c, 'kiln-pg', m));
      }
    } finally {
      await kiln.stop();
    }
    const version = (await readFile(join(cluster.dataDir, 'PG_VERSION'), 'utf8')).trim();
    return { ran: true, fleet, seedS, version };
  } finally {
    await cluster.destroy();
  }
}
