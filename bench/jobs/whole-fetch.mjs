// Whole-file downloads: `clients` parallel GETs of one artifact, `rounds` each, body discarded.
import { createPool, ErrorTally } from './http-request.mjs';
import { summarize } from '../percentiles.mjs';

export async function wholeFetch({ client, url, clients, rounds, size }) {
  const pool = createPool(client, clients);
  const errors = new ErrorTally();
  const ms = [];
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let r = 0; r < rounds; r++) {
      try {
        const res = await pool.request(url);
        bytes += res.bytes;
        ms.push(res.ms);
        if (res.status !== 200 || res.bytes !== size) errors.add(`status ${res.status}, ${res.bytes} of ${size} bytes`);
      } catch (err) {
        errors.add(err.message);
      }
    }
  }));
  const wallS = (performance.now() - t0) / 1000;
  pool.destroy();
  return { bytes, wallS, gbps: bytes / wallS / 1e9, perRequestMs: summarize(ms), errors: errors.toJSON() };
}
