// Streams `bytes` of data up as one raw-body POST /api/v1/artifacts, honouring backpressure; the
// body repeats a 16 MiB random block, so the client reads no disk and holds little memory.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export async function uploadArtifact({ url, token, bytes }) {
  const block = randomBytes(16 * 2 ** 20);
  const u = new URL(`${url}/api/v1/artifacts`);
  const t0 = performance.now();
  const res = await new Promise((resolve, reject) => {
    const req = http.request({
      hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': bytes },
    }, (r) => {
      const parts = [];
      r.on('data', (c) => parts.push(c));
      r.once('end', () => resolve({ status: r.statusCode, body: Buffer.concat(parts).toString('utf8') }));
      r.once('error', reject);
    });
    req.once('error', reject);
    let sent = 0;
    const write = () => {
      while (sent < bytes) {
        const n = Math.min(block.length, bytes - sent);
        sent += n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    write();
  });
  const wallS = (performance.now() - t0) / 1000;
  let artifact = null;
  try {
    artifact = JSON.parse(res.body);
  } catch {
    // reported below as the body
  }
  const ok = (res.status === 201 || res.status === 200) && artifact?.size === bytes;
  return { status: res.status, ok, bytes, wallS, mbps: bytes / wallS / 1e6, sha256: artifact?.sha256 ?? null, error: ok ? null : res.body.slice(0, 500) };
}
