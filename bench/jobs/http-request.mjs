// HTTP/1.1 clients for the load generators, as keep-alive pools with one interface:
// pool.request(url, { method, headers, keepBody, timeoutMs }) -> { status, bytes, ms, text? }.
//
// 'lean' (default) reads each socket straight into one shared 1 MiB buffer (net `onread`) and only
// counts body bytes. Measured on this 2-core VM against nginx (8 x 1 GiB, sendfile): node:http's
// client received 1.09 GB/s at ~105% CPU, 8 curl processes 4.1-4.2 GB/s. A client that slow would
// cap both servers at its own speed and report every ratio near 1, so bulk bytes use the lean one.
// 'node-http' is node:http with an Agent, kept for comparison (--client node-http).
import http from 'node:http';
import { connect } from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Reused by every socket: each read is consumed synchronously before the next one can start. */
const readBuffer = Buffer.allocUnsafe(2 ** 20);

export function createPool(kind, maxSockets) {
  return kind === 'node-http' ? nodeHttpPool(maxSockets) : leanPool(maxSockets);
}

function nodeHttpPool(maxSockets) {
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });
  return {
    request(url, { method = 'GET', headers = {}, keepBody = false, timeoutMs = 120000 } = {}) {
      const u = typeof url === 'string' ? new URL(url) : url;
      const t0 = performance.now();
      return new Promise((resolve, reject) => {
        const req = http.request({ agent, hostname: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
          let bytes = 0;
          const parts = keepBody ? [] : null;
          res.on('data', (chunk) => {
            bytes += chunk.length;
            if (parts !== null) parts.push(chunk);
          });
          res.once('error', reject);
          res.once('aborted', () => reject(new Error(`response aborted after ${bytes} bytes`)));
          res.once('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - t0, text: parts === null ? undefined : Buffer.concat(parts).toString('utf8') }));
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no progress for ${timeoutMs / 1000} s`)));
        req.once('error', reject);
        req.end();
      });
    },
    destroy: () => agent.destroy(),
  };
}

/** Parses a response head; returns { status, length, close } or throws. */
function parseHead(head, method) {
  const lines = head.toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (m === null) throw new Error(`bad status line ${JSON.stringify(lines[0].slice(0, 80))}`);
  const status = Number(m[1]);
  let length = null;
  let close = lines[0].startsWith('HTTP/1.0');
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'content-length') length = Number(value);
    else if (name === 'connection') close = /close/i.test(value);
    else if (name === 'transfer-encoding' && !/^identity$/i.test(value)) throw new Error(`transfer-encoding ${value} is not supported by the lean client`);
  }
  if (method === 'HEAD' || status === 204 || status === 304) length = 0;
  if (length === null) throw new Error(`status ${status} without content-length`);
  return { status, length, close };
}

function leanPool(maxSockets) {
  const idle = new Map(); // "host:port" -> sockets
  const waiting = [];
  let open = 0;
  let destroyed = false;

  function openSocket(u) {
    open++;
    const conn = { socket: null, current: null, key: u.host };
    conn.socket = connect({
      host: u.hostname,
      port: Number(u.port),
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n, buf) => {
          if (conn.current === null) {
            conn.socket.destroy(new Error('unexpected bytes on an idle connection'));
            return;
          }
          conn.current.onData(buf, 0, n);
        },
      },
    });
    conn.socket.on('error', (err) => conn.current?.fail(err));
    conn.socket.on('close', () => {
      open--;
      const list = idle.get(conn.key);
      if (list !== undefined && list.includes(conn)) list.splice(list.indexOf(conn), 1);
      conn.current?.fail(new Error('connection closed before the response was complete'));
      drain();
    });
    conn.socket.on('timeout', () => conn.socket.destroy(new Error('no progress within the timeout')));
    return conn;
  }

  function release(conn, reusable) {
    conn.current = null;
    if (!reusable || destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.socket.setTimeout(0);
    if (!idle.has(conn.key)) idle.set(conn.key, []);
    idle.get(conn.key).push(conn);
    drain();
  }

  function drain() {
    while (waiting.length > 0) {
      const w = waiting[0];
      const list = idle.get(w.u.host);
      if (list !== undefined && list.length > 0) {
        waiting.shift();
        w.start(list.pop(), true);
      } else if (open < maxSockets) {
        waiting.shift();
        w.start(openSocket(w.u), false);
      } else return;
    }
  }

  function exchange(u, opts, t0, retried) {
    const { method = 'GET', headers = {}, keepBody = false, timeoutMs = 120000 } = opts;
    return new Promise((resolve, reject) => {
      const w = {
        u,
        start(conn, reused) {
          let head = [];
          let headBytes = 0;
          let parsed = null;
          let remaining = 0;
          let bytes = 0;
          let received = false;
          const parts = keepBody ? [] : null;
          const finish = (leftover) => {
            conn.current = null;
            release(conn, !parsed.close && leftover === 0);
            resolve({ status: parsed.status, bytes, ms: performance.now() - t0, text: parts === null ? undefined : Buffer.concat(parts).toString('utf8') });
          };
          conn.current = {
            onData(buf, off, n) {
              received = true;
              try {
                if (parsed === null) {
                  const chunk = Buffer.from(buf.subarray(off, off + n));
                  head.push(chunk);
                  headBytes += n;
                  const all = head.length === 1 ? chunk : Buffer.concat(head);
                  const end = all.indexOf(CRLFCRLF);
                  if (end < 0) {
                    if (headBytes > 65536) throw new Error('response head larger than 64 KiB');
                    head = [all];
                    return;
                  }
                  parsed = parseHead(all.subarray(0, end), method);
                  remaining = parsed.length;
                  const rest = all.subarray(end + 4);
                  head = null;
                  if (rest.length > 0) {
                    const take = Math.min(rest.length, remaining);
                    bytes += take;
                    remaining -= take;
                    if (parts !== null) parts.push(rest.subarray(0, take));
                    if (remaining === 0) return finish(rest.length - take);
                  } else if (remaining === 0) return finish(0);
                  return;
                }
                const take = Math.min(n, remaining);
                bytes += take;
                remaining -= take;
                if (parts !== null) parts.push(Buffer.from(buf.subarray(off, off + take)));
                if (remaining === 0) finish(n - take);
              } catch (err) {
                conn.socket.destroy(err);
              }
            },
            fail(err) {
              conn.current = null;
              // A kept-alive socket the server closed just as we reused it: try once on a new one.
              if (reused && !received && !retried) exchange(u, opts, t0, true).then(resolve, reject);
              else reject(err);
            },
          };
          conn.socket.setTimeout(timeoutMs);
          let req = `${method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n`;
          for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
          conn.socket.write(`${req}\r\n`);
        },
      };
      waiting.push(w);
      drain();
    });
  }

  return {
    request(url, opts = {}) {
      return exchange(typeof url === 'string' ? new URL(url) : url, opts, performance.now(), false);
    },
    destroy() {
      destroyed = true;
      for (const list of idle.values()) for (const c of list) c.socket.destroy();
      idle.clear();
    },
  };
}

/** Counts failures by message, so a report shows what went wrong without a line per failure. */
export class ErrorTally {
  constructor() {
    this.total = 0;
    this.byMessage = new Map();
  }

  add(message) {
    this.total++;
    this.byMessage.set(message, (this.byMessage.get(message) ?? 0) + 1);
  }

  toJSON() {
    return { total: this.total, top: [...this.byMessage].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([message, count]) => ({ message, count })) };
  }
}
