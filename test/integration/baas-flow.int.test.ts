// The BAAS control server API on a running Kiln, end to end over real sockets: OIDC login through a
// real provider, a user's images and image setup, and a management OS (machine-scoped token) taking
// the setup, downloading and sending a changed disk back; all of it visible through Kiln's own API.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { Browser, CLIENT_ID, CLIENT_SECRET, multipartBody, startOpenIdProvider, type OpenIdProvider } from './baas-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const MAC = '52:54:00:ba:a5:01';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface BaasImage { Name: string; UUID: string; Username: string; Versions: { Version: number; ImageModelUUID: string }[]; Type: string; DiskCompressionStrategy: string }
interface BaasSetup { Name: string; UUID: string; Username: string; Images: { Image: BaasImage; UUIDImage: string; Version: { Version: number }; Update: boolean }[] }

if (pgUrl === null) console.warn(`BAAS flow on PostgreSQL skipped: ${pgSkipReason}`);

for (const backend of ['SQLite', 'PostgreSQL'] as const) describe.skipIf(backend === 'PostgreSQL' && pgUrl === null)(`BAAS flow on Kiln (${backend})`, () => {
  let op: OpenIdProvider;
  let k: TestKiln;
  let base: string;
  const alice = new Browser();
  /** As the installation's admin token (the bootstrap one). */
  const admin = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${k.token}`, ...(init.headers as Record<string, string>) } });
  const v1 = Buffer.from(randomBytes(300_000));
  const v2 = Buffer.from(randomBytes(400_000));
  const changed = Buffer.from(randomBytes(350_000));
  let image: BaasImage;
  let setup: BaasSetup;
  let machineToken: string;

  beforeAll(async () => {
    op = await startOpenIdProvider();
    k = await startTestKiln({
      'compat.baas.enabled': 'true', 'login.provider': 'oidc', 'login.issuer': op.issuer, 'login.clientId': CLIENT_ID,
      'login.clientSecret': CLIENT_SECRET, 'login.secureCookie': 'false',
      ...(backend === 'PostgreSQL' ? { 'database.url': await freshPgDatabase('baas') } : {}),
    });
    base = k.kiln.adminUrl;
    await op.register([`${base}/auth/callback`, `${base}/user/login/github/callback`]);
  });
  afterAll(async () => {
    await k?.stop();
    await op?.close();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('an admin creates a user; the user logs in through the OIDC provider and gets a session cookie', async () => {
    const created = await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'Alice', Name: 'Alice L.', Email: 'alice@example.test', Role: 'user' }) });
    expect(created.status).toBe(200);
    expect(await created.text()).toBe('Successfully created user\n');

    const res = await alice.login(`${base}/auth/login`, 'alice-id');
    // After the callback Kiln sends the browser to /auth/me, which answers with the session's user.
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'alice', displayName: 'Alice L.', email: 'alice@example.test', role: 'viewer', via: 'session' });
    const session = alice.seen.find((c) => c.name === 'kiln_session' && c.value !== '')!;
    expect(session.attrs).toEqual(expect.arrayContaining(['Path=/', 'Max-Age=28800', 'HttpOnly', 'SameSite=Lax']));
    expect(session.attrs).not.toContain('Secure');
    expect(alice.cookies.has('kiln_login')).toBe(false);

    // The admin-created user was linked to the login (same verified e-mail), keeping name and role.
    const me = await alice.request(`${base}/user/me`);
    expect(await me.json()).toEqual({ Username: 'alice', Name: 'Alice L.', Email: 'alice@example.test', Role: 'user' });
    const native = await json<{ externalId: string }>(await k.api('/users/alice'));
    expect(native.externalId).toBe('oidc:alice-id');
  });

  it('an admin creates a machine (with its disk image) and a token for its management OS', async () => {
    const res = await admin('/machine', { method: 'POST', body: JSON.stringify({ Name: 'node-1', Architecture: 'Arm64', Managed: true, MacAddress: { Address: MAC.toUpperCase() } }) });
    expect(res.status).toBe(201);
    const m = await json<{ Name: string; Architecture: string; Managed: boolean; MacAddress: { Address: string }; ImageUUID: string }>(res);
    expect(m).toMatchObject({ Name: 'node-1', Architecture: 'Arm64', Managed: true, MacAddress: { Address: MAC } });
    const native = await json<{ hostname: string; arch: string; labels: Record<string, string> }>(await k.api(`/machines/${MAC}`));
    expect(native).toMatchObject({ hostname: 'node-1', arch: 'aarch64', labels: { 'baas/managed': 'true', 'baas/image': m.ImageUUID } });
    const disk = await json<{ owner: string | null; labels: Record<string, string> }>(await k.api(`/images/${m.ImageUUID}`));
    expect(disk).toMatchObject({ owner: null, labels: { 'baas/type': 'machine', 'baas/machine': MAC.replaceAll(':', '-') } });

    const tok = await admin(`/machine/${MAC}/token`, { method: 'POST' });
    expect(tok.status).toBe(201);
    machineToken = (await json<{ Token: string }>(tok)).Token;
  });

  it('the user creates an image and uploads two versions (multipart, streamed)', async () => {
    const res = await alice.request(`${base}/image`, { method: 'POST', body: JSON.stringify({ Name: 'Ubuntu 22.04', Username: 'alice', Type: 'base' }) });
    expect(res.status).toBe(201);
    image = await json<BaasImage>(res);
    expect(image).toMatchObject({ Name: 'Ubuntu 22.04', Username: 'alice', Type: 'base', DiskCompressionStrategy: 'none', Versions: [{ Version: 0, ImageModelUUID: image.UUID }] });
    expect(image.UUID).toMatch(/^[0-9a-f-]{36}$/);

    for (const [i, bytes] of [v1, v2].entries()) {
      // FormData is how a browser (or Go's mime/multipart) sends it.
      const form = new FormData();
      form.append('file', new Blob([bytes]), 'image.img');
      const up = await alice.request(`${base}/image/${image.UUID}`, { method: 'POST', body: form, headers: { 'X-BAAS-NewVersion': 'true' } });
      expect(await up.text()).toBe(`Successfully uploaded image: ${i + 1}\n`);
      expect(up.status).toBe(200);
    }
    const got = await json<BaasImage>(await alice.request(`${base}/image/${image.UUID}`));
    expect(got.Versions.map((v) => v.Version)).toEqual([0, 1, 2]);
  });

  it('the user creates an image setup freezing version 2 with Update, and queues it for the machine', async () => {
    const created = await alice.request(`${base}/user/alice/image_setup`, { method: 'POST', body: JSON.stringify({ Name: 'experiment' }) });
    expect(created.status).toBe(200);
    setup = await json<BaasSetup>(created);
    expect(setup).toMatchObject({ Name: 'experiment', Username: 'alice', Images: [] });

    // Go matches JSON keys case-insensitively; the original's documentation writes "Uuid".
    const added = await alice.request(`${base}/user/alice/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ Uuid: image.UUID, version: 2, UPDATE: true }) });
    expect(added.status).toBe(200);
    expect((await json<BaasSetup>(added)).Images.map((i) => [i.UUIDImage, i.Version.Version, i.Update])).toEqual([[image.UUID, 2, true]]);

    const queued = await alice.request(`${base}/machine/${MAC}/boot`, { method: 'POST', body: JSON.stringify({ SetupUUID: setup.UUID, Update: true }) });
    expect(queued.status).toBe(200);
    expect(await queued.json()).toEqual({
      Machine: { Name: '', Architecture: '', Managed: false, MacAddress: { Address: '' }, ImageUUID: '' },
      MachineMAC: MAC, Setup: { Name: '', Images: null, Username: '', UUID: '' }, SetupUUID: setup.UUID, Update: true,
    });
    const waiting = await json<{ items: { setup: string; actor: string; poppedAt: string | null }[] }>(await k.api(`/machines/${MAC}/boot-queue`));
    expect(waiting.items).toEqual([expect.objectContaining({ setup: setup.UUID, actor: 'alice', poppedAt: null })]);
    const nativeSetup = await json<{ owner: string; images: unknown[] }>(await k.api(`/image-setups/${setup.UUID}`));
    expect(nativeSetup).toMatchObject({ owner: 'alice', images: [{ image: image.UUID, version: '2', update: true }] });
  });

  it('the management OS pops the setup, downloads the disks (Range too) and sends a changed disk back as a new version', async () => {
    const mgmt = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${machineToken}`, ...(init.headers as Record<string, string>) } });
    const popped = await mgmt(`/machine/${MAC}/boot`);
    expect(popped.status).toBe(200);
    const got = await json<BaasSetup>(popped);
    expect(got.UUID).toBe(setup.UUID);
    expect(got.Images).toHaveLength(2);
    expect(got.Images[0]).toMatchObject({ UUIDImage: image.UUID, Version: { Version: 2 }, Update: true, Image: { Name: 'Ubuntu 22.04' } });
    // The machine's own disk is appended at version 0, as the original does.
    expect(got.Images[1]).toMatchObject({ Version: { Version: 0 }, Update: false, Image: { Type: 'machine', Username: 'System' } });

    const full = await mgmt(`/image/${image.UUID}/2`);
    expect(full.status).toBe(200);
    expect(full.headers.get('content-type')).toBe('disk/raw');
    expect(full.headers.get('content-disposition')).toBe(`filename=${image.UUID}-2.img`);
    expect(sha(Buffer.from(await full.arrayBuffer()))).toBe(sha(v2));
    const part = await mgmt(`/image/${image.UUID}/2`, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${v2.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(v2.subarray(1000, 2000));
    const own = await mgmt(`/machine/${MAC}/image`);
    expect(own.status).toBe(200);
    expect((await own.arrayBuffer()).byteLength).toBe(0);

    const { body, contentType } = multipartBody(changed);
    const up = await mgmt(`/image/${image.UUID}`, { method: 'POST', body, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': 'true' } });
    expect(await up.text()).toBe('Successfully uploaded image: 3\n');

    // The machine's disk goes back in place (raw body), as version 0 of its image.
    const disk = Buffer.from(randomBytes(50_000));
    const machineImage = got.Images[1]!.UUIDImage;
    expect((await mgmt(`/machine/${MAC}/disk/${machineImage}`, { method: 'POST', body: disk })).status).toBe(200);
    expect(sha(Buffer.from(await (await mgmt(`/machine/${MAC}/disk/${machineImage}`)).arrayBuffer()))).toBe(sha(disk));

    // Nothing more is queued.
    const again = await mgmt(`/machine/${MAC}/boot`);
    expect(again.status).toBe(404);
    expect(await again.text()).toBe('No boot setup found\n');
  });

  it('the new version is Kiln data: the native API shows it and the queue entry as taken', async () => {
    const versions = await json<{ items: { version: string; artifacts: { name: string; role: string; sha256: string; size: number }[] }[] }>(await k.api(`/images/${image.UUID}/versions`));
    expect(versions.items.map((v) => v.version)).toEqual(['0', '1', '2', '3']);
    expect(versions.items[3]!.artifacts).toEqual([expect.objectContaining({ name: 'disk.img', role: 'other', sha256: sha(changed), size: changed.length })]);
    const img = await json<{ owner: string; description: string }>(await k.api(`/images/${image.UUID}`));
    expect(img).toMatchObject({ owner: 'alice', description: 'Ubuntu 22.04' });
    const taken = await json<{ items: { setup: string; poppedAt: string | null }[] }>(await k.api(`/machines/${MAC}/boot-queue?popped=true`));
    expect(taken.items).toHaveLength(1);
    expect(taken.items[0]!.setup).toBe(setup.UUID);
    expect(taken.items[0]!.poppedAt).not.toBeNull();
    expect((await json<{ items: unknown[] }>(await k.api(`/machines/${MAC}/boot-queue`))).items).toEqual([]);
  });

  it('the user overwrites the latest version in place; downloads of "latest" serve the new bytes', async () => {
    const replacement = Buffer.from(randomBytes(120_000));
    const { body, contentType } = multipartBody(replacement);
    const up = await alice.request(`${base}/image/${image.UUID}`, { method: 'POST', body, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': 'false' } });
    expect(await up.text()).toBe('Successfully uploaded image: 3\n');
    const versions = await json<{ items: { version: string; artifacts: { sha256: string }[] }[] }>(await k.api(`/images/${image.UUID}/versions`));
    expect(versions.items.map((v) => v.version)).toEqual(['0', '1', '2', '3']);
    expect(versions.items[3]!.artifacts[0]!.sha256).toBe(sha(replacement));
    expect((await k.api(`/artifacts/${sha(changed)}`)).status).toBe(404);
    for (const method of ['GET', 'POST']) {
      const latest = await alice.request(`${base}/image/${image.UUID}/latest`, { method });
      expect(latest.headers.get('content-disposition')).toBe(`filename=${image.UUID}-3.img`);
      // Not "immutable": the same URL serves other bytes after an overwrite.
      expect(latest.headers.get('cache-control')).toBe('private, no-cache');
      expect(sha(Buffer.from(await latest.arrayBuffer()))).toBe(sha(replacement));
    }
  });

  it('logs out: the session cookie stops working', async () => {
    const out = await alice.request(`${base}/auth/logout`, { method: 'POST' });
    expect(out.status).toBe(204);
    expect(alice.cookies.has('kiln_session')).toBe(false);
    const gone = await fetch(`${base}/user/me`, { headers: { cookie: `kiln_session=${alice.seen.find((c) => c.name === 'kiln_session' && c.value !== '')!.value}` } });
    expect(gone.status).toBe(404);
    expect(await gone.text()).toBe("User's role not found\n");
  });
});
