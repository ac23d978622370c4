// Case 2, artifacts: one large artifact fetched whole by parallel clients, and random 1 MiB Range
// reads, through Kiln's /boot/artifacts path and from nginx (sendfile) serving the same file.
import { link, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startKiln } from '../kiln-server.mjs';
import { startNginx } from '../nginx-server.mjs';
import { runClient } from '../run-client.mjs';
import { linkBlob, seedStore } from '../seed-store.mjs';
import { makeArtifact } from '../make-artifact.mjs';
import { macOf } from '../mac-of.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';

export async function artifactsCase(ctx) {
  const { opts } = ctx;
  const dir = join(ctx.workDir, 'artifacts');
  const dataDir = join(dir, 'kiln');
  await mkdir(join(dir, 'files'), { recursive: true });
  await mkdir(dataDir, { recursive: true });
  console.error(`artifacts: writing a ${opts.artifactMiB} MiB artifact`);
  const big = await makeArtifact(join(dir, 'files', 'big.bin'), opts.artifactMiB * 2 ** 20);
  const small = await makeArtifact(join(dir, 'files', 'small.bin'), 4096);
  await seedStore(dataDir, { machines: 100, kernel: big, initrd: small });
  // One inode behind Kiln's blob and nginx's file: the same page cache serves both.
  await linkBlob(dataDir, big.path, big.sha256);
  await linkBlob(dataDir, small.path, small.sha256);
  const path = `/boot/artifacts/${big.sha256}/vmlinuz`;

  const kiln = await startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers });
  let nginx = null;
  if (ctx.nginx.bin !== null) {
    const www = join(dir, 'www');
    await mkdir(join(www, 'boot', 'artifacts', big.sha256), { recursive: true });
    await link(big.path, join(www, 'boot', 'artifacts', big.sha256, 'vmlinuz'));
    nginx = await startNginx({ bin: ctx.nginx.bin, root: www, dir: join(dir, 'nginx'), workers: opts.nginxWorkers });
  }
  // iPXE passes the MAC on artifact URLs; Kiln records a boot event for each fetch.
  const url = (server) => `${server.url}${path}?mac=${macOf(0)}`;
  const runs = [];
  const m = {};
  try {
    for (const server of [kiln, nginx]) {
      if (server === null) continue;
      console.error(`artifacts: ${server.name}, ${opts.wholeClients} clients x ${opts.wholeRounds} whole downloads`);
      const w = await runClient({ kind: 'whole', client: opts.client, url: url(server), clients: opts.wholeClients, rounds: opts.wholeRounds, size: big.size }, server);
      m[`${server.name}-whole`] = w;
      runs.push({ label: `${opts.wholeClients} x whole`, server: server.name, figure: `${fmt(w.result.gbps)} GB/s, ${fmt(w.serverCpuS / (w.result.bytes / 1e9), 3)} CPU-s/GB`, latency: `${fmt(w.result.perRequestMs.p50)} / ${fmt(w.result.perRequestMs.p99)} / -`, ...cpuColumns(w), errors: w.result.errors.total });
    }
    for (const server of [kiln, nginx]) {
      if (server === null) continue;
      console.error(`artifacts: ${server.name}, random 1 MiB ranges, ${opts.rangeConnections} connections, ${opts.seconds} s`);
      const r = await runClient({ kind: 'range', client: opts.client, url: url(server), size: big.size, chunk: 2 ** 20, connections: opts.rangeConnections, seconds: opts.seconds }, server);
      m[`${server.name}-range`] = r;
      runs.push({ label: `1 MiB ranges, c=${opts.rangeConnections}`, server: server.name, figure: `${fmt(r.result.gbps)} GB/s (${fmt(r.result.rps)} req/s), ${fmt(r.serverCpuS / (r.result.bytes / 1e9), 3)} CPU-s/GB`, latency: `${fmt(r.result.latencyMs.p50)} / ${fmt(r.result.latencyMs.p99)} / ${fmt(r.result.latencyMs.p999)}`, ...cpuColumns(r), errors: r.result.errors.total });
    }
  } finally {
    await kiln.stop();
    await nginx?.stop();
  }
  const cpuPerGb = (x) => (x === undefined ? null : x.serverCpuS / (x.result.bytes / 1e9));
  const rows = [
    row(`whole file, ${opts.wholeClients} clients`, { kiln: m['kiln-whole'].result.gbps, reference: m['nginx-whole']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.9 } }),
    row(`1 MiB ranges, c=${opts.rangeConnections}`, { kiln: m['kiln-range'].result.gbps, reference: m['nginx-range']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.7 } }),
    row('server CPU, whole file', { kiln: cpuPerGb(m['kiln-whole']), reference: cpuPerGb(m['nginx-whole']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
    row('server CPU, ranges', { kiln: cpuPerGb(m['kiln-range']), reference: cpuPerGb(m['nginx-range']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
  ];
  const errors = Object.entries(m).filter(([, x]) => x.result.errors.total > 0).map(([k, x]) => `${k}: ${JSON.stringify(x.result.errors.top)}`);
  return {
    rows,
    details: [
      `A ${opts.artifactMiB} MiB artifact (page cache warm; Kiln's blob and nginx's file are one inode). Whole: ${opts.wholeClients} parallel clients, ` +
        `${opts.wholeRounds} download(s) each; ranges: random 4 KiB-aligned 1 MiB reads for ${opts.seconds} s. Client: ${opts.client} (see bench/jobs/http-request.mjs). ` +
        'On loopback part of the receive cost is charged to the sender, which flatters neither side in particular.',
      '',
      ...runsTable(runs),
      ...(errors.length > 0 ? ['', 'Errors:', ...errors.map((e) => `- ${e}`)] : []),
    ],
    data: { artifact: { size: big.size, sha256: big.sha256 }, runs: m },
  };
}
