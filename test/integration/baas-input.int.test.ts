// Bad input on the BAAS API: broken JSON, missing names, unknown images and versions, a garbage
// X-BAAS-NewVersion, and uploads cut short (none of which may leave a version or a blob behind).
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody } from './baas-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

async function answer(res: Response): Promise<[number, string]> {
  return [res.status, await res.text()];
}

describe('BAAS bad input', () => {
  let k: TestKiln;
  let base: string;
  let uuid: string;
  let userToken: string;
  const admin = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${k.token}`, ...(init.headers as Record<string, string>) } });
  const asUser = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${userToken}`, ...(init.headers as Record<string, string>) } });
  const versions = async () => (await json<{ items: { version: string }[] }>(await k.api(`/images/${uuid}/versions`))).items.map((v) => v.version);
  const blobFiles = async () => (await readdir(join(k.dataDir, 'blobs', 'sha256'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f)).sort();

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.baas.enabled': 'true' });
    base = k.kiln.adminUrl;
    expect((await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'dora', Name: 'Dora', Email: 'dora@example.test', Role: 'user' }) })).status).toBe(200);
    userToken = (await json<{ Token: string }>(await admin('/user/dora/token', { method: 'POST' }))).Token;
    uuid = (await json<{ UUID: string }>(await asUser('/image', { method: 'POST', body: JSON.stringify({ Name: 'disk', Username: 'dora' }) }))).UUID;
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('broken JSON gets the original 400 answers', async () => {
    expect(await answer(await admin('/user', { method: 'POST', body: '{"Username": "x",' }))).toEqual([400, 'invalid user given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: '[]' }))).toEqual([400, 'invalid user given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 7 }) }))).toEqual([400, 'invalid user given\n']);
    expect(await answer(await asUser('/image', { method: 'POST', body: 'not json' }))).toEqual([400, "couldn't decode image model\n"]);
    expect(await answer(await admin('/machine', { method: 'POST', body: '{' }))).toEqual([400, 'invalid machine given\n']);
    expect(await answer(await asUser('/machine/52:54:00:00:00:01/boot', { method: 'POST', body: '{' }))).toEqual([400, 'Cannot find the machine in the database\n']);
    // JSON arrives whatever the Content-Type says, as Go reads it.
    const typed = await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'eve', Name: 'Eve', Email: 'eve@example.test', Role: 'user' }), headers: { 'content-type': 'text/plain' } });
    expect(await answer(typed)).toEqual([200, 'Successfully created user\n']);
  });

  it('missing or unacceptable names are refused', async () => {
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Name: 'X', Email: 'x@example.test', Role: 'user' }) }))).toEqual([400, 'No username given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'x', Email: 'x@example.test', Role: 'user' }) }))).toEqual([400, 'No name given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'x', Name: 'X', Role: 'user' }) }))).toEqual([400, 'No email given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'x', Name: 'X', Email: 'x@example.test' }) }))).toEqual([400, 'No role given\n']);
    expect(await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'x', Name: 'X', Email: 'x@example.test', Role: 'root' }) }))).toEqual([400, 'invalid user given\n']);
    const [status, text] = await answer(await admin('/user', { method: 'POST', body: JSON.stringify({ Username: '../etc', Name: 'X', Email: 'x@example.test', Role: 'user' }) }));
    expect(status).toBe(400);
    expect(text).toMatch(/^invalid user name/);
    expect((await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'dora', Name: 'D', Email: 'other@example.test', Role: 'user' }) })).status).toBe(409);
    expect(await answer(await asUser('/image', { method: 'POST', body: JSON.stringify({ Username: 'dora' }) }))).toEqual([400, 'Name is not allowed to be empty\n']);
    expect(await answer(await admin('/image', { method: 'POST', body: JSON.stringify({ Name: 'n' }) }))).toEqual([400, 'Username is not allowed to be empty\n']);
    expect(await answer(await asUser('/image', { method: 'POST', body: JSON.stringify({ Name: 'n', Username: 'dora', Versions: [{ Version: 1 }] }) }))).toEqual([400, "There shouldn't be a version\n"]);
    expect(await answer(await asUser('/image', { method: 'POST', body: JSON.stringify({ Name: 'n', Username: 'dora', Type: 'has space' }) })))
      .toEqual([400, 'invalid Type: letters, digits, ".", "_", "-" only, at most 63\n']);
    expect(await answer(await asUser('/user/dora/image_setup', { method: 'POST', body: '{}' }))).toEqual([400, 'Did not set image setup name\n']);
    expect(await answer(await admin('/machine', { method: 'POST', body: JSON.stringify({ Name: 'Machine 1', MacAddress: { Address: '52:54:00:00:00:09' } }) })))
      .toEqual([400, 'invalid hostname: "Machine 1"\n']);
    expect(await answer(await admin('/machine', { method: 'POST', body: JSON.stringify({ Name: 'm', MacAddress: { Address: 'nope' } }) }))).toEqual([400, 'invalid mac address\n']);
    expect(await answer(await asUser('/machine/not-a-mac'))).toEqual([400, 'invalid mac address\n']);
    // A machine that failed to be made leaves nothing (no half-made disk image either).
    expect((await json<{ items: unknown[] }>(await k.api('/machines'))).items).toEqual([]);
  });

  it('unknown images, versions and setups', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await answer(await asUser(`/image/${unknown}`))).toEqual([404, 'cannot get image\n']);
    expect(await answer(await asUser(`/image/${unknown}/0`))).toEqual([404, 'cannot get image\n']);
    expect(await answer(await asUser(`/image/${uuid}/7`))).toEqual([404, 'Cannot download the image\n']);
    expect(await answer(await asUser(`/image/${uuid}/latest-ish`))).toEqual([404, 'Cannot download the image\n']);
    const setup = await json<{ UUID: string }>(await asUser('/user/dora/image_setup', { method: 'POST', body: JSON.stringify({ Name: 's' }) }));
    expect(await answer(await asUser(`/user/dora/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ UUID: unknown, Version: 0 }) })))
      .toEqual([400, 'Failed to add image to image setups\n']);
    expect(await answer(await asUser(`/user/dora/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ UUID: uuid, Version: 9 }) })))
      .toEqual([400, 'Failed to add image to image setups: no such version\n']);
    expect(await answer(await asUser(`/user/dora/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ UUID: uuid, Version: -1 }) })))
      .toEqual([400, 'Cannot find image UUID in JSON message.\n']);
    expect(await answer(await asUser(`/user/dora/image_setup/${unknown}`))).toEqual([400, 'Failed to find image setup\n']);
  });

  it('X-BAAS-NewVersion other than true or false: the original 404, and nothing read or stored', async () => {
    const { body, contentType } = multipartBody(randomBytes(10_000));
    for (const mode of ['yes', 'TRUE', undefined]) {
      const headers: Record<string, string> = { 'content-type': contentType };
      if (mode !== undefined) headers['X-BAAS-NewVersion'] = mode;
      expect(await answer(await asUser(`/image/${uuid}`, { method: 'POST', body, headers }))).toEqual([404, 'cannot fetch the image from the database\n']);
    }
    expect(await versions()).toEqual(['0']);
    expect(await answer(await asUser(`/image/${uuid}`, { method: 'POST', body: 'raw bytes', headers: { 'X-BAAS-NewVersion': 'true' } }))).toEqual([400, 'Cannot parse POST form\n']);
    expect(await versions()).toEqual(['0']);
  });

  it('an upload cut short leaves no version and no blob', async () => {
    const before = await blobFiles();
    const file = randomBytes(3_000_000);
    const { body, contentType } = multipartBody(file);
    // The whole request arrives, but the body stops before the part's closing delimiter.
    const truncated = body.subarray(0, body.length - 40);
    expect(await answer(await asUser(`/image/${uuid}`, { method: 'POST', body: truncated, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': 'true' } })))
      .toEqual([400, 'the multipart body ended before its first part was complete; nothing was stored\n']);

    // The client goes away halfway through.
    const url = new URL(base);
    await new Promise<void>((resolve, reject) => {
      const sock = connect(Number(url.port), url.hostname, () => {
        sock.write(`POST /image/${uuid} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${userToken}\r\nX-BAAS-NewVersion: true\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`);
        sock.write(body.subarray(0, 1_500_000), () => setTimeout(() => { sock.destroy(); resolve(); }, 100));
      });
      sock.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(await versions()).toEqual(['0']);
    expect(await blobFiles()).toEqual(before);
    expect(await readdir(join(k.dataDir, 'blobs', '.tmp'))).toEqual([]);

    // And the same upload, whole, works on the same connection pool afterwards.
    expect(await answer(await asUser(`/image/${uuid}`, { method: 'POST', body, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': 'true' } })))
      .toEqual([200, 'Successfully uploaded image: 1\n']);
    expect(await versions()).toEqual(['0', '1']);
  });
});
