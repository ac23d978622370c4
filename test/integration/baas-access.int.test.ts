// Who may do what on the BAAS API: the original's status codes for no role (404) and a role not
// permitted (403), its "a user may act under their own name" rule, image ownership, machine-scoped
// tokens, user-scoped tokens capped by the user's role, and the `type: system` header giving nothing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, CLIENT_ID, CLIENT_SECRET, multipartBody, startOpenIdProvider, type OpenIdProvider } from './baas-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const MAC = '52:54:00:ac:00:01';
const OTHER_MAC = '52:54:00:ac:00:02';

async function answer(res: Response): Promise<[number, string]> {
  return [res.status, await res.text()];
}

describe('BAAS access control', () => {
  let op: OpenIdProvider;
  let k: TestKiln;
  let base: string;
  const alice = new Browser();
  const bob = new Browser();
  const admin = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${k.token}`, ...(init.headers as Record<string, string>) } });
  const bearer = (token: string) => (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });
  let aliceImage: string;
  let bobImage: string;
  let frozenReadOnly: string;
  let machineToken: string;

  beforeAll(async () => {
    op = await startOpenIdProvider();
    // Secure cookies (the default): the test's browser sends them over http anyway.
    k = await startTestKiln({ 'compat.baas.enabled': 'true', 'login.provider': 'oidc', 'login.issuer': op.issuer, 'login.clientId': CLIENT_ID, 'login.clientSecret': CLIENT_SECRET });
    base = k.kiln.adminUrl;
    await op.register([`${base}/auth/callback`, `${base}/user/login/github/callback`]);

    // BAAS's own login route: a 200 with the URL to visit, not a redirect.
    const start = await alice.request(`${base}/user/login/github`);
    const text = await start.text();
    expect(start.status).toBe(200);
    expect(text).toMatch(/^Visit the following URI: http:\/\/127\.0\.0\.1:\d+\/auth\?\S+\n$/);
    expect(new URL(text.slice('Visit the following URI: '.length).trim()).searchParams.get('redirect_uri')).toBe(`${base}/user/login/github/callback`);
    const pending = alice.seen.find((c) => c.name === 'kiln_login')!;
    expect(pending.attrs).toEqual(expect.arrayContaining(['Path=/', 'Max-Age=600', 'HttpOnly', 'SameSite=Lax', 'Secure']));
    const done = await alice.login(text.slice('Visit the following URI: '.length).trim(), 'alice-id');
    expect(await answer(done)).toEqual([200, 'Please check the cookies to get your session ID!\n']);
    expect(alice.seen.find((c) => c.name === 'kiln_session')!.attrs).toContain('Secure');
    expect((await bob.login(`${base}/auth/login`, 'bob-id')).status).toBe(200);

    const img = async (who: Browser, owner: string) => json<{ UUID: string }>(await who.request(`${base}/image`, { method: 'POST', body: JSON.stringify({ Name: 'disk', Username: owner }) }));
    aliceImage = (await img(alice, 'alice')).UUID;
    bobImage = (await img(bob, 'bob')).UUID;
    frozenReadOnly = (await img(alice, 'alice')).UUID;
    for (const mac of [MAC, OTHER_MAC]) {
      expect((await admin('/machine', { method: 'POST', body: JSON.stringify({ Name: `n${mac.slice(-1)}`, Architecture: 'x86_64', MacAddress: { Address: mac } }) })).status).toBe(201);
    }
    machineToken = (await json<{ Token: string }>(await admin(`/machine/${MAC}/token`, { method: 'POST' }))).Token;
    const setup = await json<{ UUID: string }>(await alice.request(`${base}/user/alice/image_setup`, { method: 'POST', body: JSON.stringify({ Name: 's' }) }));
    for (const [uuid, update] of [[aliceImage, true], [frozenReadOnly, false]] as const) {
      expect((await alice.request(`${base}/user/alice/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ UUID: uuid, Version: 0, Update: update }) })).status).toBe(200);
    }
    expect((await alice.request(`${base}/machine/${MAC}/boot`, { method: 'POST', body: JSON.stringify({ SetupUUID: setup.UUID }) })).status).toBe(200);
    expect((await bearer(machineToken)(`/machine/${MAC}/boot`)).status).toBe(200);
  });
  afterAll(async () => {
    await k?.stop();
    await op?.close();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('without a session or token there is no role: 404', async () => {
    for (const path of ['/machines', '/user/me', `/image/${aliceImage}`, `/machine/${MAC}/boot`]) {
      expect(await answer(await fetch(`${base}${path}`))).toEqual([404, "User's role not found\n"]);
    }
    expect(await answer(await bearer('kiln_not-a-token')('/machines'))).toEqual([404, "User's role not found\n"]);
    expect(await answer(await fetch(`${base}/machines`, { headers: { cookie: 'kiln_session=forged' } }))).toEqual([404, "User's role not found\n"]);
  });

  it('the `type: system` header of the original management OS gives no access at all', async () => {
    expect(await answer(await fetch(`${base}/machine/${MAC}/boot`, { headers: { type: 'system' } }))).toEqual([404, "User's role not found\n"]);
    expect(await answer(await fetch(`${base}/image/${aliceImage}/0`, { headers: { type: 'system' } }))).toEqual([404, "User's role not found\n"]);
    expect(await answer(await bob.request(`${base}/image/${aliceImage}/0`, { headers: { type: 'system' } }))).toEqual([403, 'user does not own this image\n']);
    expect(await answer(await bob.request(`${base}/machine/${MAC}/boot`, { headers: { type: 'system' } }))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
  });

  it('a user is refused admin and moderator routes with 403', async () => {
    expect(await answer(await alice.request(`${base}/machine`, { method: 'POST', body: JSON.stringify({ MacAddress: { Address: '52:54:00:ac:00:09' } }) })))
      .toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    expect(await answer(await alice.request(`${base}/users`))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    expect(await answer(await alice.request(`${base}/machine/${MAC}`, { method: 'DELETE' }))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    expect((await admin('/machines')).status).toBe(200);
  });

  it("a user may not touch another user's image (403), nor queue another user's setup", async () => {
    expect(await answer(await bob.request(`${base}/image/${aliceImage}`))).toEqual([403, 'user does not own this image\n']);
    expect(await answer(await bob.request(`${base}/image/${aliceImage}/latest`))).toEqual([403, 'user does not own this image\n']);
    const { body, contentType } = multipartBody(randomBytes(1000));
    expect(await answer(await bob.request(`${base}/image/${aliceImage}`, { method: 'POST', body, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': 'true' } })))
      .toEqual([403, 'user does not own this image\n']);
    expect(await answer(await bob.request(`${base}/image/${aliceImage}`, { method: 'DELETE' }))).toEqual([403, 'user does not own this image\n']);
    expect((await bob.request(`${base}/image/${bobImage}`)).status).toBe(200);
    // Nor put it into a setup of their own (a machine would then read it).
    const setup = await json<{ UUID: string }>(await bob.request(`${base}/user/bob/image_setup`, { method: 'POST', body: JSON.stringify({ Name: 'b' }) }));
    expect(await answer(await bob.request(`${base}/user/bob/image_setup/${setup.UUID}/images`, { method: 'POST', body: JSON.stringify({ UUID: aliceImage, Version: 0 }) })))
      .toEqual([403, 'user does not own this image\n']);
    const alices = await json<{ UUID: string }[]>(await alice.request(`${base}/user/alice/image_setups`));
    expect(await answer(await bob.request(`${base}/machine/${OTHER_MAC}/boot`, { method: 'POST', body: JSON.stringify({ SetupUUID: alices[0]!.UUID }) })))
      .toEqual([403, 'user does not own this image setup\n']);
    // Creating an image for someone else is for moderators and admins.
    expect(await answer(await bob.request(`${base}/image`, { method: 'POST', body: JSON.stringify({ Name: 'x', Username: 'alice' }) }))).toEqual([403, 'user does not own this image\n']);
  });

  it('a user may use moderator routes under their own {name}, not under another', async () => {
    expect(await (await alice.request(`${base}/user/alice`)).json()).toEqual({ Username: 'alice', Name: 'Alice Liddell', Email: 'alice@example.test', Role: 'user' });
    expect((await json<{ UUID: string }[]>(await alice.request(`${base}/user/alice/images`))).map((i) => i.UUID).sort()).toEqual([aliceImage, frozenReadOnly].sort());
    expect(await answer(await alice.request(`${base}/user/bob`))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    expect(await answer(await alice.request(`${base}/user/bob/images`))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    // The path's name is matched as Kiln stores names, lower-cased.
    expect((await alice.request(`${base}/user/ALICE`)).status).toBe(200);
    // Their own record, but not their own role.
    expect(await answer(await alice.request(`${base}/user/alice`, { method: 'PUT', body: JSON.stringify({ Role: 'admin' }) }))).toEqual([403, 'Only an admin may change roles.\n']);
    const renamed = await alice.request(`${base}/user/alice`, { method: 'PUT', body: JSON.stringify({ Name: 'Alice P. Liddell' }) });
    expect(await renamed.json()).toMatchObject({ Username: 'alice', Name: 'Alice P. Liddell', Role: 'user' });
  });

  it('a machine token acts for its own machine only, on the setup it took, and never on the native API', async () => {
    const mgmt = bearer(machineToken);
    const refused = [403, "User role 'machine' not permitted to access this resource.\n"];
    expect(await answer(await mgmt(`/machine/${OTHER_MAC}/boot`))).toEqual(refused);
    expect(await answer(await mgmt(`/machine/${OTHER_MAC}/image`))).toEqual(refused);
    expect(await answer(await mgmt('/users'))).toEqual(refused);
    expect(await answer(await mgmt(`/image/${aliceImage}`))).toEqual(refused);
    expect(await answer(await mgmt(`/machine/${MAC}/boot`, { method: 'POST', body: JSON.stringify({ SetupUUID: 'x' }) }))).toEqual(refused);
    // Images of the setup it took: readable; writable only where frozen with Update, and only as new versions.
    expect((await mgmt(`/image/${aliceImage}/0`)).status).toBe(200);
    expect((await mgmt(`/image/${frozenReadOnly}/0`)).status).toBe(200);
    expect(await answer(await mgmt(`/image/${bobImage}/0`))).toEqual([403, 'user does not own this image\n']);
    const { body, contentType } = multipartBody(randomBytes(1000));
    const send = (uuid: string, mode: string) => mgmt(`/image/${uuid}`, { method: 'POST', body, headers: { 'content-type': contentType, 'X-BAAS-NewVersion': mode } });
    expect(await answer(await send(frozenReadOnly, 'true'))).toEqual([403, 'user does not own this image\n']);
    expect(await answer(await send(aliceImage, 'false'))).toEqual([403, 'user does not own this image\n']);
    expect(await answer(await send(aliceImage, 'true'))).toEqual([200, 'Successfully uploaded image: 1\n']);

    const native = await fetch(`${base}/api/v1/machines`, { headers: { authorization: `Bearer ${machineToken}` } });
    expect(native.status).toBe(403);
    expect(await native.json()).toMatchObject({ code: 'KILN_AUTH_FORBIDDEN' });
  });

  it("user-scoped tokens act as the user, never above the user's current role", async () => {
    const patch = (role: string) => k.api('/users/alice', { method: 'PATCH', json: { role } });
    expect((await patch('operator')).status).toBe(200);
    const created = await alice.request(`${base}/user/alice/token`, { method: 'POST' });
    expect(created.status).toBe(201);
    const token = (await json<{ Token: string }>(created)).Token;
    const asAlice = bearer(token);
    expect(await (await asAlice('/user/me')).json()).toMatchObject({ Username: 'alice', Role: 'moderator' });
    expect((await asAlice('/users')).status).toBe(200);
    let n = 0;
    const createImage = () => fetch(`${base}/api/v1/images`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `by-alice-${n++}` }),
    });
    expect((await createImage()).status).toBe(201);

    // Demoted: the token made while she was a moderator now acts as a plain user.
    expect((await patch('viewer')).status).toBe(200);
    expect(await answer(await asAlice('/users'))).toEqual([403, "User role 'user' not permitted to access this resource.\n"]);
    const refused = await createImage();
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'KILN_AUTH_FORBIDDEN', detail: 'this needs role operator; token baas.alice.token has viewer' });
  });

  it('the session cookie works on the native API too, but not from another site', async () => {
    const who = await alice.request(`${base}/api/v1/whoami`);
    expect(who.status).toBe(200);
    expect(await who.json()).toMatchObject({ name: 'alice', role: 'viewer' });
    const cross = await alice.request(`${base}/user/alice/image_setup`, { method: 'POST', body: JSON.stringify({ Name: 'x' }), headers: { origin: 'https://evil.example' } });
    expect(await answer(cross)).toEqual([403, 'a cross-site request may not use the login session\n']);
    const same = await alice.request(`${base}/user/alice/image_setup`, { method: 'POST', body: JSON.stringify({ Name: 'x' }), headers: { origin: base } });
    expect(same.status).toBe(200);
  });

  it("a first login gets a new user with the default role; a taken name gets a suffix; later logins find the same user", async () => {
    expect((await admin('/user', { method: 'POST', body: JSON.stringify({ Username: 'carol', Name: 'Another Carol', Email: 'carol2@example.test', Role: 'admin' }) })).status).toBe(200);
    const carol = new Browser();
    expect(await (await carol.login(`${base}/auth/login`, 'carol-id')).json()).toEqual({ name: 'carol-2', displayName: 'Carol Danvers', email: 'carol@example.test', role: 'viewer', via: 'session' });
    const again = new Browser();
    expect(await (await again.login(`${base}/auth/login?return=/user/me`, 'carol-id')).json()).toEqual({ Username: 'carol-2', Name: 'Carol Danvers', Email: 'carol@example.test', Role: 'user' });
    expect((await json<{ items: { name: string; externalId: string | null }[] }>(await k.api('/users'))).items.filter((u) => u.name.startsWith('carol')))
      .toEqual([expect.objectContaining({ name: 'carol', externalId: null }), expect.objectContaining({ name: 'carol-2', externalId: 'oidc:carol-id' })]);
    // Only local paths are followed after the login.
    const elsewhere = new Browser();
    const res = await elsewhere.login(`${base}/auth/login?return=//evil.example/x`, 'carol-id');
    expect(new URL(res.url).pathname).toBe('/auth/me');
  });

  it('a tampered pending-login cookie is refused at the callback', async () => {
    const eve = new Browser();
    await eve.request(`${base}/auth/login`);
    const sealed = eve.cookies.get('kiln_login')!;
    eve.cookies.set('kiln_login', `${sealed.slice(0, -4)}AAAA`);
    const res = await eve.request(`${base}/auth/callback?code=x&state=y`);
    expect(res.status).toBe(401);
    const problem = await json<{ code: string; detail: string }>(res);
    expect(problem.code).toBe('KILN_LOGIN_FAILED');
    expect(problem.detail).toMatch(/not one Kiln made/);
    expect(eve.cookies.has('kiln_session')).toBe(false);
  });
});
