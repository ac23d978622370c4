// Random Range reads: `connections` closed loops, each asking for a random 4 KiB-aligned 1 MiB
// slice of the artifact until the time is up (the access pattern of many machines resuming downloads).
import { createPool, ErrorTally } from './http-request.mjs';
import { summarize } from '../percentiles.mjs';

export async function rangeLoad({ client, url, size, chunk, connections, seconds }) {
  const pool = createPool(client, connections);
  const errors = new ErrorTally();
  const u = new URL(url);
  const ms = [];
  let bytes = 0;
  const slots = Math.floor((size - chunk) / 4096) + 1;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < deadline) {
      const start = Math.floor(Math.random() * slots) * 4096;
      try {
        const res = await pool.request(u, { headers: { range: `bytes=${start}-${start + chunk - 1}` } });
        bytes += res.bytes;
        ms.push(res.ms);
        if (res.status !== 206 || res.bytes !== chunk) errors.add(`status ${res.status}, ${res.bytes} of ${chunk} bytes`);
      } catch (err) {
        errors.add(err.message);
      }
    }
  }));
  const wallS = (performance.now() - t0) / 1000;
  pool.destroy();
  return { bytes, wallS, gbps: bytes / wallS / 1e9, requests: ms.length, rps: ms.length / wallS, latencyMs: summarize(ms), errors: errors.toJSON() };
}
