// Scale out for real: three `kiln serve` processes on one PostgreSQL database and one S3 server
// (s3rver over HTTP, through the AWS SDK). Writes on one replica are seen by the others at once;
// concurrent conflicting writes spread over replicas lose nothing; a replica killed mid-upload
// leaves nothing half-written.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { startS3Server, uniqueBucket, type S3TestServer } from '../support/s3-server.js';
import { removeDir, startKilnProcess, type KilnProcess } from './helpers.js';

if (pgUrl === null) console.warn(`replica tests skipped: ${pgSkipReason}`);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(pgUrl === null)('three replicas on PostgreSQL and S3', () => {
  let s3: S3TestServer;
  let bucket: string;
  let env: Record<string, string>;
  const replicas: KilnProcess[] = [];
  let token: string;

  const api = (r: KilnProcess, path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${r.url}/api/v1${path}`, { ...init, headers, body });
  };
  const upload = async (r: KilnProcess, bytes: Buffer) => {
    const res = await api(r, '/artifacts', { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect([200, 201]).toContain(res.status);
    return (await res.json()) as { sha256: string };
  };
  const liveKeys = async () => {
    const c = s3.client();
    try {
      const res = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'fleet/sha256/' }));
      return (res.Contents ?? []).map((o) => o.Key!.slice('fleet/sha256/'.length));
    } finally {
      c.destroy();
    }
  };

  beforeAll(async () => {
    s3 = await startS3Server();
    bucket = uniqueBucket();
    await s3.createBucket(bucket);
    env = {
      KILN_DATABASE_URL: await freshPgDatabase('replicas'),
      KILN_BLOB_URL: `s3://${bucket}/fleet`,
      KILN_S3_ENDPOINT: s3.endpoint,
      KILN_S3_FORCE_PATH_STYLE: 'true',
      KILN_S3_ACCESS_KEY_ID: s3.accessKeyId,
      KILN_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      KILN_BOOT_SIGN_URLS: 'true',
    };
    // The first replica migrates the empty database and makes the admin token; the others join.
    const first = await startKilnProcess([], undefined, { env });
    token = first.token;
    replicas.push(first);
    replicas.push(...(await Promise.all([
      startKilnProcess([], undefined, { env, token }),
      startKilnProcess(['--boot-artifact-delivery', 'redirect'], undefined, { env, token }),
    ])));
  }, 120_000);

  afterAll(async () => {
    for (const r of replicas) {
      await r.stop('SIGKILL');
      await removeDir(r.dataDir);
    }
    await s3?.close();
  });

  it('an image pushed through replica 1 boots through replica 2; its events show on replica 3; a promote on 1 reaches 2 at once', async () => {
    const [r1, r2, r3] = replicas as [KilnProcess, KilnProcess, KilnProcess];
    expect((await api(r2, '/whoami')).status).toBe(200);
    const kernel1 = randomBytes(300_000);
    const kernel2 = randomBytes(200_000);
    const initrd = randomBytes(700_000);
    const [k1, k2, i] = [await upload(r1, kernel1), await upload(r1, kernel2), await upload(r1, initrd)];
    expect((await api(r1, '/images', { method: 'POST', json: { name: 'debian' } })).status).toBe(201);
    for (const [v, k] of [['1', k1], ['2', k2]] as const) {
      const res = await api(r1, '/images/debian/versions', { method: 'POST', json: { version: v, artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: k.sha256 }, { name: 'initrd.img', role: 'initrd', sha256: i.sha256 }] } });
      expect(res.status).toBe(201);
    }
    expect((await api(r1, '/images/debian/channels/stable/promote', { method: 'POST', json: { version: '1' } })).status).toBe(200);
    expect((await api(r1, '/profiles', { method: 'POST', json: { name: 'worker', image: { image: 'debian', channel: 'stable' } } })).status).toBe(201);
    expect((await api(r1, '/groups', { method: 'POST', json: { name: 'default', profile: 'worker' } })).status).toBe(201);

    const mac = '52:54:00:0b:00:01';
    const script = async (r: KilnProcess) => (await fetch(`${r.url}/boot/ipxe?mac=${mac}`)).text();
    const s1 = await script(r2);
    const kernelUrl = /^kernel (\S+)/m.exec(s1)![1]!;
    expect(kernelUrl).toContain(k1.sha256);
    // Replica 2 streams the kernel from S3, Range passed through; the URL was signed by replica 2
    // and verifies on replica 3 too (the key is shared in the database).
    const whole = Buffer.from(await (await fetch(kernelUrl)).arrayBuffer());
    expect(sha(whole)).toBe(k1.sha256);
    const part = await fetch(kernelUrl, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(kernel1.subarray(1000, 2000));
    // Replica 3 redirects to a presigned S3 URL instead.
    const onR3 = kernelUrl.replace(r2.url, r3.url);
    const redirect = await fetch(onR3, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toContain('X-Amz-Signature=');
    expect(sha(Buffer.from(await (await fetch(onR3)).arrayBuffer()))).toBe(k1.sha256);

    const cb = await fetch(`${r2.url}/boot/callback?mac=${mac}&state=booted`, { method: 'POST' });
    expect(cb.status).toBe(200);
    const machine = (await (await api(r3, `/machines/${mac}`)).json()) as { id: string; state: string };
    expect(machine.state).toBe('booted');
    const events = (await (await api(r3, `/machines/${machine.id}/events`)).json()) as { items: { kind: string }[] } | { kind: string }[];
    const kinds = (Array.isArray(events) ? events : events.items).map((e) => e.kind);
    expect(kinds).toContain('script');
    expect(kinds).toContain('callback');

    // Replica 2 has the plan cached; a promote on replica 1 must reach it through NOTIFY.
    expect((await api(r1, '/images/debian/channels/stable/promote', { method: 'POST', json: { version: '2' } })).status).toBe(200);
    await until('replica 2 to render version 2', async () => (await script(r2)).includes(k2.sha256), 3000);
  });

  it('100 concurrent conflicting updates spread over the replicas: exactly one wins per version, the rest get 412', async () => {
    const created = await api(replicas[0]!, '/machines', { method: 'POST', json: { macs: ['52:54:00:0b:00:99'], hostname: 'contended' } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    for (let round = 0; round < 2; round++) {
      const current = await api(replicas[round]!, `/machines/${id}`);
      const etag = current.headers.get('etag')!;
      expect(etag).toBeTruthy();
      const statuses = await Promise.all(Array.from({ length: 100 }, (_, n) =>
        api(replicas[n % 3]!, `/machines/${id}`, { method: 'PATCH', json: { hostname: `writer-${round}-${n}` }, headers: { 'if-match': etag } }).then((r) => r.status),
      ));
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(99);
      const winner = 100 - 1 - [...statuses].reverse().indexOf(200);
      const after = (await (await api(replicas[2]!, `/machines/${id}`)).json()) as { hostname: string; revision: number };
      expect(after.hostname).toBe(`writer-${round}-${winner}`);
    }
  });

  it('a replica killed with -9 during an upload leaves nothing half-written; the others keep serving', async () => {
    const victim = replicas[1]!;
    const bytes = randomBytes(24 * 1024 * 1024);
    const before = await liveKeys();
    await new Promise<void>((resolve) => {
      const req = request(`${victim.url}/api/v1/artifacts`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } });
      req.on('error', () => resolve());
      req.on('response', () => resolve());
      // Send well past the first multipart part, then kill the replica while the body is still arriving.
      req.write(bytes.subarray(0, 20 * 1024 * 1024), () => {
        setTimeout(() => void victim.stop('SIGKILL'), 300);
      });
    });
    expect(await victim.stop('SIGKILL')).toBeNull();
    replicas.splice(1, 1, await startKilnProcess([], undefined, { env, token }));
    const listed = (await (await api(replicas[0]!, '/artifacts')).json()) as { sha256: string }[] | { items: { sha256: string }[] };
    const shas = (Array.isArray(listed) ? listed : listed.items).map((a) => a.sha256);
    expect(shas).not.toContain(sha(bytes));
    expect(await liveKeys()).toEqual(before);
    const head = await fetch(`${replicas[2]!.url}/boot/artifacts/${sha(bytes)}/x`, { method: 'HEAD' });
    expect([403, 404]).toContain(head.status);
    // The restarted replica works normally.
    expect((await upload(replicas[1]!, bytes.subarray(0, 1000))).sha256).toBe(sha(bytes.subarray(0, 1000)));
  });
});
