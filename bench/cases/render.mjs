// Case 1, render: per-MAC /boot/ipxe requests over a seeded fleet at c=64 and c=256, against nginx
// serving a static file of the same size under the same request line.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startKiln } from '../kiln-server.mjs';
import { startNginx } from '../nginx-server.mjs';
import { runClient } from '../run-client.mjs';
import { seedStore } from '../seed-store.mjs';
import { macOf } from '../mac-of.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';

const FAKE_BLOB = (c) => ({ sha256: c.repeat(64), size: 1 });

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
        const r = m.result;
        runs.push({
          label: `c=${c}`, server: server.name, figure: `${fmt(r.rps)} req/s, ${fmt((m.serverCpuS * 1e6) / r.requests, 1)} µs server CPU/req`,
          latency: `${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p99)} / ${fmt(r.latencyMs.p999)}`, ...cpuColumns(m), errors: r.errors,
        });
      }
    }
  } finally {
    await kiln.stop();
    await nginx?.stop();
  }
  const k = (c) => measured[`kiln-${c}`];
  const n = (c) => measured[`nginx-${c}`];
  const rows = [];
  for (const [c, ratio] of [[64, 0.7], [256, 0.65]]) {
    rows.push(row(`req/s, c=${c}`, { kiln: k(c).result.rps, reference: n(c)?.result.rps ?? null, target: { ratioAtLeast: ratio } }));
    rows.push(row(`p99 latency, c=${c}`, { kiln: k(c).result.latencyMs.p99, reference: n(c)?.result.latencyMs.p99 ?? null, unit: 'ms' }));
  }
  rows.push(row('server CPU per request, c=64', { kiln: (k(64).serverCpuS * 1e6) / k(64).result.requests, reference: n(64) ? (n(64).serverCpuS * 1e6) / n(64).result.requests : null, unit: 'µs', digits: 1 }));
  return {
    rows,
    details: [
      `${opts.fleet.toLocaleString('en-US')} machines seeded in ${seedS.toFixed(1)} s (53 groups, 4 profiles; 10% pinned to a profile), uniformly random MACs, ` +
        `${opts.seconds} s per run after a ${opts.warmupSeconds} s warm-up; autocannon, keep-alive. Script ${Buffer.byteLength(sample)} bytes; ` +
        `nginx serves a file of exactly that size at the same path (nginx ${opts.nginxWorkers} worker${opts.nginxWorkers === 1 ? '' : 's'}, Kiln ${opts.workers}). ` +
        'Every Kiln request also records a boot event (batched writes).',
      '',
      ...runsTable(runs),
    ],
    data: { seedS, scriptBytes: Buffer.byteLength(sample), runs: measured },
  };
}
