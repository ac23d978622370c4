// Closed-loop load on the script endpoint: autocannon (keep-alive, pipelining 1), a random
// machine's MAC on every request, the same request line for Kiln and for nginx's static file.
import autocannon from 'autocannon';
import { macOf } from '../mac-of.mjs';

export async function renderLoad({ url, machines, connections, seconds }) {
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    timeout: 30,
    requests: [{ setupRequest: (req) => ({ ...req, path: `/boot/ipxe?mac=${macOf(Math.floor(Math.random() * machines))}` }) }],
  });
  return {
    requests: r.requests.total,
    durationS: r.duration,
    rps: r.requests.total / r.duration,
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p99_9, max: r.latency.max },
    errors: r.errors + r.timeouts + r.non2xx,
    non2xx: r.non2xx,
    bodyBytes: r.throughput.total,
  };
}
