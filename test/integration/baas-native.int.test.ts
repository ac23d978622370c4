// The native side of what BAAS stores: /api/v1/users, /api/v1/image-setups and machines' boot queues,
// with roles, ETags and the OpenAPI document; and browser login when it is off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapiDocument } from '../../src/server/openapi-document.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

describe('native users, image setups and boot queues', () => {
  let k: TestKiln;
  let viewer: string;
  const as = (token: string) => (path: string, init: RequestInit & { json?: unknown } = {}) => k.api(path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.baas.enabled': 'true' });
    viewer = (await json<{ secret: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'ro', role: 'viewer' } }))).secret;
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('admins create, change and delete users; viewers read them; If-Match guards changes', async () => {
    const created = await k.api('/users', { method: 'POST', json: { name: 'frank', displayName: 'Frank', email: 'frank@example.test' } });
    expect(created.status).toBe(201);
    expect(await json(created)).toMatchObject({ name: 'frank', displayName: 'Frank', email: 'frank@example.test', role: 'viewer', externalId: null, revision: 1 });
    const etag = created.headers.get('etag')!;
    expect((await as(viewer)('/users/frank')).status).toBe(200);
    expect((await as(viewer)('/users', { method: 'POST', json: { name: 'x' } })).status).toBe(403);
    expect(await json(await k.api('/users', { method: 'POST', json: { name: 'Bad Name' } }))).toMatchObject({ status: 400, code: 'KILN_USER_INVALID' });
    expect(await json(await k.api('/users', { method: 'POST', json: { name: 'frank2', email: 'not-an-address' } }))).toMatchObject({ status: 400, code: 'KILN_USER_INVALID' });
    expect(await json(await k.api('/users', { method: 'POST', json: { name: 'frank' } }))).toMatchObject({ status: 409, code: 'KILN_USER_EXISTS' });

    const changed = await k.api('/users/frank', { method: 'PATCH', json: { role: 'operator' }, headers: { 'if-match': etag } });
    expect(await json(changed)).toMatchObject({ role: 'operator', revision: 2 });
    expect(await json(await k.api('/users/frank', { method: 'PATCH', json: { role: 'admin' }, headers: { 'if-match': etag } }))).toMatchObject({ status: 412, code: 'KILN_PRECONDITION_FAILED' });
    expect((await k.api('/users/nobody')).status).toBe(404);
  });

  it('POST /tokens makes user-scoped tokens (capped by the user\'s role) and machine-scoped ones (refused on /api/v1)', async () => {
    expect((await k.api('/users', { method: 'POST', json: { name: 'hank', role: 'viewer' } })).status).toBe(201);
    const forHank = await json<{ secret: string; user: string; role: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'hank-cli', role: 'admin', user: 'hank' } }));
    expect(forHank).toMatchObject({ user: 'hank', role: 'admin' });
    // The token says admin, but hank is a viewer: he can read, not write.
    expect((await as(forHank.secret)('/users')).status).toBe(200);
    expect(await json(await as(forHank.secret)('/users', { method: 'POST', json: { name: 'x' } }))).toMatchObject({ status: 403, code: 'KILN_AUTH_FORBIDDEN' });
    const m = await json<{ id: string }>(await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:99:00:01'] } }));
    const forMachine = await json<{ secret: string; machineId: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'mgmt', role: 'operator', machine: '52:54:00:99:00:01' } }));
    expect(forMachine.machineId).toBe(m.id);
    expect(await json(await as(forMachine.secret)('/machines'))).toMatchObject({ status: 403, code: 'KILN_AUTH_FORBIDDEN' });
    expect(await json(await k.api('/tokens', { method: 'POST', json: { name: 'both', role: 'viewer', user: 'hank', machine: m.id } }))).toMatchObject({ status: 400 });
    expect(await json(await k.api('/tokens', { method: 'POST', json: { name: 'ghost', role: 'viewer', user: 'nobody' } }))).toMatchObject({ status: 404, code: 'KILN_USER_NOT_FOUND' });
    expect(await json(await k.api('/tokens', { method: 'POST', json: { name: 'ghost', role: 'viewer', machine: '52:54:00:99:99:99' } }))).toMatchObject({ status: 404, code: 'KILN_MACHINE_NOT_FOUND' });
  });

  it('refuses to delete a user who owns images; deleting one takes their setups along', async () => {
    const base = k.kiln.adminUrl;
    const token = (await json<{ Token: string }>(await fetch(`${base}/user/frank/token`, { method: 'POST', headers: { authorization: `Bearer ${k.token}` } }))).Token;
    const image = await json<{ UUID: string }>(await fetch(`${base}/image`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ Name: 'd', Username: 'frank' }) }));
    const setup = await json<{ UUID: string }>(await fetch(`${base}/user/frank/image_setup`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ Name: 'fs' }) }));
    expect((await json<{ items: { id: string }[] }>(await as(viewer)('/image-setups?owner=frank'))).items.map((s) => s.id)).toEqual([setup.UUID]);
    expect((await json<{ items: unknown[] }>(await as(viewer)('/image-setups?owner=nobody'))).items).toEqual([]);
    expect(await json(await k.api('/users/frank', { method: 'DELETE' }))).toMatchObject({ status: 409, code: 'KILN_USER_IN_USE' });

    expect((await fetch(`${base}/image/${image.UUID}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await k.api(`/images/${image.UUID}`)).status).toBe(404);
    expect((await k.api('/users/frank', { method: 'DELETE' })).status).toBe(204);
    expect((await k.api(`/image-setups/${setup.UUID}`)).status).toBe(404);
    // Their token went with them.
    expect((await fetch(`${base}/user/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });

  it('queues setups for a machine (operators), lists waiting and taken entries (viewers)', async () => {
    const m = await json<{ id: string }>(await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:4e:00:01'] } }));
    const newSetup = () => fetch(`${k.kiln.adminUrl}/user/gina/image_setup`, { method: 'POST', headers: { authorization: `Bearer ${k.token}` }, body: JSON.stringify({ Name: 'g' }) });
    // A setup belongs to an existing user (the original's answer otherwise).
    const refused = await newSetup();
    expect([refused.status, await refused.text()]).toEqual([400, 'Failed to create image setup\n']);
    expect((await k.api('/users', { method: 'POST', json: { name: 'gina' } })).status).toBe(201);
    const setupId = (await json<{ UUID: string }>(await newSetup())).UUID;
    expect((await as(viewer)(`/machines/${m.id}/boot-queue`, { method: 'POST', json: { setup: setupId } })).status).toBe(403);
    const queued = await k.api(`/machines/52:54:00:4e:00:01/boot-queue`, { method: 'POST', json: { setup: setupId, update: true } });
    expect(queued.status).toBe(201);
    expect(await json(queued)).toMatchObject({ machineId: m.id, setup: setupId, update: true, actor: 'admin', poppedAt: null });
    expect(await json(await k.api(`/machines/${m.id}/boot-queue`, { method: 'POST', json: { setup: 'nope' } }))).toMatchObject({ status: 404, code: 'KILN_SETUP_NOT_FOUND' });
    expect((await json<{ items: unknown[] }>(await as(viewer)(`/machines/${m.id}/boot-queue`))).items).toHaveLength(1);
    expect((await json<{ items: unknown[] }>(await as(viewer)(`/machines/${m.id}/boot-queue?popped=true`))).items).toEqual([]);
    expect((await k.api('/machines/52:54:00:4e:00:99/boot-queue')).status).toBe(404);
  });

  it('browser login answers KILN_LOGIN_DISABLED when no provider is configured', async () => {
    const res = await fetch(`${k.kiln.adminUrl}/auth/login`, { redirect: 'manual' });
    expect(res.status).toBe(404);
    expect(await json(res)).toMatchObject({ code: 'KILN_LOGIN_DISABLED' });
    const baas = await fetch(`${k.kiln.adminUrl}/user/login/github`);
    expect([baas.status, await baas.text()]).toEqual([404, 'browser login is off (login.provider none)\n']);
    expect(await json(await fetch(`${k.kiln.adminUrl}/auth/me`))).toMatchObject({ status: 401, code: 'KILN_AUTH_REQUIRED' });
  });

  it('documents the native routes in OpenAPI and leaves the BAAS ones to their original', async () => {
    const doc = (await openapiDocument()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/users']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/v1/users/{name}']!).sort()).toEqual(['delete', 'get', 'patch']);
    expect(Object.keys(doc.paths['/api/v1/image-setups']!)).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/v1/image-setups/{id}']!)).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/v1/machines/{id}/boot-queue']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/image') || p.startsWith('/user') || p.startsWith('/auth'))).toEqual([]);
  });
});
