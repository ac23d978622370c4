// Child-process entry for the load generators. Runs the job given as JSON in argv[2] and reports
// over IPC when the load starts and what it measured, with its own CPU time: the client shares the
// server's cores, so its cost is reported, not hidden in the orchestrator.
import { renderLoad } from './jobs/render-load.mjs';
import { wholeFetch } from './jobs/whole-fetch.mjs';
import { rangeLoad } from './jobs/range-load.mjs';
import { bootStorm } from './jobs/boot-storm.mjs';
import { uploadArtifact } from './jobs/upload-artifact.mjs';
import { scriptProbe } from './jobs/script-probe.mjs';

const jobs = { render: renderLoad, whole: wholeFetch, range: rangeLoad, storm: bootStorm, upload: uploadArtifact, probe: scriptProbe };

const job = JSON.parse(process.argv[2]);
try {
  const run = jobs[job.kind];
  if (run === undefined) throw new Error(`unknown job ${job.kind}`);
  process.send({ type: 'start' });
  const cpu0 = process.cpuUsage();
  const result = await run(job);
  const cpu = process.cpuUsage(cpu0);
  process.send({ type: 'result', result, clientCpuS: (cpu.user + cpu.system) / 1e6 });
} catch (err) {
  process.send({ type: 'error', message: err.stack ?? String(err) });
}
process.disconnect();
