// Case 3, boot storm: N machines boot through Kiln (chain script, per-MAC script, kernel, initrd,
// callback), then the same request sequence and byte volume against nginx serving static copies.
import { link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startKiln } from '../kiln-server.mjs';
import { startNginx } from '../nginx-server.mjs';
import { runClient } from '../run-client.mjs';
import { linkBlob, seedStore } from '../seed-store.mjs';
import { makeArtifact } from '../make-artifact.mjs';
import { macOf } from '../mac-of.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';

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
  if (ctx.nginx.bin !== null) {
    nginx = await startNginx({ bin: ctx.nginx.bin, root: join(dir, 'www'), dir: join(dir, 'nginx'), workers: opts.nginxWorkers });
    const chain = await (await fetch(`${kiln.url}/boot.ipxe`)).text();
    // A machine outside the storm's range, so the sample fetch does not touch a storm machine.
    const script = await (await fetch(`${kiln.url}/boot/ipxe?mac=${macOf(opts.machines + 1)}`)).text();
    await staticCopy(join(dir, 'www'), kiln.url, nginx.url, { chain, script, kernel, initrd });
  }
  const mode = opts.rate === undefined ? `closed loop, ${opts.concurrency} machines at a time` : `open loop, ${opts.rate} new machines/s`;
  const job = (server) => ({
    kind: 'storm', client: opts.client, url: server.url, machines: opts.machines, concurrency: opts.concurrency, rate: opts.rate,
    kernelSize: kernel.size, initrdSize: initrd.size, maxSockets: opts.rate === undefined ? opts.concurrency : opts.maxSockets,
  });
  const m = {};
  let kilnPeakRss = NaN;
  try {
    for (const server of [kiln, nginx]) {
      if (server === null) continue;
      console.error(`storm: ${server.name}, ${opts.machines} machines, ${mode}`);
      m[server.name] = await runClient(job(server), server);
      if (server === kiln) kilnPeakRss = kiln.peakRssBytes();
    }
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
    row('script p99 while artifacts stream', { kiln: k.result.stepMs.script.p99 / 1000, reference: n ? n.result.stepMs.script.p99 / 1000 : null, unit: 's', target: { atMost: 0.5 }, digits: 3 }),
    row('aggregate throughput', { kiln: k.result.gbps, reference: n?.result.gbps ?? null, unit: 'GB/s' }),
    row('server CPU', { kiln: k.serverCpuS / (k.result.bytes / 1e9), reference: n ? n.serverCpuS / (n.result.bytes / 1e9) : null, unit: 'CPU-s/GB', digits: 3 }),
    row('server peak RSS', { kiln: kilnPeakRss / 1e6, unit: 'MB', digits: 0 }),
  ];
  const runs = Object.entries(m).map(([name, x]) => ({
    label: `${opts.machines} machines`, server: name,
    figure: `makespan ${fmt(x.result.makespanS)} s, ${fmt(x.result.gbps)} GB/s, machine p50/p99/max ${fmt(x.result.machineS.p50)}/${fmt(x.result.machineS.p99)}/${fmt(x.result.machineS.max)} s`,
    latency: `script ${fmt(x.result.stepMs.script.p50)} / ${fmt(x.result.stepMs.script.p99)} / ${fmt(x.result.stepMs.script.p999)}`,
    ...cpuColumns(x), errors: x.result.failed,
  }));
  const steps = ['| server | step | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|'];
  for (const [name, x] of Object.entries(m)) for (const [step, s] of Object.entries(x.result.stepMs)) steps.push(`| ${name} | ${step} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.max)} |`);
  const errors = Object.entries(m).filter(([, x]) => x.result.errors.total > 0).map(([name, x]) => `${name}: ${JSON.stringify(x.result.errors.top)}`);
  return {
    rows,
    details: [
      `${opts.machines.toLocaleString('en-US')} machines, ${mode}; each: /boot.ipxe, its /boot/ipxe?mac= script, kernel ${opts.kernelMiB} MiB, initrd ${opts.initrdMiB} MiB, ` +
        `callback (${fmt((opts.machines * (kernel.size + initrd.size)) / 1e9)} GB in all). Client: ${opts.client}, keep-alive pool (real iPXE opens a connection per file). ` +
        'nginx gets the same request sequence: Kiln\'s chain script and one rendered script as static files, the same artifact inodes. ' +
        `The storm client is one Node process on the same 2 cores: its CPU (client column) is CPU the servers did not get.`,
      '',
      ...runsTable(runs),
      '',
      ...steps,
      ...(errors.length > 0 ? ['', 'Errors:', ...errors.map((e) => `- ${e}`)] : []),
    ],
    data: { kernel: { size: kernel.size }, initrd: { size: initrd.size }, kilnPeakRssBytes: kilnPeakRss, runs: m },
  };
}
