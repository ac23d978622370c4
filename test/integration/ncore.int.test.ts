// ncore-api v2 on Kiln: the seed README's requests replayed against a real Kiln (SQLite + fs blobs,
// and S3 through s3rver for presigned URLs), MAC forms, auto-enrolment by subnet, payload
// reassignment, the original's error shapes, and the same data seen through Kiln's native API.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { startS3Server, uniqueBucket, type S3TestServer } from '../support/s3-server.js';
import { json, removeDir, startTestKiln, upload, type TestKiln } from './helpers.js';

const IMAGE_NAME = 'ncore-develop-ci-test.20230320-1811';
const CMDLINE = 'root=UUID=cb2e0849-89f9-4590-a9b1-61e8b92fc308 ro console=tty1 console=ttyS0';
const MAC1 = '52:54:00:aa:bb:01';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Files { kernel: Buffer; initrd: Buffer; rootfs: Buffer }

/** Pushes `version` of image `type` with vmlinuz, initrd.img and rootfs.cpio.gz, as ncore's CI stages them. */
async function pushVersion(k: TestKiln, type: string, version: string): Promise<Files> {
  const files = { kernel: randomBytes(64 * 1024), initrd: randomBytes(96 * 1024), rootfs: randomBytes(128 * 1024) };
  const [kr, ir, rr] = [await upload(k, files.kernel), await upload(k, files.initrd), await upload(k, files.rootfs)];
  if ((await k.api(`/images/${type}`)).status === 404) expect((await k.api('/images', { method: 'POST', json: { name: type } })).status).toBe(201);
  const res = await k.api(`/images/${type}/versions`, {
    method: 'POST',
    json: {
      version,
      artifacts: [
        { name: 'vmlinuz', role: 'kernel', sha256: kr.sha256 },
        { name: 'initrd.img', role: 'initrd', sha256: ir.sha256 },
        { name: 'rootfs.cpio.gz', role: 'rootfs', sha256: rr.sha256 },
      ],
    },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return files;
}

function ncore(k: TestKiln) {
  return (path: string, init: RequestInit & { json?: unknown; token?: boolean } = {}) => {
    const headers = new Headers(init.headers);
    if (init.token === true) headers.set('authorization', `Bearer ${k.token}`);
    let body = init.body;
    if (init.json !== undefined) {
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${k.kiln.bootUrl}${path}`, { ...init, headers, body });
  };
}

async function fetchBytes(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

if (pgUrl === null) console.warn(`ncore-api on PostgreSQL skipped: ${pgSkipReason}`);

for (const backend of ['SQLite', 'PostgreSQL'] as const) describe.skipIf(backend === 'PostgreSQL' && pgUrl === null)(`ncore-api v2 on Kiln (${backend}, fs blobs)`, () => {
  let k: TestKiln;
  let api: ReturnType<typeof ncore>;
  let files: Files;
  const register = { ImageName: IMAGE_NAME, ImageCmdline: CMDLINE, ImageBucket: 'coreweave-ncore-images', ImageTag: 'develop', ImageType: 'ci-test' };

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.ncore.enabled': 'true', ...(backend === 'PostgreSQL' ? { 'database.url': await freshPgDatabase('ncore') } : {}) });
    api = ncore(k);
    files = await pushVersion(k, 'ci-test', IMAGE_NAME);
    await pushVersion(k, 'default', 'base-1');
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('answers liveness at / with its name', async () => {
    const res = await api('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ncore-api');
  });

  describe('image register (PUT /api/v2/ipxe/images/), the README example', () => {
    it('needs a token (ncore had none; Kiln writes need role operator), in ncore error shape', async () => {
      const res = await api('/api/v2/ipxe/images/', { method: 'PUT', json: register });
      expect(res.status).toBe(401);
      const body = await json<{ errors: string[] }>(res);
      expect(body.errors).toHaveLength(1);
      expect((await k.api('/images/ci-test/channels')).status).toBe(200);
      expect((await json<{ items: unknown[] }>(await k.api('/images/ci-test/channels'))).items).toEqual([]);
    });

    it('415 unless Content-Type is exactly application/json; 400 listing every missing field', async () => {
      for (const type of ['text/plain', 'application/json; charset=utf-8']) {
        const res = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, headers: { 'content-type': type }, json: register });
        expect(res.status, type).toBe(415);
        expect((await json<{ errors: string[] }>(res)).errors[0]).toContain('application/json');
      }
      const missing = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: { ImageName: IMAGE_NAME, ImageTag: 'develop' } });
      expect(missing.status).toBe(400);
      expect((await json<{ errors: string[] }>(missing)).errors).toEqual(['missing field: ImageCmdline', 'missing field: ImageBucket', 'missing field: ImageType']);
      const bad = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, body: '{"ImageName":', headers: { 'content-type': 'application/json' } });
      expect(bad.status).toBe(400);
      const notPushed = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: { ...register, ImageName: 'never-pushed' } });
      expect(notPushed.status).toBe(400);
      expect((await json<{ errors: string[] }>(notPushed)).errors[0]).toContain("Image version doesn't exist");
    });

    it('registers: 200 with the IpxeConfig, its URLs fetch the pushed bytes; keys match case-insensitively like Go', async () => {
      const lower = Object.fromEntries(Object.entries(register).map(([key, v]) => [key.toLowerCase(), v]));
      const res = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: lower });
      expect(res.status, await res.clone().text()).toBe(200);
      const text = await res.clone().text();
      expect(text).toContain('\n\t"ImageName"');
      const c = await json<Record<string, string>>(res);
      expect(c).toMatchObject({ ImageName: IMAGE_NAME, ImageBucket: 'coreweave-ncore-images', ImageTag: 'develop', ImageType: 'ci-test', ImageCmdline: CMDLINE });
      expect(Object.keys(c)).toEqual([
        'ImageName', 'ImageBucket', 'ImageTag', 'ImageType', 'ImageInitrdUrlHttp', 'ImageInitrdUrlHttps', 'ImageKernelUrlHttp', 'ImageKernelUrlHttps',
        'ImageRootFsUrlHttp', 'ImageRootFsUrlHttps', 'ImageCmdline',
      ]);
      expect(c.ImageKernelUrlHttps!.startsWith('https://')).toBe(true);
      expect(c.ImageKernelUrlHttp).toBe(c.ImageKernelUrlHttps!.replace(/^https:/, 'http:'));
      // Kiln-signed URLs (fs blob store) expire like ncore's presigned ones: in 900 s.
      const exp = Number(new URL(c.ImageKernelUrlHttp!).searchParams.get('exp'));
      expect(exp - Date.now() / 1000).toBeGreaterThan(890);
      expect(exp - Date.now() / 1000).toBeLessThanOrEqual(901);
      expect(sha(await fetchBytes(c.ImageKernelUrlHttp!))).toBe(sha(files.kernel));
      expect(sha(await fetchBytes(c.ImageInitrdUrlHttp!))).toBe(sha(files.initrd));
      expect(sha(await fetchBytes(c.ImageRootFsUrlHttp!))).toBe(sha(files.rootfs));
    });

    it('is a Kiln channel and profile, visible through the native API; a duplicate is ncore\'s 500 UniqueViolation', async () => {
      expect(await json(await k.api('/images/ci-test/channels/develop'))).toMatchObject({ version: IMAGE_NAME });
      expect(await json(await k.api('/profiles/ncore.ci-test.develop'))).toMatchObject({ image: { image: 'ci-test', channel: 'develop' }, kernelArgs: CMDLINE.split(' ') });
      expect((await json<{ labels: Record<string, string> }>(await k.api('/images/ci-test'))).labels['ncore/bucket']).toBe('coreweave-ncore-images');
      const dup = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: register });
      expect(dup.status).toBe(500);
      expect(await json(dup)).toEqual({ errors: ['UniqueViolation - (image_tag, image_type) exists'] });
      // The default image, for unknown machines outside any subnet group.
      const def = await api('/api/v2/ipxe/images/default', { method: 'PUT', token: true, json: { ...register, ImageName: 'base-1', ImageTag: 'default', ImageType: 'default' } });
      expect(def.status).toBe(200);
    });

    it('refuses tags and types Kiln cannot name, and the list endpoint is not implemented (404) as in ncore', async () => {
      const res = await api('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: { ...register, ImageTag: 'Dev Elop' } });
      expect(res.status).toBe(400);
      expect((await json<{ errors: string[] }>(res)).errors[0]).toContain('ImageTag');
      expect((await api('/api/v2/ipxe/images/')).status).toBe(404);
    });
  });

  describe('machines, MAC forms and images per MAC', () => {
    it('PUT /api/v2/ipxe/ needs an existing node (500 "mac_address not in database" as ncore), then pins the image', async () => {
      const body = { ImageTag: 'develop', ImageType: 'ci-test', MacAddress: MAC1 };
      const unknown = await api('/api/v2/ipxe/', { method: 'PUT', token: true, json: body });
      expect(unknown.status).toBe(500);
      expect(await json(unknown)).toEqual({ errors: ['mac_address not in database'] });
      // A heartbeat from the node makes it known (no token: a booted node reports itself).
      const hb = await api(`/api/v2/nodes/${MAC1}/heartbeat`, { method: 'PUT', json: { hostname: 'node-1', ip_address: '10.0.0.5' } });
      expect(hb.status).toBe(200);
      expect(await json(hb)).toEqual({ mac_address: '525400aabb01', hostname: 'node-1', ip_address: '10.0.0.5' });
      const noImage = await api('/api/v2/ipxe/', { method: 'PUT', token: true, json: { ...body, ImageTag: 'stable' } });
      expect(noImage.status).toBe(400);
      expect((await json<{ errors: string[] }>(noImage)).errors).toEqual(["Image doesn't exist", 'Available Images: [{develop ci-test} {default default}]']);
      const ok = await api('/api/v2/ipxe/', { method: 'PUT', token: true, json: body });
      expect(ok.status).toBe(200);
      expect(await json(ok)).toEqual({ ImageTag: 'develop', ImageType: 'ci-test', MacAddress: '525400aabb01' });
      const m = await json<{ profile: string; id: string }>(await k.api(`/machines/${MAC1}`));
      expect(m.profile).toBe('ncore.ci-test.develop');
      const events = await json<{ items: { kind: string; detail: Record<string, unknown> }[] }>(await k.api(`/machines/${m.id}/events`));
      expect(events.items.some((e) => e.kind === 'heartbeat' && e.detail.hostname === 'node-1')).toBe(true);
    });

    it('the template is ncore\'s menu: the node\'s image, HTTPS then HTTP, retry; its URLs fetch; every MAC form works', async () => {
      for (const form of ['525400aabb01', '52:54:00:AA:BB:01', '52%3a54%3a00%3aaa%3abb%3a01']) {
        const res = await api(`/api/v2/ipxe/template/${form}`);
        expect(res.status, form).toBe(200);
        const script = await res.text();
        expect(script.startsWith('#!ipxe\n')).toBe(true);
        expect(script).toContain(`item ${IMAGE_NAME} ${IMAGE_NAME}`);
        expect(script).toContain(`:${IMAGE_NAME}\necho Booting ${IMAGE_NAME} from https`);
        expect(script).toContain('boot || echo HTTPS failed... attempting HTTP...');
        expect(script).toContain('boot || goto retry');
        const httpKernel = /^kernel (http:\/\/\S+) (.*)$/m.exec(script)!;
        expect(httpKernel[2]).toContain(`${CMDLINE} initrd=initrd.magic root=http://`);
        expect(sha(await fetchBytes(httpKernel[1]!))).toBe(sha(files.kernel));
      }
      const hostnameForm = await api('/api/v2/ipxe/template/gaabb01');
      expect(hostnameForm.status).toBe(400);
      expect(await json(hostnameForm)).toEqual({ errors: ['Invalid mac_address'] });
    });

    it('the config is the IpxeConfig with Hostname; the gXXXXXX form finds the node; unknown MACs get the default without being enrolled', async () => {
      const c = await json<Record<string, string>>(await api(`/api/v2/ipxe/config/${MAC1}`));
      expect(c).toMatchObject({ ImageName: IMAGE_NAME, ImageTag: 'develop', ImageType: 'ci-test', Hostname: 'gaabb01', ImageCmdline: CMDLINE });
      expect(await json<Record<string, string>>(await api('/api/v2/ipxe/config/gaabb01'))).toMatchObject({ ImageName: IMAGE_NAME, Hostname: 'gaabb01' });
      const unknown = await json<Record<string, string>>(await api('/api/v2/ipxe/config/52:54:00:cc:dd:ee'));
      expect(unknown).toMatchObject({ ImageName: 'base-1', ImageTag: 'default', ImageType: 'default', Hostname: 'gccddee' });
      expect((await k.api('/machines/52:54:00:cc:dd:ee')).status).toBe(404);
      for (const bad of ['test_mac', '52:54:00:aa:bb', 'zz5400aabb01']) {
        const res = await api(`/api/v2/ipxe/config/${bad}`);
        expect(res.status, bad).toBe(400);
        expect(await json(res)).toEqual({ errors: ['Invalid mac_address'] });
      }
    });

    it('/api/v2/ipxe/s3/<imageName> answers the three HTTPS URLs as text', async () => {
      const res = await api(`/api/v2/ipxe/s3/${IMAGE_NAME}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/text');
      const lines = (await res.text()).trim().split('\n');
      expect(lines.map((l) => l.split(': ')[0])).toEqual(['imageInitrdUrlHttps', 'imageKernelUrlHttps', 'imageRootFsUrlHttps']);
      expect(sha(await fetchBytes(lines[1]!.split(': ')[1]!.replace(/^https:/, 'http:')))).toBe(sha(files.kernel));
      expect((await api('/api/v2/ipxe/s3/no-such-image')).status).toBe(400);
      expect((await api('/api/v2/ipxe/s3/')).status).toBe(404);
    });
  });

  describe('payloads', () => {
    beforeAll(async () => {
      const params = { apiserver: 'kube-apiserver.domain', ca_cert_hash: 'certhash', join_token: 'jointoken' };
      for (const body of [
        { name: 'kube-worker', schema: ['apiserver', 'ca_cert_hash', 'join_token'], parameters: params },
        { name: 'test_payload', directory: 'kube-worker' },
        { name: 'not_test_payload', directory: 'kube-worker' },
      ]) expect((await k.api('/payloads', { method: 'POST', json: body })).status).toBe(201);
    });

    it('GET /payload/config/<id> is the README\'s parameter object; a payload without parameters is 404 with no errors', async () => {
      const res = await api('/api/v2/payload/config/kube-worker');
      expect(res.status).toBe(200);
      expect(await json(res)).toEqual({ apiserver: 'kube-apiserver.domain', ca_cert_hash: 'certhash', join_token: 'jointoken' });
      const none = await api('/api/v2/payload/config/test_payload');
      expect(none.status).toBe(404);
      expect(await json(none)).toEqual({ errors: [] });
      expect((await api('/api/v2/payload/config/nope')).status).toBe(404);
    });

    it('PUT assigns (README example), a second PUT replaces it, DELETE removes it; bad ids in ncore shape', async () => {
      const mac = '525400aabb01';
      expect((await api(`/api/v2/payload/${mac}/test_payload`, { method: 'PUT' })).status).toBe(401);
      const put = await api(`/api/v2/payload/${mac}/test_payload`, { method: 'PUT', token: true });
      expect(put.status).toBe(200);
      expect(await json(put)).toEqual([{ PayloadId: 'test_payload', PayloadDirectory: 'kube-worker', MacAddress: mac }]);
      expect(await json(await api(`/api/v2/payload/${mac}`))).toEqual({ PayloadId: 'test_payload', PayloadDirectory: 'kube-worker', MacAddress: mac });
      const again = await api(`/api/v2/payload/${mac}/not_test_payload`, { method: 'PUT', token: true });
      expect(await json(again)).toEqual([{ PayloadId: 'not_test_payload', PayloadDirectory: 'kube-worker', MacAddress: mac }]);
      expect((await json<{ payload: string }>(await k.api(`/machines/${MAC1}`))).payload).toBe('not_test_payload');
      expect(await json(await api('/api/v2/payload/gaabb01'))).toEqual({ PayloadId: 'not_test_payload', PayloadDirectory: 'kube-worker', MacAddress: mac });
      const notAssigned = await api(`/api/v2/payload/${mac}/test_payload`, { method: 'DELETE', token: true });
      expect(notAssigned.status).toBe(404);
      const del = await api(`/api/v2/payload/${mac}/not_test_payload`, { method: 'DELETE', token: true });
      expect(del.status).toBe(200);
      expect(await del.text()).toBe('null\n');
      const unknown = await api(`/api/v2/payload/${mac}/nope`, { method: 'PUT', token: true });
      expect(unknown.status).toBe(400);
      expect(await json(unknown)).toEqual({ errors: ["PayloadId doesn't exist", 'Available Payloads: [kube-worker not_test_payload test_payload]'] });
      const readme = await api('/api/v2/payload/test_mac');
      expect(readme.status).toBe(400);
      expect(await json(readme)).toEqual({ errors: ['Invalid mac_address'] });
      const host = await api('/api/v2/payload/gffffff');
      expect(host.status).toBe(400);
      expect(await json(host)).toEqual({ errors: ['payload not found for hostname: gffffff'] });
    });
  });

  describe('auto-enrolment by subnet', () => {
    it('an unknown MAC gets its subnet group\'s image and payload, kept as its own; X-Forwarded-For is not believed without trustProxy', async () => {
      expect((await k.api('/profiles', { method: 'POST', json: { name: 'rack-a', image: { image: 'ci-test', channel: 'develop' }, kernelArgs: ['quiet'], payload: 'kube-worker' } })).status).toBe(201);
      expect((await k.api('/groups', { method: 'POST', json: { name: 'loopback', selectors: { subnet: '127.0.0.0/8' }, profile: 'rack-a' } })).status).toBe(201);
      expect((await k.api('/profiles', { method: 'POST', json: { name: 'rack-b', image: { image: 'default', channel: 'default' } } })).status).toBe(201);
      expect((await k.api('/groups', { method: 'POST', json: { name: 'ten', selectors: { subnet: '10.0.0.0/8' }, profile: 'rack-b' } })).status).toBe(201);
      const spoof = { 'x-forwarded-for': '10.1.2.3' };
      const payload = await api('/api/v2/payload/52:54:00:aa:bb:02', { headers: spoof });
      expect(await json(payload)).toEqual({ PayloadId: 'kube-worker', PayloadDirectory: 'kube-worker', MacAddress: '525400aabb02' });
      const menu = await (await api('/api/v2/ipxe/template/525400aabb02', { headers: spoof })).text();
      expect(menu).toContain(`item ${IMAGE_NAME} ${IMAGE_NAME}`);
      expect(menu).toMatch(/^kernel http:\/\/\S+ quiet initrd=initrd\.magic root=http:/m);
      const m = await json<{ profile: string; payload: string; state: string }>(await k.api('/machines/52:54:00:aa:bb:02'));
      expect(m).toMatchObject({ profile: 'rack-a', payload: 'kube-worker' });
      expect(await json(await api('/api/v2/ipxe/config/525400aabb02'))).toMatchObject({ ImageTag: 'develop', ImageType: 'ci-test', ImageCmdline: 'quiet' });
    });

    it('outside every group: the configured defaults (payload default is answered, and kept only if it exists)', async () => {
      expect((await k.api('/groups/loopback', { method: 'DELETE' })).status).toBe(204);
      const payload = await api('/api/v2/payload/52:54:00:aa:bb:03');
      expect(await json(payload)).toEqual({ PayloadId: 'default', PayloadDirectory: 'default', MacAddress: '525400aabb03' });
      expect((await json<{ payload: string | null }>(await k.api('/machines/52:54:00:aa:bb:03'))).payload).toBeNull();
      const menu = await (await api('/api/v2/ipxe/template/525400aabb03')).text();
      expect(menu).toContain('item base-1 base-1');
      expect((await json<{ profile: string }>(await k.api('/machines/52:54:00:aa:bb:03'))).profile).toBe('ncore.default.default');
    });
  });

  describe('heartbeat and delete', () => {
    it('heartbeat: 415 in plain text, bad JSON 400, the hostname form refused', async () => {
      const plain = await api(`/api/v2/nodes/${MAC1}/heartbeat`, { method: 'PUT', body: '{}', headers: { 'content-type': 'text/plain' } });
      expect(plain.status).toBe(415);
      expect(plain.headers.get('content-type')).toContain('text/plain');
      expect((await api(`/api/v2/nodes/${MAC1}/heartbeat`, { method: 'PUT', body: 'nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
      expect((await api('/api/v2/nodes/gaabb01/heartbeat', { method: 'PUT', json: {} })).status).toBe(400);
    });

    it('DELETE /api/v2/ipxe/images/ answers the deleted row; pinned machines fall back to their groups; again is 400', async () => {
      const del = await api('/api/v2/ipxe/images/', { method: 'DELETE', token: true, json: { ImageTag: 'develop', ImageType: 'ci-test' } });
      expect(del.status, await del.clone().text()).toBe(200);
      expect(await json(del)).toEqual({ ImageName: IMAGE_NAME, ImageBucket: 'coreweave-ncore-images', ImageTag: 'develop', ImageType: 'ci-test', ImageCmdline: CMDLINE });
      expect((await json<{ profile: string | null }>(await k.api(`/machines/${MAC1}`))).profile).toBeNull();
      expect((await k.api('/images/ci-test/channels/develop')).status).toBe(404);
      expect((await k.api('/profiles/ncore.ci-test.develop')).status).toBe(404);
      // The version itself stays: only the ncore image (the channel) is gone.
      expect((await k.api(`/images/ci-test/versions/${IMAGE_NAME}`)).status).toBe(200);
      const again = await api('/api/v2/ipxe/images/', { method: 'DELETE', token: true, json: { ImageTag: 'develop', ImageType: 'ci-test' } });
      expect(again.status).toBe(400);
    });
  });
});

describe('ncore-api v2 on Kiln with S3 blobs (s3rver)', () => {
  let s3: S3TestServer;
  let k: TestKiln;

  beforeAll(async () => {
    s3 = await startS3Server();
    const bucket = uniqueBucket('ncore');
    await s3.createBucket(bucket);
    k = await startTestKiln({
      'compat.ncore.enabled': 'true', 'blobs.url': `s3://${bucket}/kiln`, 'blobs.s3.endpoint': s3.endpoint, 'blobs.s3.forcePathStyle': 'true',
      'blobs.s3.region': s3.region, 'blobs.s3.accessKeyId': s3.accessKeyId, 'blobs.s3.secretAccessKey': s3.secretAccessKey,
    });
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    await s3?.close();
  });

  it('hands out presigned object-store URLs valid 900 s, as ncore; they fetch the bytes straight from S3', async () => {
    const files = await pushVersion(k, 'ci-test', IMAGE_NAME);
    const res = await ncore(k)('/api/v2/ipxe/images/', { method: 'PUT', token: true, json: { ImageName: IMAGE_NAME, ImageCmdline: CMDLINE, ImageBucket: 'b', ImageTag: 'develop', ImageType: 'ci-test' } });
    expect(res.status).toBe(200);
    const c = await json<Record<string, string>>(res);
    const url = new URL(c.ImageKernelUrlHttp!);
    expect(url.origin).toBe(s3.endpoint);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
    expect(sha(await fetchBytes(c.ImageKernelUrlHttp!))).toBe(sha(files.kernel));
    expect(c.ImageRootFsUrlHttps!.startsWith('https://')).toBe(true);
  });
});
