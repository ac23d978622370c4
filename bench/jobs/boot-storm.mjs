// N simulated machines booting the way iPXE does: /boot.ipxe, the chained per-MAC script, the
// kernel and initrd it names, then the booted callback. Closed loop (`concurrency` machines at a
// time) or open loop (`rate` new machines per second, however many are still in flight).
// Keep-alive pools, unlike real iPXE's connection per file: this measures the server, not connects.
import { setInterval, clearInterval } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, ErrorTally } from './http-request.mjs';
import { macOf } from '../mac-of.mjs';
import { summarize } from '../percentiles.mjs';

/** What iPXE would expand in the chain URL: this NIC's MAC (hyphenated); nothing for unset settings. */
function expandChainUrl(template, mac) {
  return template.replace(/\$\{(?:net0|netX)\/mac:hexhyp\}/g, mac.replaceAll(':', '-')).replace(/\$\{[^}]*\}/g, '');
}

export async function bootStorm({ client, url, machines, concurrency, rate, kernelSize, initrdSize, maxSockets }) {
  const pool = createPool(client, maxSockets);
  const errors = new ErrorTally();
  const steps = { chain: [], script: [], kernel: [], initrd: [], callback: [] };
  const machineS = [];
  let bytes = 0;
  let done = 0;
  let failed = 0;
  let inFlight = 0;
  let peakInFlight = 0;

  async function get(step, target, expect, keepBody = false) {
    const res = await pool.request(target, { keepBody, timeoutMs: 300000 });
    bytes += res.bytes;
    steps[step].push(res.ms);
    if (res.status !== 200) throw new Error(`${step}: status ${res.status}`);
    if (expect !== undefined && res.bytes !== expect) throw new Error(`${step}: ${res.bytes} of ${expect} bytes`);
    return res.text;
  }

  async function boot(i, startedAt) {
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    const mac = macOf(i);
    try {
      const chain = await get('chain', `${url}/boot.ipxe`, undefined, true);
      const next = /chain --replace --autofree (\S+)/.exec(chain);
      if (next === null) throw new Error('chain: no chain line in /boot.ipxe');
      const script = await get('script', expandChainUrl(next[1], mac), undefined, true);
      const kernel = /^kernel (\S+)/m.exec(script);
      const initrd = /^initrd (\S+)/m.exec(script);
      if (kernel === null || initrd === null) throw new Error(`script: no kernel/initrd line in ${JSON.stringify(script.slice(0, 200))}`);
      await get('kernel', kernel[1], kernelSize);
      await get('initrd', initrd[1], initrdSize);
      await get('callback', `${url}/boot/callback?mac=${mac}&state=booted`);
      machineS.push((performance.now() - startedAt) / 1000);
    } catch (err) {
      failed++;
      errors.add(err.message);
    } finally {
      inFlight--;
      done++;
    }
  }

  const t0 = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    console.error(`  storm ${url}: ${done}/${machines} machines done, ${inFlight} in flight, ${failed} failed, ${(bytes / s / 1e9).toFixed(2)} GB/s over ${s.toFixed(0)} s`);
  }, 15000);
  try {
    if (rate === undefined) {
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(concurrency, machines) }, async () => {
        while (next < machines) {
          const i = next++;
          await boot(i, performance.now());
        }
      }));
    } else {
      // Open loop: machine i is due at i/rate s; its time counts from then, even if the client lags.
      const all = [];
      for (let i = 0; i < machines; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        all.push(boot(i, due));
      }
      await Promise.all(all);
    }
  } finally {
    clearInterval(progress);
    pool.destroy();
  }
  const makespanS = (performance.now() - t0) / 1000;
  return {
    machines,
    ok: machineS.length,
    failed,
    makespanS,
    bytes,
    gbps: bytes / makespanS / 1e9,
    machineS: summarize(machineS),
    stepMs: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, summarize(v)])),
    peakInFlight,
    errors: errors.toJSON(),
  };
}
