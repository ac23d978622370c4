// Entry of `npm run bench`: measures Kiln and nginx in one run on this machine (render, artifacts,
// boot storm, upload) and writes bench/results/<timestamp>.json and .md. Only ratios against
// references from the same run mean anything here; nothing fails on a timing.
//
//   node bench/run.mjs [--quick] [--only render,artifacts,storm,upload] [--machines 10000]
//     [--concurrency 500 | --rate <machines/s>] [--fleet 100000] [--seconds 10] [--client lean|node-http]
//   KILN_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles each Kiln server.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cleanUpOnSignals, onCleanup, runCleanups, wasInterrupted } from './cleanup.mjs';
import { ensureNginx } from './nginx-server.mjs';
import { machineFacts } from './proc-stats.mjs';
import { markdownReport } from './report.mjs';
import { renderCase } from './cases/render.mjs';
import { artifactsCase } from './cases/artifacts.mjs';
import { stormCase } from './cases/storm.mjs';
import { uploadCase } from './cases/upload.mjs';

const CASES = { render: renderCase, artifacts: artifactsCase, storm: stormCase, upload: uploadCase };

// Full sizes are the issue's; quick ones finish in under two minutes for a CI smoke test.
const SIZES = {
  full: { fleet: 100000, seconds: 10, warmupSeconds: 3, artifactMiB: 1024, wholeRounds: 2, machines: 10000, concurrency: 500, kernelMiB: 10, initrdMiB: 50, uploadMiB: 4096 },
  quick: { fleet: 20000, seconds: 3, warmupSeconds: 1, artifactMiB: 64, wholeRounds: 1, machines: 1000, concurrency: 100, kernelMiB: 1, initrdMiB: 5, uploadMiB: 256 },
};

const USAGE = `usage: node bench/run.mjs [options]
  --quick                 small sizes, short runs (under 2 minutes; a smoke test, never a verdict)
  --only <cases>          comma-separated: ${Object.keys(CASES).join(',')} (default: all)
  --fleet <n>             machines seeded for the render case (100000; quick 20000)
  --seconds <s>           duration of each render and range run (10; quick 3)
  --artifact-mib <n>      artifact size for the artifacts case (1024; quick 64)
  --machines <n>          boot storm machines (10000; quick 1000)
  --concurrency <n>       boot storm machines in flight, closed loop (500; quick 100)
  --rate <n>              boot storm open loop: new machines per second (instead of --concurrency)
  --max-sockets <n>       open loop: client connection cap (4096)
  --kernel-mib <n>        storm kernel size (10; quick 1)
  --initrd-mib <n>        storm initrd size (50; quick 5)
  --upload-mib <n>        upload size (4096; quick 256)
  --workers <n>           kiln serve --workers (processes; default: one per core)
  --nginx-workers <n>     nginx worker_processes (default: the same as --workers)
  --client lean|node-http HTTP client for bulk downloads (lean: see bench/jobs/http-request.mjs)
  --out <dir>             where results go (bench/results)
  --tmp-dir <dir>         where data directories and artifacts go (the OS temp dir)`;

function options() {
  const { values: v } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      fleet: { type: 'string' },
      seconds: { type: 'string' },
      'artifact-mib': { type: 'string' },
      machines: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      'max-sockets': { type: 'string', default: '4096' },
      'kernel-mib': { type: 'string' },
      'initrd-mib': { type: 'string' },
      'upload-mib': { type: 'string' },
      workers: { type: 'string' },
      'nginx-workers': { type: 'string' },
      client: { type: 'string', default: 'lean' },
      out: { type: 'string' },
      'tmp-dir': { type: 'string', default: tmpdir() },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = v.quick ? SIZES.quick : SIZES.full;
  const num = (name, fallback) => {
    if (v[name] === undefined) return fallback;
    const n = Number(v[name]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const only = (v.only ?? Object.keys(CASES).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of only) if (!(c in CASES)) throw new Error(`--only: unknown case ${c} (known: ${Object.keys(CASES).join(', ')})`);
  if (!['lean', 'node-http'].includes(v.client)) throw new Error('--client must be lean or node-http');
  return {
    quick: v.quick,
    only,
    fleet: num('fleet', base.fleet),
    seconds: num('seconds', base.seconds),
    warmupSeconds: base.warmupSeconds,
    artifactMiB: num('artifact-mib', base.artifactMiB),
    wholeClients: 8,
    wholeRounds: base.wholeRounds,
    rangeConnections: 64,
    machines: num('machines', base.machines),
    concurrency: num('concurrency', base.concurrency),
    rate: v.rate === undefined ? undefined : num('rate'),
    maxSockets: num('max-sockets'),
    kernelMiB: num('kernel-mib', base.kernelMiB),
    initrdMiB: num('initrd-mib', base.initrdMiB),
    uploadMiB: num('upload-mib', base.uploadMiB),
    workers: num('workers', cpus().length),
    nginxWorkers: num('nginx-workers', num('workers', cpus().length)),
    client: v.client,
    out: v.out,
    tmpDir: v['tmp-dir'],
  };
}

function kilnVersion(repoRoot) {
  const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
  let commit = 'commit unknown';
  try {
    const git = (...a) => execFileSync('git', a, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    commit = `commit ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') === '' ? '' : ' with uncommitted changes'}`;
  } catch {
    // not a git checkout
  }
  return { version, commit };
}

async function main() {
  const opts = options();
  const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'kiln.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does it for you)');
  cleanUpOnSignals();
  const startedAt = new Date().toISOString();
  const facts = machineFacts();
  const nginx = ensureNginx();
  if (nginx.bin === null) console.error(`nginx references skipped: ${nginx.reason}`);
  const kiln = kilnVersion(repoRoot);
  const versions = { node: process.version, nginx: nginx.bin === null ? null : `nginx ${nginx.version}`, kiln: kiln.version, commit: kiln.commit };
  const workDir = await mkdtemp(join(opts.tmpDir, 'kiln-bench-'));
  onCleanup(`temp dir ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
  const nodeArgs = (process.env.KILN_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const ctx = { opts, repoRoot, workDir, nginx, nodeArgs };

  const cases = [];
  for (const name of opts.only) {
    const t0 = performance.now();
    try {
      const c = await CASES[name](ctx);
      cases.push({ name, ...c, seconds: (performance.now() - t0) / 1000 });
    } catch (err) {
      if (wasInterrupted()) return;
      console.error(`case ${name} failed: ${err.stack ?? err}`);
      cases.push({ name, error: String(err.message ?? err), seconds: (performance.now() - t0) / 1000 });
    } finally {
      // Each case's data directory goes as soon as the case is done (a full run writes several GB).
      await rm(join(workDir, name), { recursive: true, force: true });
    }
    console.error(`case ${name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }

  const report = { startedAt, options: opts, facts, versions, nodeArgs, cases };
  const md = markdownReport(report);
  const outDir = opts.out ?? join(repoRoot, 'bench', 'results');
  await mkdir(outDir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-');
  const base = join(outDir, `${stamp}${opts.quick ? '-quick' : ''}`);
  await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(`${base}.md`, md);
  console.log(md);
  console.error(`results: ${base}.json and ${base}.md`);
}

try {
  await main();
} catch (err) {
  console.error(err.message ?? err);
  process.exitCode = 1;
} finally {
  await runCleanups();
}
