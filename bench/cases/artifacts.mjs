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
import { SETTINGS } from '../../dist/server/config.js';

const DEFAULT_CACHE_MIB = SETTINGS.find((s) => s.key === 'boot.memoryCacheMiB').default;

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

  // iPXE passes the MAC on artifact URLs; Kiln records a boot event for each fetch.
  const url = (server) => `${server.url}${path}?mac=${macOf(0)}`;
  // Kiln twice: as configured by default (this artifact is larger than half the memory cache, so
  // it is read from the file), and with a memory cache that holds it, as an operator would size
  // it for a hot image. Each server gets one unmeasured round first: nginx reads from a warm page
  // cache, and Kiln's memory cache, once filled, stays filled.
  const cachedMiB = 2 * opts.artifactMiB + 64;
  const servers = [
    { key: 'kiln', label: 'kiln', start: () => startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers }) },
    { key: 'kiln-cached', label: `kiln, ${cachedMiB} MiB memory cache`, start: () => startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers, extraArgs: ['--boot-memory-cache-mib', String(cachedMiB)] }) },
  ];
  if (ctx.nginx.bin !== null) {
    const www = join(dir, 'www');
    await mkdir(join(www, 'boot', 'artifacts', big.sha256), { recursive: true });
    await link(big.path, join(www, 'boot', 'artifacts', big.sha256, 'vmlinuz'));
    servers.push({ key: 'nginx', label: 'nginx', start: () => startNginx({ bin: ctx.nginx.bin, root: www, dir: join(dir, 'nginx'), workers: opts.nginxWorkers }) });
  }
  const runs = [];
  const m = {};
  for (const { key, label, start } of servers) {
    const server = await start();
    try {
      console.error(`artifacts: ${label}, one unmeasured round, then ${opts.wholeClients} clients x ${opts.wholeRounds} whole downloads`);
      await runClient({ kind: 'whole', client: opts.client, url: url(server), clients: opts.wholeClients, rounds: 1, size: big.size }, server);
      const w = await runClient({ kind: 'whole', client: opts.client, url: url(server), clients: opts.wholeClients, rounds: opts.wholeRounds, size: big.size }, server);
      m[`${key}-whole`] = w;
      runs.push({ label: `${opts.wholeClients} x whole`, server: label, figure: `${fmt(w.result.gbps)} GB/s, ${fmt(w.serverCpuS / (w.result.bytes / 1e9), 3)} CPU-s/GB`, latency: `${fmt(w.result.perRequestMs.p50)} / ${fmt(w.result.perRequestMs.p99)} / -`, ...cpuColumns(w), errors: w.result.errors.total });
      console.error(`artifacts: ${label}, random 1 MiB ranges, ${opts.rangeConnections} connections, ${opts.seconds} s`);
      const r = await runClient({ kind: 'range', client: opts.client, url: url(server), size: big.size, chunk: 2 ** 20, connections: opts.rangeConnections, seconds: opts.seconds }, server);
      m[`${key}-range`] = r;
      runs.push({ label: `1 MiB ranges, c=${opts.rangeConnections}`, server: label, figure: `${fmt(r.result.gbps)} GB/s (${fmt(r.result.rps)} req/s), ${fmt(r.serverCpuS / (r.result.bytes / 1e9), 3)} CPU-s/GB`, latency: `${fmt(r.result.latencyMs.p50)} / ${fmt(r.result.latencyMs.p99)} / ${fmt(r.result.latencyMs.p999)}`, ...cpuColumns(r), errors: r.result.errors.total });
    } finally {
      await server.stop();
    }
  }
  const cpuPerGb = (x) => (x === undefined ? null : x.serverCpuS / (x.result.bytes / 1e9));
  const rows = [
    row(`whole file, ${opts.wholeClients} clients`, { kiln: m['kiln-whole'].result.gbps, reference: m['nginx-whole']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.9 } }),
    row(`1 MiB ranges, c=${opts.rangeConnections}`, { kiln: m['kiln-range'].result.gbps, reference: m['nginx-range']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.7 } }),
    row('server CPU, whole file', { kiln: cpuPerGb(m['kiln-whole']), reference: cpuPerGb(m['nginx-whole']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
    row('server CPU, ranges', { kiln: cpuPerGb(m['kiln-range']), reference: cpuPerGb(m['nginx-range']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
    row(`memory cache ${cachedMiB} MiB: whole file`, { kiln: m['kiln-cached-whole'].result.gbps, reference: m['nginx-whole']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.9 } }),
    row(`memory cache ${cachedMiB} MiB: 1 MiB ranges`, { kiln: m['kiln-cached-range'].result.gbps, reference: m['nginx-range']?.result.gbps ?? null, unit: 'GB/s', target: { ratioAtLeast: 0.7 } }),
    row(`memory cache ${cachedMiB} MiB: server CPU, whole file`, { kiln: cpuPerGb(m['kiln-cached-whole']), reference: cpuPerGb(m['nginx-whole']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
    row(`memory cache ${cachedMiB} MiB: server CPU, ranges`, { kiln: cpuPerGb(m['kiln-cached-range']), reference: cpuPerGb(m['nginx-range']), unit: 'CPU-s/GB', target: { atMost: 0.5 }, digits: 3 }),
  ];
  const errors = Object.entries(m).filter(([, x]) => x.result.errors.total > 0).map(([k, x]) => `${k}: ${JSON.stringify(x.result.errors.top)}`);
  return {
    rows,
    details: [
      `A ${opts.artifactMiB} MiB artifact (page cache warm; Kiln's blob and nginx's file are one inode; each server gets one unmeasured round of whole downloads first). Kiln runs twice: by default (artifacts up to half of boot.memoryCacheMiB, ${DEFAULT_CACHE_MIB} MiB per process, are held in memory: ${opts.artifactMiB * 2 > DEFAULT_CACHE_MIB ? 'this one is read from its file for every download' : 'this one too'}) and with --boot-memory-cache-mib ${cachedMiB} (held in memory). Whole: ${opts.wholeClients} parallel clients, ` +
        `${opts.wholeRounds} download(s) each; ranges: random 4 KiB-aligned 1 MiB reads for ${opts.seconds} s. Client: ${opts.client} (see bench/jobs/http-request.mjs). ` +
        'On loopback part of the receive cost is charged to the sender, which flatters neither side in particular.',
      '',
      ...runsTable(runs),
      ...(errors.length > 0 ? ['', 'Errors:', ...errors.map((e) => `- ${e}`)] : []),
    ],
    data: { artifact: { size: big.size, sha256: big.sha256 }, runs: m },
  };
}
