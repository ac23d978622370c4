// Artifacts over real sockets (uploads that fail leave nothing; ranges; conditional requests),
// bad input, auth and roles, optimistic concurrency, split listeners, signed URLs, graceful shutdown.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readlink, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, peakRss, randomBlob, removeDir, seedBootable, startKilnProcess, startTestKiln, upload, type TestKiln } from './helpers.js';

async function blobFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'blobs', 'sha256');
  const out: string[] = [];
  for (const d of await readdir(root)) out.push(...(await readdir(join(root, d))));
  return out.sort();
}

describe('artifacts', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln();
  });
  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
  });

  it('stores identical content once and verifies an expected sha256', async () => {
    const { bytes, sha256 } = randomBlob(300_000);
    const first = await k.api(`/artifacts/${sha256}`, { method: 'PUT', body: bytes });
    expect(first.status).toBe(201);
    expect(await json(first)).toMatchObject({ sha256, size: bytes.length, mediaType: 'application/octet-stream' });
    const again = await k.api('/artifacts', { method: 'POST', body: bytes, headers: { 'content-type': 'application/x-cpio' } });
    expect(again.status).toBe(200);
    expect((await blobFiles(k.dataDir)).filter((f) => f === sha256)).toHaveLength(1);
  });

  it('refuses a wrong sha256 or size and stores nothing', async () => {
    const before = await blobFiles(k.dataDir);
    const { bytes } = randomBlob(100_000);
    const wrong = await k.api(`/artifacts/${'0'.repeat(64)}`, { method: 'PUT', body: bytes });
    expect(wrong.status).toBe(422);
    expect((await json(wrong)).code).toBe('KILN_ARTIFACT_DIGEST_MISMATCH');
    const short = await k.api('/artifacts?size=99999999', { method: 'POST', body: bytes });
    expect(short.status).toBe(422);
    expect((await json(short)).code).toBe('KILN_ARTIFACT_SIZE_MISMATCH');
    expect(await blobFiles(k.dataDir)).toEqual(before);
    expect(await readdir(join(k.dataDir, 'blobs', '.tmp'))).toEqual([]);
  });

  it('leaves nothing behind when the client disconnects halfway', async () => {
    const before = await blobFiles(k.dataDir);
    const url = new URL(k.kiln.adminUrl);
    await new Promise<void>((resolve, reject) => {
      const sock = connect(Number(url.port), url.hostname, () => {
        sock.write(`POST /api/v1/artifacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k.token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`);
        sock.write(randomBytes(3_000_000), () => setTimeout(() => { sock.destroy(); resolve(); }, 100));
      });
      sock.on('error', reject);
    });
    // The server notices the reset asynchronously; wait until its temp file is gone.
    for (let i = 0; i < 100 && (await readdir(join(k.dataDir, 'blobs', '.tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(join(k.dataDir, 'blobs', '.tmp'))).toEqual([]);
    expect(await blobFiles(k.dataDir)).toEqual(before);
    const list = await json<{ items: { size: number }[] }>(await k.api('/artifacts'));
    expect(list.items.some((a) => a.size === 10_000_000)).toBe(false);
  });

  it('a download cut off by the client costs nothing: later downloads are whole and the file is open once, shared', async () => {
    const { bytes, sha256 } = randomBlob(8 * 1024 * 1024 + 5);
    await upload(k, bytes);
    const url = new URL(k.kiln.adminUrl);
    // Several clients that read about a MiB and vanish, while the server is mid-body with pooled buffers.
    await Promise.all(Array.from({ length: 4 }, () => new Promise<void>((resolve, reject) => {
      let got = 0;
      const sock = connect(Number(url.port), url.hostname, () => {
        sock.write(`GET /api/v1/artifacts/${sha256} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k.token}\r\n\r\n`);
      });
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got > 1024 * 1024) {
          sock.destroy();
          resolve();
        }
      });
      sock.on('error', reject);
    })));
    const whole = Buffer.from(await (await k.api(`/artifacts/${sha256}`)).arrayBuffer());
    expect(whole.equals(bytes)).toBe(true);
    const part = await k.api(`/artifacts/${sha256}`, { headers: { range: 'bytes=5000000-6100000' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(5_000_000, 6_100_001))).toBe(true);
    // Kiln runs in this process: its descriptors are ours to count.
    const file = join(k.dataDir, 'blobs', 'sha256', sha256.slice(0, 2), sha256);
    let open = 0;
    for (const fd of await readdir('/proc/self/fd')) if ((await readlink(join('/proc/self/fd', fd)).catch(() => '')) === file) open++;
    expect(open).toBe(1);
  });

  it('answers 404, not a hanging or truncated response, when an artifact\'s bytes are gone', async () => {
    const { bytes, sha256 } = randomBlob(10_000);
    await upload(k, bytes);
    await rm(join(k.dataDir, 'blobs', 'sha256', sha256.slice(0, 2), sha256));
    const res = await k.api(`/artifacts/${sha256}`);
    expect(res.status).toBe(404);
    expect((await json(res)).code).toBe('KILN_ARTIFACT_NOT_FOUND');
  });

  it('streams a 1 GiB upload through the real server in constant memory', async () => {
    const server = await startKilnProcess();
    try {
      const size = 1024 * 1024 * 1024;
      const chunk = randomBytes(1024 * 1024);
      const hash = createHash('sha256');
      for (let i = 0; i < 1024; i++) hash.update(chunk);
      const sha256 = hash.digest('hex');
      const before = await peakRss(server.pid);
      const url = new URL(server.url);
      const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: url.hostname, port: url.port, method: 'PUT', path: `/api/v1/artifacts/${sha256}`, headers: { authorization: `Bearer ${server.token}`, 'content-length': size } },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => (body += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        let sent = 0;
        const pump = (): void => {
          while (sent < size) {
            sent += chunk.length;
            if (!req.write(chunk)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      expect(result.status).toBe(201);
      expect(JSON.parse(result.body)).toMatchObject({ sha256, size });
      // The server's peak RSS may not grow by anything like the body: it streams through 1 MiB buffers.
      expect((await peakRss(server.pid)) - before).toBeLessThan(128 * 1024 * 1024);
    } finally {
      expect(await server.stop()).toBe(0);
      await removeDir(server.dataDir);
    }
  }, 180_000);
});

// Both ways Kiln reads an artifact: out of its in-memory chunks (1 MiB, shared by every download) and
// from the file on each request. The artifact spans several chunks, so ranges cross chunk edges.
describe.each([
  ['from the hot artifact cache', {}],
  ['from the file (cache off)', { 'boot.memoryCacheMiB': '0' }],
])('downloads %s', (_how, flags: Record<string, string>) => {
  let k: TestKiln;
  let sha: string;
  let bytes: Buffer;
  let url: string;
  const MiB = 1024 * 1024;
  beforeAll(async () => {
    k = await startTestKiln(flags);
    ({ bytes, sha256: sha } = randomBlob(3 * MiB + 123));
    await upload(k, bytes);
    url = `${k.kiln.adminUrl}/api/v1/artifacts/${sha}`;
  });
  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
  });
  const get = (headers: Record<string, string> = {}, method = 'GET') => fetch(url, { method, headers: { authorization: `Bearer ${k.token}`, ...headers } });

  it('serves the whole artifact with ETag, length and Accept-Ranges; HEAD has no body', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${sha}"`);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
    const head = await get({}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('answers single, open-ended and suffix ranges', async () => {
    const last = bytes.length - 1;
    const cases = [
      ['bytes=10-19', 10, 19],
      [`bytes=${MiB - 5}-${MiB + 4}`, MiB - 5, MiB + 4], // across a chunk edge
      [`bytes=${MiB}-${3 * MiB - 1}`, MiB, 3 * MiB - 1], // exactly two chunks
      ['bytes=1000000-', 1000000, last],
      ['bytes=-5', last - 4, last],
      [`bytes=${last - 999}-9000000`, last - 999, last],
    ] as const;
    for (const [range, start, end] of cases) {
      const res = await get({ range });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${bytes.length}`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes.subarray(start, end + 1));
    }
  });

  it('answers multiple ranges as multipart/byteranges with an exact length', async () => {
    const res = await get({ range: 'bytes=0-9, 500-509,-3' });
    expect(res.status).toBe(206);
    const type = res.headers.get('content-type')!;
    const boundary = /boundary=(\S+)/.exec(type)![1]!;
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('content-length')).toBe(String(body.length));
    const text = body.toString('latin1');
    const parts = text.split(`--${boundary}`).slice(1, -1);
    expect(parts).toHaveLength(3);
    expect(parts[1]).toContain(`Content-Range: bytes 500-509/${bytes.length}`);
    expect(Buffer.from(parts[1]!.split('\r\n\r\n')[1]!.replace(/\r\n$/, ''), 'latin1')).toEqual(bytes.subarray(500, 510));
    expect(text.endsWith(`--${boundary}--\r\n`)).toBe(true);
  });

  it('answers 416 for unsatisfiable ranges and ignores malformed ones', async () => {
    const res = await get({ range: `bytes=${bytes.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    expect((await json(res)).code).toBe('KILN_ARTIFACT_RANGE_NOT_SATISFIABLE');
    const bad = await get({ range: 'bytes=abc' });
    expect(bad.status).toBe(200);
    await bad.arrayBuffer();
  });

  it('honours If-None-Match and If-Range', async () => {
    expect((await get({ 'if-none-match': `"${sha}"` })).status).toBe(304);
    const stale = await get({ range: 'bytes=0-9', 'if-range': '"something-else"' });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(bytes.length);
    const fresh = await get({ range: 'bytes=0-9', 'if-range': `"${sha}"` });
    expect(fresh.status).toBe(206);
    await fresh.arrayBuffer();
  });
});

describe('bad input, auth and concurrency', () => {
  let k: TestKiln;
  beforeAll(async () => {
    k = await startTestKiln();
    await seedBootable(k);
  });
  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
  });

  const code = async (res: Response) => ({ status: res.status, code: (await json(res)).code });

  it('refuses invalid MACs, names and ids with stable codes, storing nothing', async () => {
    expect(await code(await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:zz:00:01'] } }))).toEqual({ status: 400, code: 'KILN_MAC_INVALID' });
    expect(await code(await k.api('/images', { method: 'POST', json: { name: '../etc' } }))).toEqual({ status: 400, code: 'KILN_NAME_INVALID' });
    expect(await code(await k.api('/images', { method: 'POST', json: { name: 'UPPER' } }))).toEqual({ status: 400, code: 'KILN_NAME_INVALID' });
    expect(await code(await k.api('/machines/no-such-machine'))).toEqual({ status: 404, code: 'KILN_MACHINE_NOT_FOUND' });
    expect(await code(await k.api('/images/nope/versions/1'))).toEqual({ status: 404, code: 'KILN_IMAGE_NOT_FOUND' });
    expect(await code(await k.api('/images/debian/versions', { method: 'POST', json: { version: '../x', artifacts: [{ name: 'k', role: 'kernel', sha256: 'a'.repeat(64) }] } }))).toEqual({ status: 400, code: 'KILN_NAME_INVALID' });
    expect(await code(await k.api('/images/debian/versions', { method: 'POST', json: { version: '9', artifacts: [{ name: 'k', role: 'kernel', sha256: 'a'.repeat(64) }] } }))).toEqual({ status: 400, code: 'KILN_VERSION_INVALID' });
    expect(await code(await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:00:00:01'], labels: { 'bad key!': 'x' } } }))).toEqual({ status: 400, code: 'KILN_MACHINE_INVALID' });
    expect((await json<{ items: unknown[] }>(await k.api('/machines'))).items).toEqual([]);
    expect((await json<{ items: { name: string }[] }>(await k.api('/images'))).items.map((i) => i.name)).toEqual(['debian']);
  });

  it('refuses malformed, oversized and wrongly typed bodies', async () => {
    expect(await code(await k.api('/images', { method: 'POST', body: '{"name": "x",', headers: { 'content-type': 'application/json' } }))).toEqual({ status: 400, code: 'KILN_REQUEST_MALFORMED_JSON' });
    expect(await code(await k.api('/images', { method: 'POST', body: 'name=x', headers: { 'content-type': 'text/plain' } }))).toEqual({ status: 415, code: 'KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE' });
    expect(await code(await k.api('/images', { method: 'POST', json: { name: 'x', description: 'y'.repeat(2 * 1024 * 1024) } }))).toEqual({ status: 413, code: 'KILN_REQUEST_BODY_TOO_LARGE' });
    expect(await code(await k.api('/images', { method: 'POST', json: { name: 'x', extra: 1 } }))).toEqual({ status: 400, code: 'KILN_REQUEST_INVALID' });
    expect(await code(await k.api('/nope'))).toEqual({ status: 404, code: 'KILN_ROUTE_NOT_FOUND' });
  });

  it('answers a boot request without a MAC or with a traversal path clearly', async () => {
    const noMac = await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=nonsense`);
    expect(noMac.status).toBe(400);
    expect(await noMac.text()).toContain('needs ?mac=');
    const trav = await fetch(`${k.kiln.bootUrl}/boot/artifacts/..%2F..%2Fkiln.db/x`);
    expect(trav.status).toBe(404);
    expect((await json(trav)).code).toBe('KILN_ARTIFACT_NOT_FOUND');
  });

  it('needs a token with the right role for the API, and none for boot endpoints', async () => {
    expect(await code(await k.api('/images', { headers: { authorization: '' } }))).toEqual({ status: 401, code: 'KILN_AUTH_REQUIRED' });
    expect(await code(await k.api('/images', { headers: { authorization: 'Bearer kiln_wrong' } }))).toEqual({ status: 401, code: 'KILN_AUTH_INVALID_TOKEN' });
    const viewer = await json<{ id: string; secret: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'ci', role: 'viewer' } }));
    const asViewer = (path: string, init: RequestInit & { json?: unknown } = {}) => k.api(path, { ...init, headers: { authorization: `Bearer ${viewer.secret}` } });
    expect((await asViewer('/images')).status).toBe(200);
    expect(await code(await asViewer('/images', { method: 'POST', json: { name: 'x' } }))).toEqual({ status: 403, code: 'KILN_AUTH_FORBIDDEN' });
    expect(await code(await asViewer('/tokens'))).toEqual({ status: 403, code: 'KILN_AUTH_FORBIDDEN' });
    const tokens = await json<{ items: Record<string, unknown>[] }>(await k.api('/tokens'));
    expect(JSON.stringify(tokens)).not.toContain(viewer.secret);
    expect(tokens.items.find((t) => t.id === viewer.id)?.lastUsedAt).toEqual(expect.any(String));
    expect((await k.api(`/tokens/${viewer.id}`, { method: 'DELETE' })).status).toBe(200);
    expect(await code(await asViewer('/images'))).toEqual({ status: 401, code: 'KILN_AUTH_INVALID_TOKEN' });
    expect((await fetch(`${k.kiln.bootUrl}/boot.ipxe`)).status).toBe(200);
  });

  it('rejects a stale write with 412 (If-Match)', async () => {
    const res = await k.api('/profiles/worker');
    const etag = res.headers.get('etag')!;
    const body = { image: { image: 'debian', channel: 'stable' }, kernelArgs: ['quiet', 'loglevel=3'] };
    const ok = await k.api('/profiles/worker', { method: 'PUT', json: body, headers: { 'if-match': etag } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).not.toBe(etag);
    expect(await code(await k.api('/profiles/worker', { method: 'PUT', json: body, headers: { 'if-match': etag } }))).toEqual({ status: 412, code: 'KILN_PRECONDITION_FAILED' });
    const img = await k.api('/images/debian');
    const conflicting = await Promise.all(
      Array.from({ length: 10 }, (_, i) => k.api('/images/debian', { method: 'PATCH', json: { description: `edit ${i}` }, headers: { 'if-match': img.headers.get('etag')! } })),
    );
    expect(conflicting.filter((r) => r.status === 200)).toHaveLength(1);
    expect(conflicting.filter((r) => r.status === 412)).toHaveLength(9);
  });

  it('serves the OpenAPI 3.1 document and the docs UI', async () => {
    const doc = await json<{ openapi: string; paths: Record<string, unknown> }>(await fetch(`${k.kiln.adminUrl}/api/v1/openapi.json`));
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/api/v1/machines/{id}/boot-plan');
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/boot'))).toBe(false);
    const ui = await fetch(`${k.kiln.adminUrl}/api/docs/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('<html');
  });
});

describe('listeners, signed URLs and shutdown', () => {
  it('prints the admin token once, on first start, and keeps it in a 0600 file', async () => {
    const first = await startKilnProcess();
    const mode = (await stat(join(first.dataDir, 'admin.token'))).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(first.stderr()).toContain(first.token);
    expect(await first.stop('SIGINT')).toBe(0);
    const second = await startKilnProcess([], first.dataDir);
    try {
      expect(second.token).toBe(first.token);
      expect(second.stderr()).not.toContain(first.token);
      const res = await fetch(`${second.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${first.token}` } });
      expect(await json(res)).toMatchObject({ name: 'admin', role: 'admin' });
    } finally {
      expect(await second.stop()).toBe(0);
      await removeDir(first.dataDir);
    }
  });

  it('stores nothing about strangers when enrollment is off', async () => {
    const k = await startTestKiln({ 'boot.enrollUnknown': 'false' });
    try {
      await seedBootable(k);
      await k.api('/groups', { method: 'POST', json: { name: 'default', profile: 'worker' } });
      const script = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:ff:00:01`)).text();
      expect(script).toContain('enrollment of unknown machines is off');
      expect((await json<{ items: unknown[] }>(await k.api('/machines'))).items).toEqual([]);
      await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:ff:00:01'] } });
      expect(await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:ff:00:01`)).text()).toContain('with profile worker');
    } finally {
      await k.stop();
      await removeDir(k.dataDir);
    }
  });

  it('serves boot and admin on separate listeners when configured', async () => {
    const k = await startTestKiln({ 'boot.listen': '127.0.0.1:0' });
    try {
      expect(k.kiln.urls).toHaveLength(2);
      expect((await fetch(`${k.kiln.bootUrl}/boot.ipxe`)).status).toBe(200);
      expect((await fetch(`${k.kiln.adminUrl}/boot.ipxe`)).status).toBe(404);
      expect((await fetch(`${k.kiln.bootUrl}/api/v1/images`, { headers: { authorization: `Bearer ${k.token}` } })).status).toBe(404);
      expect((await k.api('/images')).status).toBe(200);
    } finally {
      await k.stop();
      await removeDir(k.dataDir);
    }
  });

  it('signs artifact URLs and refuses unsigned or tampered ones', async () => {
    const k = await startTestKiln({ 'boot.signUrls': 'true' });
    try {
      const seeded = await seedBootable(k);
      await k.api('/groups', { method: 'POST', json: { name: 'default', profile: 'worker' } });
      const script = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:dd:00:01`)).text();
      const url = /^kernel (\S+)/m.exec(script)![1]!;
      expect(url).toMatch(/&exp=\d+&sig=/);
      const ok = await fetch(url);
      expect(ok.status).toBe(200);
      expect(Buffer.from(await ok.arrayBuffer())).toEqual(seeded.kernel);
      const unsigned = url.replace(/&exp=.*/, '');
      expect((await fetch(unsigned)).status).toBe(403);
      expect((await fetch(url.replace('mac=52:54:00:dd:00:01', 'mac=52:54:00:dd:00:02'))).status).toBe(403);
      expect((await fetch(url.replace(/exp=(\d+)/, (_, e: string) => `exp=${Number(e) + 1}`))).status).toBe(403);
    } finally {
      await k.stop();
      await removeDir(k.dataDir);
    }
  });

  it('finishes an in-flight download when asked to stop', async () => {
    const k = await startTestKiln();
    const { bytes } = randomBlob(32 * 1024 * 1024);
    const a = await upload(k, bytes);
    const res = await fetch(`${k.kiln.adminUrl}/api/v1/artifacts/${a.sha256}`, { headers: { authorization: `Bearer ${k.token}` } });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const closing = k.kiln.close();
    let received: number = first.value!.length;
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      received += next.value.length;
    }
    expect(received).toBe(bytes.length);
    expect(await closing).toBe(true);
    await expect(fetch(`${k.kiln.adminUrl}/healthz`)).rejects.toThrow();
    await removeDir(k.dataDir);
  });
});
