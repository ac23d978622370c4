// Case 3, boot storm: N machines boot through Kiln (chain script, per-MAC script, kernel, initrd,
// callback), then the same request sequence and byte volume against nginx serving static copies.
// Then, when s3rver is installed, a smaller storm through Kiln proxying its artifacts from S3,
// against nginx again at that size.
import { createReadStream } from 'node:fs';
import { link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3BlobStore } from '../../dist/blobs/s3/s3-blob-store.js';
import { wasInterrupted } from '../cleanup.mjs';
import { startKiln } from '../kiln-server.mjs';
import { startNginx } from '../nginx-server.mjs';
import { runClient, startSideClient } from '../run-client.mjs';
import { s3rverMissing, startS3rver } from '../s3-server.mjs';
import { linkBlob, seedStore } from '../seed-store.mjs';
import { makeArtifact } from '../make-artifact.mjs';
import { macOf } from '../mac-of.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';

const S3_BUCKET = 'kiln-bench';
/** The script probe asks every 50 ms (see bench/jobs/script-probe.mjs). */
const PROBE_INTERVAL_MS = 50;
const S3_PREFIX = 'storm';
// Kiln starts in seconds. A cluster worker that cannot open its blob store reports it and stays
// up, so the primary waits forever: a broken S3 setup must not stall the whole run (that Kiln
// is left to the run's cleanup, which stops it at the end).
const S3_KILN_START_TIMEOUT_MS = 60_000;

/** nginx's static tree: Kiln's own chain script and a Kiln-rendered boot script, re-pointed at nginx. */
async function staticCopy(www, kilnUrl, nginxUrl, { chain, script, kernel, initrd }) {
  const repoint = (s) => s.replaceAll(kilnUrl, nginxUrl);
  await mkdir(join(www, 'boot'), { recursive: true });
  await writeFile(join(www, 'boot.ipxe'), repoint(chain));
  await writeFile(join(www, 'boot', 'ipxe'), repoint(script));
  await writeFile(join(www, 'boot', 'callback'), JSON.stringify({ machine: 'm-0', recorded: 'callback', state: 'booted' }));
  for (const [a, name] of [[kernel, 'vmlinuz'], [initrd, 'initrd.img']]) {
    await mkdir(join(www, 'boot', 'artifacts', a.sha256), { recursive: true });
    await link(a.path, join(www, 'boot', 'artifacts', a.sha256, name));
  }
}

/** s3rver serves every byte from JavaScript: a tenth of the storm (at least 50 machines, never more than the storm). */
const s3Machines = (machines) => Math.min(machines, Math.max(50, Math.round(machines / 10)));

const describeMode = (opts, machines) => (opts.rate === undefined
  ? `closed loop, ${Math.min(opts.concurrency, machines)} machines at a time`
  : `open loop, ${opts.rate} new machines/s`);

function stormJob(opts, server, machines, { kernel, initrd }) {
  const concurrency = Math.min(opts.concurrency, machines);
  return {
    kind: 'storm', client: opts.client, url: server.url, machines, concurrency, rate: opts.rate,
    kernelSize: kernel.size, initrdSize: initrd.size, maxSockets: opts.rate === undefined ? concurrency : opts.maxSockets,
  };
}

function runsOf(m, label) {
  return Object.entries(m).map(([name, x]) => ({
    label, server: name,
    figure: `makespan ${fmt(x.result.makespanS)} s, ${fmt(x.result.gbps)} GB/s, machine p50/p99/max ${fmt(x.result.machineS.p50)}/${fmt(x.result.machineS.p99)}/${fmt(x.result.machineS.max)} s`,
    latency: `script ${fmt(x.result.stepMs.script.p50)} / ${fmt(x.result.stepMs.script.p99)} / ${fmt(x.result.stepMs.script.p999)}`,
    ...cpuColumns(x), errors: x.result.failed,
  }));
}

function stepsTable(m) {
  const steps = ['| server | step | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|'];
  for (const [name, x] of Object.entries(m)) for (const [step, s] of Object.entries(x.result.stepMs)) steps.push(`| ${name} | ${step} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.max)} |`);
  return steps;
}

function errorLines(m) {
  const errors = Object.entries(m).filter(([, x]) => x.result.errors.total > 0).map(([name, x]) => `${name}: ${JSON.stringify(x.result.errors.top)}`);
  return errors.length > 0 ? ['', 'Errors:', ...errors.map((e) => `- ${e}`)] : [];
}

/** `promise`, or an error naming `what` once `ms` have passed (an unref'd timer: it never holds the bench open). */
function within(ms, promise, what) {
  const late = sleep(ms, undefined, { ref: false }).then(() => {
    throw new Error(`${what} within ${ms / 1000} s`);
  });
  return Promise.race([promise, late]);
}

/** Puts the artifacts into the bucket through Kiln's own S3 blob store: the keys `kiln serve --blob-url` reads. */
async function uploadToS3(s3, artifacts) {
  const store = await S3BlobStore.open({ endpoint: s3.endpoint, region: s3.region, credentials: s3.credentials, bucket: S3_BUCKET, prefix: S3_PREFIX, forcePathStyle: true });
  try {
    for (const a of artifacts) await store.put(createReadStream(a.path), { expectedSha256: a.sha256, expectedSize: a.size });
  } finally {
    await store.close();
  }
}

/**
 * The S3 variant: a second Kiln whose artifacts live only in s3rver's bucket, streaming them
 * (--boot-artifact-delivery proxy), then nginx (still serving the main storm's static tree) with
 * the same machines and bytes. Resolves the runs by server name and s3rver's CPU seconds.
 */
async function s3ProxyStorm(ctx, { dir, machines, artifacts, nginx }) {
  const { opts } = ctx;
  const { kernel, initrd } = artifacts;
  await mkdir(join(dir, 's3'), { recursive: true });
  const s3 = await startS3rver({ directory: join(dir, 's3') });
  const m = {};
  let s3rverCpuS = NaN;
  try {
    await s3.createBucket(S3_BUCKET);
    await uploadToS3(s3, [kernel, initrd]);
    const dataDir = join(dir, 'kiln-s3');
    await mkdir(dataDir, { recursive: true });
    await seedStore(dataDir, { machines, kernel, initrd });
    const kiln = await within(S3_KILN_START_TIMEOUT_MS, startKiln({
      repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers,
      extraArgs: ['--blob-url', `s3://${S3_BUCKET}/${S3_PREFIX}`, '--s3-endpoint', s3.endpoint, '--s3-region', s3.region, '--s3-force-path-style', 'true', '--boot-artifact-delivery', 'proxy'],
      env: { KILN_S3_ACCESS_KEY_ID: s3.credentials.accessKeyId, KILN_S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey },
    }), 'Kiln with the S3 blob store was not ready');
    try {
      // Serving a byte costs Kiln's CPU and s3rver's: the server columns count both.
      const proxy = { ...kiln, cpuSeconds: () => kiln.cpuSeconds() + s3.cpuSeconds() };
      console.error(`storm: kiln, S3 proxy, ${machines} machines, ${describeMode(opts, machines)}`);
      const s3Before = s3.cpuSeconds();
      m['kiln + s3rver'] = await runClient(stormJob(opts, proxy, machines, artifacts), proxy);
      s3rverCpuS = s3.cpuSeconds() - s3Before;
    } finally {
      await kiln.stop();
    }
  } finally {
    await s3.stop();
  }
  if (nginx !== null) {
    console.error(`storm: nginx, ${machines} machines, ${describeMode(opts, machines)}`);
    m.nginx = await runClient(stormJob(opts, nginx, machines, artifacts), nginx);
  }
  return { runs: m, s3rverCpuS };
}

/** The S3 variant's rows, details and data; a failure is reported there, never thrown over the main storm's results. */
async function s3Section(ctx, { dir, artifacts, nginx }) {
  const missing = s3rverMissing();
  if (missing !== null) {
    console.error(`storm: S3 proxy variant skipped: s3rver cannot be loaded (${missing}); install the dev dependencies (npm install) to run it`);
    return { rows: [], details: ['', `S3 proxy variant skipped: s3rver cannot be loaded (${missing}).`], data: { skipped: missing } };
  }
  const { opts } = ctx;
  const machines = s3Machines(opts.machines);
  const title = `S3 proxy (${machines} machines)`;
  const intro = `Kiln with \`--blob-url s3://${S3_BUCKET}/${S3_PREFIX} --boot-artifact-delivery proxy\`, its artifacts only in s3rver (path-style, loopback, its own process), ` +
    `streaming them to ${machines.toLocaleString('en-US')} machines, ${describeMode(opts, machines)}, the same boot sequence as above; nginx then serves the same machines and bytes from its static copies. ` +
    's3rver is a JavaScript mock server: these numbers show that the proxy path holds up under a storm and what it costs here, not what a real object store would do. ' +
    'The kiln + s3rver server CPU counts both processes.';
  try {
    const { runs: m, s3rverCpuS } = await s3ProxyStorm(ctx, { dir, machines, artifacts, nginx });
    const k = m['kiln + s3rver'];
    const n = m.nginx;
    return {
      rows: [
        row(`${title}: makespan`, { kiln: k.result.makespanS, reference: n?.result.makespanS ?? null, unit: 's', target: { ratioAtMost: 1.2 } }),
        row('S3 proxy: failed machines', { kiln: k.result.failed, reference: n?.result.failed ?? null, target: { atMost: 0 }, digits: 0 }),
        row('S3 proxy: aggregate throughput', { kiln: k.result.gbps, reference: n?.result.gbps ?? null, unit: 'GB/s' }),
      ],
      details: [
        '', `### ${title}`, '',
        `${intro} Of the server CPU, s3rver used ${fmt(s3rverCpuS)} s (${fmt((s3rverCpuS / k.wallS) * 100, 0)} % of a core).`,
        '',
        ...runsTable(runsOf(m, `${machines} machines`)),
        '',
        ...stepsTable(m),
        ...errorLines(m),
      ],
      data: { machines, s3rverCpuS, runs: m },
    };
  } catch (err) {
    if (wasInterrupted()) throw err;
    console.error(`storm: S3 proxy variant failed: ${err.stack ?? err}`);
    const failed = (metric) => row(`${metric}: failed to run, see details`, { kiln: null });
    return {
      rows: [failed(`${title}: makespan`), failed('S3 proxy: failed machines'), failed('S3 proxy: aggregate throughput')],
      details: ['', `### ${title}`, '', intro, '', `The S3 proxy variant failed: ${String(err.message ?? err).replaceAll('\n', ' ')}`],
      data: { machines, error: String(err.stack ?? err) },
    };
  }
}

/** A probe's p99 in seconds; null when it failed or got no answers (then the row says so). */
const probeP99 = (p) => (p === undefined || p.failed !== undefined || p.errors > 0 || p.ms.count === 0 ? null : p.ms.p99 / 1000);

export async function stormCase(ctx) {
  const { opts } = ctx;
  const dir = join(ctx.workDir, 'storm');
  const dataDir = join(dir, 'kiln');
  await mkdir(join(dir, 'files'), { recursive: true });
  await mkdir(dataDir, { recursive: true });
  const kernel = await makeArtifact(join(dir, 'files', 'vmlinuz'), opts.kernelMiB * 2 ** 20);
  const initrd = await makeArtifact(join(dir, 'files', 'initrd.img'), opts.initrdMiB * 2 ** 20);
  await seedStore(dataDir, { machines: opts.machines, kernel, initrd });
  await linkBlob(dataDir, kernel.path, kernel.sha256);
  await linkBlob(dataDir, initrd.path, initrd.sha256);

  const kiln = await startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: opts.workers });
  let nginx = null;
  const m = {};
  const probes = {};
  let kilnPeakRss = NaN;
  let s3Proxy = null;
  try {
    if (ctx.nginx.bin !== null) {
      nginx = await startNginx({ bin: ctx.nginx.bin, root: join(dir, 'www'), dir: join(dir, 'nginx'), workers: opts.nginxWorkers });
      const chain = await (await fetch(`${kiln.url}/boot.ipxe`)).text();
      // A machine outside the storm's range, so the sample fetch does not touch a storm machine.
      const script = await (await fetch(`${kiln.url}/boot/ipxe?mac=${macOf(opts.machines + 1)}`)).text();
      await staticCopy(join(dir, 'www'), kiln.url, nginx.url, { chain, script, kernel, initrd });
    }
    for (const server of [kiln, nginx]) {
      if (server === null) continue;
      console.error(`storm: ${server.name}, ${opts.machines} machines, ${describeMode(opts, opts.machines)}`);
      const probe = startSideClient({ kind: 'probe', url: server.url, machines: opts.machines, intervalMs: PROBE_INTERVAL_MS });
      try {
        m[server.name] = await runClient(stormJob(opts, server, opts.machines, { kernel, initrd }), server);
      } finally {
        probes[server.name] = await probe.stop().catch((err) => ({ failed: String(err.message ?? err) }));
      }
      if (server === kiln) kilnPeakRss = kiln.peakRssBytes();
    }
    await kiln.stop();
    // nginx stays up: its static tree already points at it for the S3 variant's reference run.
    s3Proxy = await s3Section(ctx, { dir, artifacts: { kernel, initrd }, nginx });
  } finally {
    await kiln.stop();
    await nginx?.stop();
  }
  const k = m.kiln;
  const n = m.nginx;
  const fairness = (x) => (x === undefined ? null : x.result.machineS.p99 / x.result.machineS.p50);
  const rows = [
    row('makespan', { kiln: k.result.makespanS, reference: n?.result.makespanS ?? null, unit: 's', target: { ratioAtMost: 1.2 } }),
    row('failed machines', { kiln: k.result.failed, reference: n?.result.failed ?? null, target: { atMost: 0 }, digits: 0 }),
    row('slowest 1% vs median (machine p99/p50)', { kiln: fairness(k), reference: fairness(n), target: { atMost: 1.2 } }),
    row('script p99 while artifacts stream (probe)', { kiln: probeP99(probes.kiln), reference: n ? probeP99(probes.nginx) : null, unit: 's', target: { atMost: 0.5 }, digits: 3 }),
    row('script p99 seen by the storm client (its own lag included)', { kiln: k.result.stepMs.script.p99 / 1000, reference: n ? n.result.stepMs.script.p99 / 1000 : null, unit: 's', digits: 3 }),
    row('aggregate throughput', { kiln: k.result.gbps, reference: n?.result.gbps ?? null, unit: 'GB/s' }),
    row('server CPU', { kiln: k.serverCpuS / (k.result.bytes / 1e9), reference: n ? n.serverCpuS / (n.result.bytes / 1e9) : null, unit: 'CPU-s/GB', digits: 3 }),
    row('server peak RSS', { kiln: kilnPeakRss / 1e6, unit: 'MB', digits: 0 }),
    ...s3Proxy.rows,
  ];
  return {
    rows,
    details: [
      `${opts.machines.toLocaleString('en-US')} machines, ${describeMode(opts, opts.machines)}; each: /boot.ipxe, its /boot/ipxe?mac= script, kernel ${opts.kernelMiB} MiB, initrd ${opts.initrdMiB} MiB, ` +
        `callback (${fmt((opts.machines * (kernel.size + initrd.size)) / 1e9)} GB in all). Client: ${opts.client}, keep-alive pool (real iPXE opens a connection per file). ` +
        'nginx gets the same request sequence: Kiln\'s chain script and one rendered script as static files, the same artifact inodes. ' +
        `The storm client is one Node process on the same 2 cores: its CPU (client column) is CPU the servers did not get.`,
      '',
      ...runsTable(runsOf(m, `${opts.machines} machines`)),
      '',
      ...stepsTable(m),
      ...errorLines(m),
      '',
      `Script probe: a separate, otherwise idle client asks for a random storm machine's script every ${PROBE_INTERVAL_MS} ms on a new connection, while the storm runs. ` +
        'The storm client is one Node process receiving GB/s and its event loop lags by hundreds of milliseconds, so the script latencies it records are largely its own; the probe\'s are the server\'s.',
      '',
      '| server | probe requests | errors | p50 ms | p99 ms | max ms |',
      '|---|---|---|---|---|---|',
      ...Object.entries(probes).map(([name, p]) => (p.failed !== undefined
        ? `| ${name} | failed: ${p.failed} | | | | |`
        : `| ${name} | ${p.ms.count} | ${p.errors}${p.firstError ? ` (${p.firstError})` : ''} | ${fmt(p.ms.p50)} | ${fmt(p.ms.p99)} | ${fmt(p.ms.max)} |`)),
      ...s3Proxy.details,
    ],
    data: { kernel: { size: kernel.size }, initrd: { size: initrd.size }, kilnPeakRssBytes: kilnPeakRss, runs: m, probes, s3Proxy: s3Proxy.data },
  };
}
