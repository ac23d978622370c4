// Case 4, upload: a large artifact streamed up through POST /api/v1/artifacts, against the disk's
// own write speed measured in the same run (dd with fdatasync into the same directory).
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startKiln } from '../kiln-server.mjs';
import { runClient } from '../run-client.mjs';
import { cpuColumns, fmt, row, runsTable } from '../report.mjs';
import { onCleanup } from '../cleanup.mjs';

function ddWrite(file, mib) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const dd = spawn('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fdatasync'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const forget = onCleanup(`dd ${dd.pid}`, () => dd.kill('SIGKILL'));
    let err = '';
    dd.stderr.on('data', (d) => (err += d));
    dd.once('exit', (code) => {
      void forget();
      if (code === 0) resolve((performance.now() - t0) / 1000);
      else reject(new Error(`dd failed (${code}): ${err}`));
    });
  });
}

export async function uploadCase(ctx) {
  const { opts } = ctx;
  const dataDir = join(ctx.workDir, 'upload', 'kiln');
  await mkdir(dataDir, { recursive: true });
  // One process: an upload is one stream in one process, and the RSS target is that process's
  // (more workers only add their own idle baseline to a process-tree sum).
  const kiln = await startKiln({ repoRoot: ctx.repoRoot, dataDir, nodeArgs: ctx.nodeArgs, workers: 1 });
  const bytes = opts.uploadMiB * 2 ** 20;
  let diskS;
  let up;
  let rssBefore;
  let peakRss;
  try {
    // Same filesystem and directory tree as Kiln's blobs; removed before Kiln writes.
    const ddFile = join(dataDir, 'blobs', 'dd-reference.bin');
    console.error(`upload: disk reference, dd ${opts.uploadMiB} MiB with fdatasync`);
    diskS = await ddWrite(ddFile, opts.uploadMiB);
    await rm(ddFile, { force: true });
    rssBefore = kiln.peakRssBytes();
    console.error(`upload: kiln, ${opts.uploadMiB} MiB through POST /api/v1/artifacts`);
    up = await runClient({ kind: 'upload', url: kiln.url, token: await kiln.adminToken(), bytes }, kiln);
    peakRss = kiln.peakRssBytes();
  } finally {
    await kiln.stop();
  }
  const diskMBps = bytes / diskS / 1e6;
  const r = up.result;
  const rows = [
    row('upload throughput', { kiln: r.ok ? r.mbps : NaN, reference: diskMBps, unit: 'MB/s', target: { ratioAtLeast: 0.8 }, digits: 0 }),
    row('server peak RSS during upload', { kiln: peakRss / 1e6, unit: 'MB', target: { below: 256 }, digits: 0 }),
  ];
  return {
    rows,
    details: [
      `${opts.uploadMiB} MiB raw body (application/octet-stream), one request; Kiln hashes (sha256), writes, fsyncs and renames. ` +
        `Reference: \`dd if=/dev/zero bs=1M count=${opts.uploadMiB} conv=fdatasync\` into Kiln's blob directory just before, ${fmt(diskS)} s. ` +
        `Kiln runs as one process here; its peak RSS before the upload: ${fmt(rssBefore / 1e6, 0)} MB (startup).` +
        (r.ok ? '' : ` Upload FAILED: status ${r.status}: ${r.error}`),
      '',
      ...runsTable([
        { label: `${opts.uploadMiB} MiB`, server: 'kiln', figure: `${fmt(r.mbps, 0)} MB/s in ${fmt(r.wallS)} s (status ${r.status})`, ...cpuColumns(up), errors: r.ok ? 0 : 1 },
      ]),
    ],
    data: { diskS, diskMBps, rssBeforeBytes: rssBefore, peakRssBytes: peakRss, run: up },
  };
}
