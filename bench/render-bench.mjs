// Micro-benchmark of the boot hot path: per-MAC /boot/ipxe renders against a real `kiln serve`
// (SQLite store with N machines, groups, profiles), beside a reference measured in the same run:
// a bare node:http server answering a static body of the same size. Reports ratios, never fails.
//
//   npm run bench -- [--machines 20000] [--concurrency 64] [--seconds 8] [--quick]
// The full boot-storm benchmark against nginx is its own piece of work; this one guards the render path.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../dist/store/sqlite/sqlite-store.js';

const { values: args } = parseArgs({
  options: {
    machines: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '8' },
    quick: { type: 'boolean', default: false },
  },
});
const N = args.quick ? 2000 : Number(args.machines);
const C = Number(args.concurrency);
const SECONDS = args.quick ? 3 : Number(args.seconds);
const macOf = (i) => `52:54:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

async function seed(dataDir) {
  const store = await openSqliteStore({ path: join(dataDir, 'kiln.db') });
  const at = new Date().toISOString();
  const sha = (c) => c.repeat(64);
  await store.transaction(async (tx) => {
    for (const c of ['a', 'b']) await tx.putArtifact({ sha256: sha(c), size: 1, mediaType: 'application/octet-stream', createdAt: at });
    await tx.createImage({ name: 'debian', description: '', labels: {}, createdAt: at, updatedAt: at, deletedAt: null, revision: 1 });
    await tx.createVersion({ id: 'v1', image: 'debian', version: '12', arch: 'x86_64', cmdline: 'console=ttyS0 quiet', metadata: {}, createdAt: at, artifacts: [
      { name: 'vmlinuz', role: 'kernel', sha256: sha('a'), size: 1, mediaType: 'application/octet-stream' },
      { name: 'initrd.img', role: 'initrd', sha256: sha('b'), size: 1, mediaType: 'application/octet-stream' },
    ] });
    await tx.moveChannel({ image: 'debian', name: 'stable', toVersion: '12', action: 'promote', actor: 'bench', at }, undefined);
    for (const p of ['worker', 'storage', 'gpu', 'default']) {
      await tx.createProfile({ name: p, description: '', image: { image: 'debian', channel: 'stable' }, kernelArgs: Array.from({ length: 10 }, (_, i) => `arg${i}=${p}`), template: null, createdAt: at, updatedAt: at, revision: 1 });
    }
    await tx.createGroup({ name: 'default', description: '', selectors: {}, profile: 'default', createdAt: at, updatedAt: at, revision: 1 });
    for (let r = 0; r < 50; r++) await tx.createGroup({ name: `rack-${r}`, description: '', selectors: { labels: { rack: `r${r}` } }, profile: r % 3 === 0 ? 'gpu' : 'worker', createdAt: at, updatedAt: at, revision: 1 });
    await tx.createGroup({ name: 'rack-0-storage', description: '', selectors: { labels: { rack: 'r0', role: 'storage' } }, profile: 'storage', createdAt: at, updatedAt: at, revision: 1 });
    for (let i = 0; i < N; i++) {
      await tx.createMachine({ id: `m-${i}`, macs: [macOf(i)], uuid: null, serial: null, hostname: `node-${i}`, labels: { rack: `r${i % 50}`, ...(i % 7 === 0 ? { role: 'storage' } : {}) }, arch: 'x86_64', firmware: 'uefi', state: 'ready', profile: i % 10 === 0 ? 'worker' : null, nextBoot: null, lastSeenAt: null, createdAt: at, updatedAt: at, revision: 1 });
    }
  });
  await store.close();
}

function startKiln(dataDir) {
  // KILN_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the server under load.
  const nodeArgs = (process.env.KILN_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, 'bin/kiln.js', 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /admin API (http:\/\/[^/\s]+)\/api\/v1/.exec(err);
      if (m) resolve({ url: m[1], child });
    });
    child.on('exit', (code) => reject(new Error(`kiln exited ${code}: ${err}`)));
  });
}

/** The reference: a bare node:http server in its own process answering the same bytes. */
function startReference(bodyFile) {
  const code = `const b=require('fs').readFileSync(${JSON.stringify(bodyFile)});require('http').createServer((q,r)=>{r.writeHead(200,{'content-type':'text/plain; charset=utf-8','content-length':b.length,'cache-control':'no-store'});r.end(b)}).listen(0,'127.0.0.1',4096,function(){console.log(this.address().port)})`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout.once('data', (d) => resolve({ url: `http://127.0.0.1:${String(d).trim()}`, child })));
}

function cpuSeconds(pid) {
  // utime + stime of the server process, in clock ticks (100 per second on Linux).
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** autocannon (closed loop, keep-alive) with a fresh random path per request; server CPU read from /proc. */
async function load(base, pathFor, seconds, concurrency, pid) {
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const r = await autocannon({
    url: base,
    connections: concurrency,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, path: pathFor() }) }],
  });
  const cpu = pid ? cpuSeconds(pid) - cpu0 : NaN;
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p99_9 ?? r.latency.p999, errors: r.errors + r.non2xx, cpuUsPerReq: (cpu * 1e6) / Math.max(1, r.requests.total) };
}

const dataDir = await mkdtemp(join(tmpdir(), 'kiln-bench-'));
try {
  const t0 = performance.now();
  await seed(dataDir);
  console.error(`seeded ${N} machines in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const { url, child } = await startKiln(dataDir);
  const rand = () => `/boot/ipxe?mac=${macOf(Math.floor(Math.random() * N))}`;
  // Warm-up: touches every machine once so the measured run sees the steady state of a storm.
  await load(url, rand, 2, C);
  const sample = await (await fetch(`${url}${rand()}`)).text();
  const kiln = await load(url, rand, SECONDS, C, child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await writeFile(join(dataDir, 'sample.ipxe'), sample);
  const ref = await startReference(join(dataDir, 'sample.ipxe'));
  await load(ref.url, () => '/x', 1, C);
  const reference = await load(ref.url, () => '/x', SECONDS, C, ref.child.pid);
  ref.child.kill();
  const fmt = (n) => (Number.isFinite(n) ? n.toFixed(n >= 100 ? 0 : 2) : '-');
  const rows = [
    ['Kiln /boot/ipxe (per-MAC render, SQLite, cached)', kiln],
    ['reference: node:http static body, same size', reference],
  ];
  const out = [
    `# Render micro-benchmark (${new Date().toISOString()})`,
    '',
    `machines ${N}, concurrency ${C}, ${SECONDS} s per run, script ${sample.length} bytes, ${cpus().length} cores, Node ${process.version}`,
    '',
    '| server | req/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU µs/req |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(([name, r]) => `| ${name} | ${fmt(r.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.p999)} | ${r.errors} | ${fmt(r.cpuUsPerReq)} |`),
    '',
    `ratio Kiln / reference: ${(kiln.rps / reference.rps).toFixed(2)}x req/s, ${(kiln.cpuUsPerReq / reference.cpuUsPerReq).toFixed(2)}x CPU per request`,
  ].join('\n');
  console.log(out);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
