// Script latency as a lightly loaded client sees it, while the storm runs: one script request every
// `intervalMs`, each on a new connection (as iPXE does), in its own process. The storm client is one
// busy Node process receiving GB/s; its event loop lags by hundreds of ms (measured: p99 0.5-0.7 s),
// so the latencies it records are mostly its own. This probe's loop is idle between requests, so what
// it measures is the server: accept, request, response.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { macOf } from '../mac-of.mjs';
import { summarize } from '../percentiles.mjs';

function fetchOnce(url, timeoutMs) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
      res.once('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.once('error', reject);
  });
}

/** Runs until the parent sends { type: 'stop' }; open loop, so a slow answer does not thin the samples. */
export async function scriptProbe({ url, machines, intervalMs }) {
  let stopped = false;
  process.on('message', (m) => {
    if (m?.type === 'stop') stopped = true;
  });
  const ms = [];
  const errors = [];
  const pending = new Set();
  while (!stopped) {
    const target = `${url}/boot/ipxe?mac=${macOf(Math.floor(Math.random() * machines))}`;
    const p = fetchOnce(target, 30_000).then((t) => void ms.push(t), (err) => void errors.push(err.message));
    pending.add(p);
    void p.finally(() => pending.delete(p));
    await sleep(intervalMs);
  }
  await Promise.all(pending);
  return { ms: summarize(ms), errors: errors.length, firstError: errors[0] ?? null };
}
