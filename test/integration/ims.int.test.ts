// Cray IMS on Kiln: the seed README's curl examples replayed against a real Kiln (SQLite and
// PostgreSQL), the three path families, IMS's problem shape, the object store links name, images
// whose manifests become Kiln versions, v3 soft delete / undelete / purge of images, recipes and
// public keys, v2's hard delete with cascade, and the job input IMS refuses. No build runs here: the
// in-process worker is off, so a job stays "creating" until it is deleted.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KILN_VERSION } from '../../src/server/version.js';
import { findExecutable, isCi } from '../e2e/support/e2e-prerequisites.js';
import { freshPgDatabase, pgSkipReason, pgUrl } from '../support/pg.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const run = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NOT_FOUND = 'Requested resource does not exist. Re-run request with valid ID.';
const NO_BODY = 'No input provided. Please provide a JSON body.';
const T = {
  rootfs: 'application/vnd.cray.image.rootfs.squashfs',
  kernel: 'application/vnd.cray.image.kernel',
  initrd: 'application/vnd.cray.image.initrd',
  deletedManifest: 'application/vnd.cray.image.manifest',
};
const TITLES: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 416: 'Range Not Satisfiable', 422: 'Unprocessable Entity' };

const missing = findExecutable('ssh-keygen') === null ? 'ssh-keygen (apt-get install openssh-client)' : findExecutable('tar') === null ? 'tar' : null;
if (missing !== null && isCi()) throw new Error(`CI must run the IMS tests, but ${missing} is missing`);
if (missing !== null) process.stderr.write(`\n  IMS tests skipped: missing ${missing}\n\n`);
if (pgUrl === null) console.warn(`Cray IMS on PostgreSQL skipped: ${pgSkipReason}`);

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  errors?: Record<string, unknown>;
}
interface Link { path: string; etag: string; type: string }
interface ImsImage { id: string; created: string; name: string; link: Link | null; arch: string; metadata: Record<string, string>; deleted?: string }
interface ImsRecipe { id: string; created: string; name: string; link: Link | null; recipe_type: string; linux_distribution: string; template_dictionary: unknown[]; require_dkms: boolean; arch: string; deleted?: string }
interface ImsKey { id: string; created: string; name: string; public_key: string; deleted?: string }
interface ImsJob { id: string; status: string; job_type: string; artifact_id: string; require_dkms: boolean; ssh_containers: unknown[]; [k: string]: unknown }
interface ObjectInfo { bucket: string; key: string; size: number; md5: string; etag: string; sha256: string; content_type: string }

/** Checks IMS's problem+json shape and returns the body. */
async function problem(res: Response, status: number): Promise<Problem> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(text) as Problem;
  expect(p).toMatchObject({ type: 'about:blank', title: TITLES[status], status, instance: new URL(res.url).pathname });
  expect(p.detail.length).toBeGreaterThan(0);
  expect(p.code).toMatch(/^KILN_/);
  return p;
}

async function ok<B = Record<string, unknown>>(res: Response, status = 200): Promise<B> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as B;
}

async function keygen(dir: string, name: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', join(dir, name)]);
  return (await readFile(join(dir, `${name}.pub`), 'utf8')).trim();
}

for (const backend of ['SQLite', 'PostgreSQL'] as const) describe.skipIf(missing !== null || (backend === 'PostgreSQL' && pgUrl === null))(`Cray IMS on Kiln (${backend})`, () => {
  let k: TestKiln;
  let work: string;
  let viewer: string;
  let tar: Buffer;
  let key1: string;
  let key2: string;
  let keyId: string;

  /** IMS request under /apis/ims with the admin token unless told otherwise (null: none). */
  const ims = (path: string, init: RequestInit & { json?: unknown; token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? k.token : init.token;
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${k.kiln.adminUrl}/apis/ims${path}`, { ...init, headers, body });
  };
  const put = (bucket: string, key: string, bytes: Buffer, type = 'application/octet-stream') => ims(`/objects/${bucket}/${key}`, { method: 'PUT', body: bytes, headers: { 'content-type': type } });
  const putOk = async (bucket: string, key: string, bytes: Buffer, type?: string) => ok<ObjectInfo>(await put(bucket, key, bytes, type));
  const getBytes = async (bucket: string, key: string) => {
    const res = await ims(`/objects/${bucket}/${key}`);
    expect(res.status, `${bucket}/${key}`).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  const keysUnder = async (bucket: string, prefix: string) => (await ok<ObjectInfo[]>(await ims(`/objects/${bucket}?prefix=${encodeURIComponent(prefix)}`))).map((o) => o.key);
  const artifactShas = async () => new Set((await json<{ items: { sha256: string }[] }>(await k.api('/artifacts'))).items.map((a) => a.sha256));

  interface Staged { rootfs: Buffer; kernel: Buffer; initrd: Buffer; manifestPath: string }
  const entry = (key: string, bytes: Buffer, type: string) => ({ link: { path: `s3://boot-images/${key}`, etag: md5(bytes), type: 's3' }, type, md5: md5(bytes) });
  /** Uploads rootfs, kernel and initrd under `prefix/` and an IMS manifest listing them (plus `extra`) at `prefix/manifest.json`. */
  async function stage(prefix: string, opts: { version?: unknown; extra?: unknown[]; skipUpload?: 'kernel' } = {}): Promise<Staged> {
    const files = { rootfs: randomBytes(48 * 1024), kernel: randomBytes(16 * 1024), initrd: randomBytes(24 * 1024) };
    for (const [name, bytes] of Object.entries(files)) if (opts.skipUpload !== name) await putOk('boot-images', `${prefix}/${name}`, bytes);
    const artifacts = [entry(`${prefix}/rootfs`, files.rootfs, T.rootfs), entry(`${prefix}/kernel`, files.kernel, T.kernel), entry(`${prefix}/initrd`, files.initrd, T.initrd), ...(opts.extra ?? [])];
    const doc = Buffer.from(JSON.stringify({ version: opts.version ?? '1.0', created: '2024-05-01 10:00:00', artifacts }));
    await putOk('boot-images', `${prefix}/manifest.json`, doc, 'application/json');
    return { ...files, manifestPath: `s3://boot-images/${prefix}/manifest.json` };
  }
  const s3link = (path: string) => ({ path, etag: '', type: 's3' });

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.ims.enabled': 'true', 'jobs.inProcess': 'false', ...(backend === 'PostgreSQL' ? { 'database.url': await freshPgDatabase('ims') } : {}) });
    viewer = (await json<{ secret: string }>(await k.api('/tokens', { method: 'POST', json: { name: 'looker', role: 'viewer' } }))).secret;
    work = await mkdtemp(join(tmpdir(), 'kiln-ims-'));
    // A small root filesystem tarball (rootfs-archive recipes only need a readable tar).
    await mkdir(join(work, 'root', 'etc'), { recursive: true });
    await mkdir(join(work, 'root', 'sbin'), { recursive: true });
    await writeFile(join(work, 'root', 'etc', 'hostname'), 'ims-test\n');
    await writeFile(join(work, 'root', 'sbin', 'init'), '#!/bin/sh\nexec /bin/sh\n', { mode: 0o755 });
    await run('tar', ['-czf', join(work, 'root.tar.gz'), '-C', join(work, 'root'), '.']);
    tar = await readFile(join(work, 'root.tar.gz'));
    key1 = await keygen(work, 'alice');
    key2 = await keygen(work, 'bob');
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (work !== undefined) await removeDir(work);
  });

  describe('health and version', () => {
    it('/healthz/ready and /healthz/live answer 200 {} without a token; /version is a JSON string', async () => {
      for (const path of ['/healthz/ready', '/healthz/live']) expect(await ok(await ims(path, { token: null })), path).toEqual({});
      const v = await ims('/version', { token: null });
      expect(v.status).toBe(200);
      expect(v.headers.get('content-type')).toMatch(/^application\/json/);
      expect(JSON.parse(await v.text())).toBe(KILN_VERSION);
    });
  });

  describe('the README\'s curl examples', () => {
    it('GET /images and /recipes → []', async () => {
      expect(await ok(await ims('/images'))).toEqual([]);
      expect(await ok(await ims('/recipes'))).toEqual([]);
    });

    it('POST /public-keys TEST_KEY_DATA → 422 (Kiln checks keys: a documented deviation); a real key → 201 with IMS fields', async () => {
      const bad = await problem(await ims('/public-keys', { method: 'POST', json: { name: 'test', public_key: 'TEST_KEY_DATA' } }), 422);
      expect(Object.keys(bad.errors!)).toEqual(['public_key']);
      expect(bad.code).toBe('KILN_IMS_INVALID');
      expect(await ok(await ims('/public-keys'))).toEqual([]);

      const made = await ok<ImsKey>(await ims('/public-keys', { method: 'POST', json: { name: 'test', public_key: key1 } }), 201);
      expect(Object.keys(made).sort()).toEqual(['created', 'id', 'name', 'public_key']);
      expect(made.id).toMatch(UUID);
      expect(Number.isNaN(Date.parse(made.created))).toBe(false);
      expect(made).toMatchObject({ name: 'test', public_key: key1 });
      keyId = made.id;
      expect(await ok(await ims(`/public-keys/${keyId}`))).toEqual(made);
      expect(await ok(await ims('/public-keys'))).toEqual([made]);
      // The same key as Kiln's own record.
      expect(await json(await k.api(`/public-keys/${keyId}`))).toMatchObject({ id: keyId, name: 'test', publicKey: key1, deletedAt: null });
      // A second key with the name taken: 422 on name.
      expect(Object.keys((await problem(await ims('/public-keys', { method: 'POST', json: { name: 'test', public_key: key2 } }), 422)).errors!)).toEqual(['name']);
    });
  });

  describe('auth and problems', () => {
    it('reads need a token (401), writes an operator (viewer: 403), both as problem+json', async () => {
      for (const path of ['/images', '/v3/recipes', '/v3/deleted/images', '/jobs', '/objects/boot-images']) {
        expect((await problem(await ims(path, { token: null }), 401)).code, path).toBe('KILN_AUTH_REQUIRED');
        expect((await ims(path, { token: viewer })).status, path).toBe(200);
      }
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'x' }, token: viewer }), 403)).code).toBe('KILN_AUTH_FORBIDDEN');
      expect((await problem(await ims('/objects/boot-images/v/x', { method: 'PUT', body: Buffer.from('x'), token: viewer }), 403)).code).toBe('KILN_AUTH_FORBIDDEN');
      await problem(await ims('/objects/boot-images/v/x', { method: 'PUT', body: Buffer.from('x'), token: 'not-a-token' }), 401);
      expect(await ok(await ims('/images'))).toEqual([]);
      expect(await keysUnder('boot-images', 'v/')).toEqual([]);
    });

    it('400 for a missing or non-JSON body, 404 with IMS\'s detail for unknown ids, 422 with an errors map', async () => {
      for (const path of ['/images', '/v3/recipes', '/v2/public-keys', '/jobs']) {
        const p = await problem(await ims(path, { method: 'POST' }), 400);
        expect(p, path).toMatchObject({ detail: NO_BODY, code: 'KILN_IMS_BAD_REQUEST' });
      }
      expect((await problem(await ims('/images', { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } }), 400)).detail).toMatch(/not valid JSON/);
      const unknown = '00000000-0000-4000-8000-000000000000';
      for (const path of [`/images/${unknown}`, `/v2/recipes/${unknown}`, `/v3/public-keys/${unknown}`, `/jobs/${unknown}`, '/recipes/RECIPE_ID', `/v3/deleted/images/${unknown}`]) {
        const p = await problem(await ims(path), 404);
        expect(p, path).toMatchObject({ detail: NOT_FOUND, code: 'KILN_IMS_RECORD_NOT_FOUND' });
      }
      for (const [method, path] of [['DELETE', `/v3/images/${unknown}`], ['PATCH', `/recipes/${unknown}`], ['DELETE', `/v2/public-keys/${unknown}`]] as const) {
        expect((await problem(await ims(path, { method, json: { arch: 'x86_64' } }), 404)).detail, `${method} ${path}`).toBe(NOT_FOUND);
      }
      // IMS's `if not json_data`: an empty object, list, null or false is no input too.
      for (const body of ['{}', '[]', 'null', 'false', '""', ' {} ']) {
        expect((await problem(await ims('/v3/images', { method: 'POST', body, headers: { 'content-type': 'application/json' } }), 400)).detail, body).toBe(NO_BODY);
      }
      expect((await problem(await ims(`/v3/deleted/recipes/${unknown}`, { method: 'PATCH', json: {} }), 400)).detail).toBe(NO_BODY);
      expect((await problem(await ims('/jobs', { method: 'POST', json: [1] }), 422)).errors).toEqual({ _schema: ['Invalid input type.'] });
      // Ids that are not UUIDs are simply not found (PostgreSQL once answered 500 for a NUL in one).
      for (const [method, path] of [['GET', '/images/%00'], ['GET', '/recipes/%00'], ['GET', '/public-keys/a%00b'], ['GET', '/jobs/%00'], ['DELETE', '/v3/deleted/images/%00'], ['DELETE', '/v2/recipes/%00']] as const) {
        expect((await problem(await ims(path, { method }), 404)).detail, `${method} ${path}`).toBe(NOT_FOUND);
      }
      // So are NULs in bodies (PostgreSQL cannot store them in text).
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'a\u0000b' } }), 422)).errors).toEqual({ name: ['Not a valid string: it holds a NUL character.'] });
      expect(await ok(await ims('/images'))).toEqual([]);
      const p = await problem(await ims('/recipes', { method: 'POST', json: { name: '', recipe_type: 'docker', extra: true } }), 422);
      expect(p.errors).toEqual({
        name: ['Shorter than minimum length 1.'],
        recipe_type: [expect.stringMatching(/^Must be one of: kiwi-ng, packer, /)],
        linux_distribution: ['Missing data for required field.'],
        extra: ['Unknown field.'],
      });
      expect(p.title).toBe('Unprocessable Entity');
      // IMS reads the body as JSON whatever its Content-Type says; at most 1 MiB of it.
      expect((await problem(await ims('/recipes', { method: 'POST', body: '{"name":"x"}', headers: { 'content-type': 'text/plain' } }), 422)).errors).toMatchObject({ recipe_type: ['Missing data for required field.'] });
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'x'.repeat(1024 * 1024) } }), 413)).code).toBe('KILN_REQUEST_BODY_TOO_LARGE');
      expect(await ok(await ims('/recipes'))).toEqual([]);
      // Unknown routes answer in the same shape.
      expect((await problem(await ims('/nothing-here'), 404)).code).toBe('KILN_ROUTE_NOT_FOUND');
    });
  });

  describe('objects', () => {
    const data = randomBytes(100 * 1024);

    it('PUT stores the bytes (md5, sha256, size, type); GET, Range and HEAD read them; a bucket lists by prefix', async () => {
      const o = await putOk('boot-images', 'obj/a/data.bin', data, 'application/x-test');
      expect(o).toMatchObject({ bucket: 'boot-images', key: 'obj/a/data.bin', size: data.length, md5: md5(data), etag: md5(data), sha256: sha256(data), content_type: 'application/x-test' });
      expect((await getBytes('boot-images', 'obj/a/data.bin')).equals(data)).toBe(true);
      const range = await ims('/objects/boot-images/obj/a/data.bin', { headers: { range: 'bytes=10-19' } });
      expect(range.status).toBe(206);
      expect(range.headers.get('content-range')).toBe(`bytes 10-19/${data.length}`);
      expect(Buffer.from(await range.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
      expect((await ims('/objects/boot-images/obj/a/data.bin', { headers: { range: `bytes=${data.length + 5}-` } })).status).toBe(416);
      const head = await ims('/objects/boot-images/obj/a/data.bin', { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(data.length));
      expect(head.headers.get('content-type')).toBe('application/x-test');
      expect((await head.arrayBuffer()).byteLength).toBe(0);
      // Empty objects are objects (Content-Length: 0 reaches no body parser).
      expect(await ok<ObjectInfo>(await ims('/objects/boot-images/obj/empty', { method: 'PUT' }))).toMatchObject({ size: 0, md5: md5(Buffer.alloc(0)), sha256: sha256(Buffer.alloc(0)) });
      const empty = await ims('/objects/boot-images/obj/empty');
      expect([empty.status, empty.headers.get('content-length'), (await empty.arrayBuffer()).byteLength]).toEqual([200, '0', 0]);
      expect((await ims('/objects/boot-images/obj/empty', { method: 'DELETE' })).status).toBe(204);
      const untyped = await ok<ObjectInfo>(await ims('/objects/boot-images/obj/b', { method: 'PUT', body: Buffer.from('b') }));
      expect(untyped).toMatchObject({ key: 'obj/b', size: 1, content_type: 'application/octet-stream' });
      await putOk('ims', 'obj/c', Buffer.from('c'));
      expect(await keysUnder('boot-images', 'obj/')).toEqual(['obj/a/data.bin', 'obj/b']);
      expect(await keysUnder('boot-images', 'obj/a')).toEqual(['obj/a/data.bin']);
      expect(await keysUnder('ims', 'obj/')).toEqual(['obj/c']);
      expect(await keysUnder('ims', 'nothing/')).toEqual([]);
    });

    it('PUT replaces; DELETE removes (then 404); bad keys and buckets are refused with 400', async () => {
      const other = randomBytes(1000);
      expect((await putOk('boot-images', 'obj/b', other)).sha256).toBe(sha256(other));
      expect((await getBytes('boot-images', 'obj/b')).equals(other)).toBe(true);
      expect((await ims('/objects/boot-images/obj/b', { method: 'DELETE' })).status).toBe(204);
      expect((await problem(await ims('/objects/boot-images/obj/b'), 404)).code).toBe('KILN_IMS_OBJECT_NOT_FOUND');
      expect((await problem(await ims('/objects/boot-images/obj/b', { method: 'DELETE' }), 404)).code).toBe('KILN_IMS_OBJECT_NOT_FOUND');
      // The replaced and the deleted bytes go; those a key still names stay.
      const shas = await artifactShas();
      expect(shas.has(sha256(other))).toBe(false);
      expect(shas.has(sha256(data))).toBe(true);
      for (const path of ['/objects/boot-images/a//b', '/objects/boot-images/a%0Ab', '/objects/Bad_Bucket/a', '/objects/boot-images/']) {
        expect((await problem(await ims(path, { method: 'PUT', body: Buffer.from('x') }), 400)).code, path).toBe('KILN_IMS_BAD_REQUEST');
      }
      expect(await keysUnder('boot-images', 'a')).toEqual([]);
      // Listing: a bad bucket name or a prefix with control characters is a 400 too.
      for (const path of ['/objects/Bad_Bucket', '/objects/boot-images?prefix=%00', `/objects/boot-images?prefix=${'x'.repeat(1025)}`]) {
        expect((await problem(await ims(path), 400)).code, path.slice(0, 60)).toBe('KILN_IMS_BAD_REQUEST');
      }
    });
  });

  describe('images', () => {
    let first: ImsImage;
    let firstFiles: Staged;

    it('POST with a link to an uploaded manifest: 201, and Kiln image ims-<id> version 1 holds the artifacts', async () => {
      firstFiles = await stage('uploads/first');
      first = await ok<ImsImage>(await ims('/images', { method: 'POST', json: { name: 'cos-2.6', link: s3link(firstFiles.manifestPath), metadata: { key: 'owner', value: 'alice' } } }), 201);
      expect(first.id).toMatch(UUID);
      expect(first).toMatchObject({ name: 'cos-2.6', arch: 'x86_64', metadata: { owner: 'alice' }, link: { path: firstFiles.manifestPath, type: 's3' } });
      expect(Object.keys(first).sort()).toEqual(['arch', 'created', 'id', 'link', 'metadata', 'name']);

      const image = await json(await k.api(`/images/ims-${first.id}`));
      expect(image).toMatchObject({ name: `ims-${first.id}`, labels: { compat: 'ims' }, deletedAt: null });
      const v = await json<{ arch: string; metadata: Record<string, unknown>; artifacts: { name: string; role: string; sha256: string; size: number }[] }>(await k.api(`/images/ims-${first.id}/versions/1`));
      expect(v.arch).toBe('x86_64');
      expect(v.metadata).toMatchObject({ ims: { id: first.id, name: 'cos-2.6', manifest: firstFiles.manifestPath } });
      const byRole = Object.fromEntries(v.artifacts.filter((a) => a.role !== 'other').map((a) => [a.role, a]));
      expect(byRole.rootfs).toMatchObject({ sha256: sha256(firstFiles.rootfs), size: firstFiles.rootfs.length });
      expect(byRole.kernel).toMatchObject({ sha256: sha256(firstFiles.kernel), size: firstFiles.kernel.length });
      expect(byRole.initrd).toMatchObject({ sha256: sha256(firstFiles.initrd), size: firstFiles.initrd.length });
      // Kiln's manifest of the version lists each artifact with its IMS type and md5.
      const kilnManifest = v.artifacts.find((a) => a.name === 'manifest.json')!;
      const doc = JSON.parse((await (await k.api(`/artifacts/${kilnManifest.sha256}`)).text())) as { version: string; artifacts: { type: string; md5: string; sha256: string }[] };
      expect(doc.version).toBe('1.0');
      expect(doc.artifacts.find((a) => a.type === T.rootfs)).toMatchObject({ sha256: sha256(firstFiles.rootfs), md5: md5(firstFiles.rootfs) });
    });

    it('unversioned, /v2 and /v3 serve the same records', async () => {
      const lists = await Promise.all(['/images', '/v2/images', '/v3/images'].map(async (p) => ok<ImsImage[]>(await ims(p))));
      expect(lists[0]).toEqual([first]);
      expect(lists[1]).toEqual(lists[0]);
      expect(lists[2]).toEqual(lists[0]);
      for (const p of [`/images/${first.id}`, `/v2/images/${first.id}`, `/v3/images/${first.id}`]) expect(await ok(await ims(p)), p).toEqual(first);
    });

    it('refuses bad manifests: two rootfs 400, a missing artifact 422, version "2.0" 422, a link path in use 422, no manifest 422', async () => {
      const before = (await json<{ items: unknown[] }>(await k.api('/images'))).items.length;
      const two = await stage('uploads/two', { extra: [entry('uploads/first/rootfs', firstFiles.rootfs, T.rootfs)] });
      const p400 = await problem(await ims('/images', { method: 'POST', json: { name: 'two', link: s3link(two.manifestPath) } }), 400);
      expect(p400.detail).toMatch(/exactly one rootfs.*lists 2/);
      const gone = await stage('uploads/gone', { skipUpload: 'kernel' });
      const missingArtifact = await problem(await ims('/images', { method: 'POST', json: { name: 'gone', link: s3link(gone.manifestPath) } }), 422);
      expect(missingArtifact.errors).toEqual({ link: [expect.stringContaining('s3://boot-images/uploads/gone/kernel')] });
      const v2 = await stage('uploads/v2', { version: '2.0' });
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'v2', link: s3link(v2.manifestPath) } }), 422)).errors).toEqual({ link: [expect.stringMatching(/version "2.0"/)] });
      const taken = await problem(await ims('/images', { method: 'POST', json: { name: 'again', link: s3link(firstFiles.manifestPath) } }), 422);
      expect(taken.errors).toEqual({ link: [`The link path is already used by image ${first.id}.`] });
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'none', link: s3link('s3://boot-images/uploads/none/manifest.json') } }), 422)).errors).toEqual({ link: [expect.stringContaining('does not exist')] });
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'http', link: { path: 'https://x/m.json', type: 'http' } } }), 422)).errors).toEqual({ link: { type: ['Must be one of: s3.'] } });
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'dots', link: s3link('s3://boot-images/a/../m.json') } }), 422)).errors).toEqual({ link: { path: ['Not an s3://<bucket>/<key> path.'] } });
      await putOk('boot-images', 'uploads/big/manifest.json', Buffer.alloc(1024 * 1024 + 1, 0x20), 'application/json');
      expect((await problem(await ims('/images', { method: 'POST', json: { name: 'big', link: s3link('s3://boot-images/uploads/big/manifest.json') } }), 422)).errors).toEqual({ link: ['The manifest is too large.'] });
      // Nothing was made: no IMS record, no Kiln image.
      expect((await ok<ImsImage[]>(await ims('/images'))).map((i) => i.id)).toEqual([first.id]);
      expect((await json<{ items: unknown[] }>(await k.api('/images'))).items).toHaveLength(before);
    });

    it('PATCH: the README\'s {"platform": …} is an unknown field (422); metadata set / remove; arch; the link is set once', async () => {
      const readme = await problem(await ims(`/images/${first.id}`, { method: 'PATCH', json: { platform: 'aarch64' } }), 422);
      expect(readme.errors).toEqual({ platform: ['Unknown field.'] });
      let img = await ok<ImsImage>(await ims(`/images/${first.id}`, { method: 'PATCH', json: { metadata: { operation: 'set', key: 'site', value: 'lab' } } }));
      expect(img.metadata).toEqual({ owner: 'alice', site: 'lab' });
      img = await ok<ImsImage>(await ims(`/v3/images/${first.id}`, { method: 'PATCH', json: { metadata: { operation: 'set', key: 'site', value: 'prod' } } }));
      expect(img.metadata).toEqual({ owner: 'alice', site: 'prod' });
      img = await ok<ImsImage>(await ims(`/images/${first.id}`, { method: 'PATCH', json: { metadata: { operation: 'remove', key: 'owner' } } }));
      expect(img.metadata).toEqual({ site: 'prod' });
      img = await ok<ImsImage>(await ims(`/images/${first.id}`, { method: 'PATCH', json: { metadata: { operation: 'remove', key: 'never-set' } } }));
      expect(img.metadata).toEqual({ site: 'prod' });
      expect((await problem(await ims(`/images/${first.id}`, { method: 'PATCH', json: { metadata: { operation: 'set', key: 'k' } } }), 422)).errors).toEqual({ metadata: { value: ['Missing data for required field.'] } });
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`))).metadata).toEqual({ site: 'prod' });
      // A linked image's artifacts are for its arch: the same arch is fine, another is a conflict.
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`, { method: 'PATCH', json: { arch: 'x86_64' } }))).arch).toBe('x86_64');
      expect((await problem(await ims(`/images/${first.id}`, { method: 'PATCH', json: { arch: 'aarch64' } }), 409)).detail).toMatch(/arch stays/);
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`))).arch).toBe('x86_64');
      // The same link again is fine; another one is a patch conflict.
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`, { method: 'PATCH', json: { link: s3link(firstFiles.manifestPath) } }))).link!.path).toBe(firstFiles.manifestPath);
      const other = await stage('uploads/other');
      const conflict = await problem(await ims(`/images/${first.id}`, { method: 'PATCH', json: { link: s3link(other.manifestPath) } }), 409);
      expect(conflict.code).toBe('KILN_IMS_CONFLICT');
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`))).link!.path).toBe(firstFiles.manifestPath);
    });

    it('an image a Kiln profile boots cannot be deleted (409) until the profile goes', async () => {
      expect((await k.api(`/images/ims-${first.id}/channels/stable/promote`, { method: 'POST', json: { version: '1' } })).status).toBe(200);
      expect((await k.api('/profiles', { method: 'POST', json: { name: 'ims-boot', image: { image: `ims-${first.id}`, channel: 'stable' } } })).status).toBe(201);
      for (const path of [`/v3/images/${first.id}`, `/v2/images/${first.id}`]) {
        const p = await problem(await ims(path, { method: 'DELETE' }), 409);
        expect(p.detail, path).toMatch(/booted by Kiln profiles ims-boot/);
      }
      expect((await ok<ImsImage>(await ims(`/images/${first.id}`))).link!.path).toBe(firstFiles.manifestPath);
      expect(await keysUnder('boot-images', 'uploads/first/')).toHaveLength(4);
      expect((await k.api('/profiles/ims-boot', { method: 'DELETE' })).status).toBe(204);
    });

    describe('v3 soft delete, undelete and purge', () => {
      let img: ImsImage;
      let files: Staged;
      const keys = ['initrd', 'kernel', 'manifest.json', 'rootfs'];

      it('a record made without a link gets one by PATCH: the artifacts under <id>/ become Kiln version 1', async () => {
        img = await ok<ImsImage>(await ims('/v3/images', { method: 'POST', json: { name: 'to-delete', arch: 'x86_64' } }), 201);
        expect(img.link).toBeNull();
        expect((await k.api(`/images/ims-${img.id}`)).status).toBe(404);
        files = await stage(img.id);
        const linked = await ok<ImsImage>(await ims(`/v3/images/${img.id}`, { method: 'PATCH', json: { link: { path: files.manifestPath, etag: 'abc', type: 's3' } } }));
        expect(linked.link).toEqual({ path: files.manifestPath, etag: 'abc', type: 's3' });
        const v = await json<{ artifacts: { role: string; sha256: string }[] }>(await k.api(`/images/ims-${img.id}/versions/1`));
        expect(v.artifacts.find((a) => a.role === 'rootfs')!.sha256).toBe(sha256(files.rootfs));
        expect(await keysUnder('boot-images', `${img.id}/`)).toEqual(keys.map((n) => `${img.id}/${n}`));
      });

      it('DELETE /v3/images/{id}: gone from the list, in /v3/deleted/images with a deleted manifest; objects under deleted/<id>/', async () => {
        expect((await ims(`/v3/images/${img.id}`, { method: 'DELETE' })).status).toBe(204);
        expect((await ok<ImsImage[]>(await ims('/images'))).map((i) => i.id)).toEqual([first.id]);
        expect((await problem(await ims(`/v3/images/${img.id}`), 404)).detail).toBe(NOT_FOUND);
        const deleted = await ok<ImsImage[]>(await ims('/v3/deleted/images'));
        expect(deleted.map((i) => i.id)).toEqual([img.id]);
        const d = deleted[0]!;
        expect(d).toMatchObject({ name: 'to-delete', link: { path: `s3://boot-images/deleted/${img.id}/deleted_manifest.json`, type: 's3' } });
        expect(Number.isNaN(Date.parse(d.deleted!))).toBe(false);
        expect(await ok(await ims(`/v3/deleted/images/${img.id}`))).toEqual(d);
        // /v3 only.
        for (const path of ['/v2/deleted/images', '/deleted/images', `/v2/deleted/images/${img.id}`]) expect((await problem(await ims(path), 404)).code, path).toBe('KILN_ROUTE_NOT_FOUND');

        expect(await keysUnder('boot-images', `${img.id}/`)).toEqual([]);
        expect(await keysUnder('boot-images', `deleted/${img.id}/`)).toEqual(['deleted_manifest.json', ...keys].sort().map((n) => `deleted/${img.id}/${n}`));
        expect((await getBytes('boot-images', `deleted/${img.id}/rootfs`)).equals(files.rootfs)).toBe(true);
        const dm = JSON.parse((await getBytes('boot-images', `deleted/${img.id}/deleted_manifest.json`)).toString()) as { version: string; artifacts: { link: Link; type: string; md5: string }[] };
        expect(dm.version).toBe('1.0');
        expect(dm.artifacts.map((a) => a.link.path).sort()).toEqual(keys.map((n) => `s3://boot-images/deleted/${img.id}/${n}`));
        expect(dm.artifacts.find((a) => a.type === T.deletedManifest)!.link.path).toBe(`s3://boot-images/deleted/${img.id}/manifest.json`);
        expect(dm.artifacts.find((a) => a.type === T.rootfs)!.md5).toBe(md5(files.rootfs));
        // Kiln's image is soft deleted with it.
        expect((await json<{ deletedAt: string | null }>(await k.api(`/images/ims-${img.id}`))).deletedAt).not.toBeNull();
        expect((await json<{ items: { name: string }[] }>(await k.api('/images?deleted=true'))).items.map((i) => i.name)).toContain(`ims-${img.id}`);
      });

      it('PATCH /v3/deleted/images/{id} {"operation":"undelete"}: 204, record, objects (same bytes) and Kiln image back', async () => {
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH', json: { operation: 'restore' } }), 422)).errors).toEqual({ operation: ['Must be one of: undelete.'] });
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH', json: { operation: 'undelete', force: true } }), 422)).errors).toEqual({ force: ['Unknown field.'] });
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH' }), 400)).detail).toBe(NO_BODY);
        expect((await ok<ImsImage[]>(await ims('/v3/deleted/images'))).map((i) => i.id)).toEqual([img.id]);
        // A key taken meanwhile: the undelete is refused and nothing moves.
        await putOk('boot-images', `${img.id}/kernel`, Buffer.from('squatter'));
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH', json: { operation: 'undelete' } }), 409)).code).toBe('KILN_IMS_OBJECT_EXISTS');
        expect((await ok<ImsImage[]>(await ims('/v3/deleted/images'))).map((i) => i.id)).toEqual([img.id]);
        expect(await keysUnder('boot-images', `deleted/${img.id}/`)).toHaveLength(5);
        expect(await keysUnder('boot-images', `${img.id}/`)).toEqual([`${img.id}/kernel`]);
        expect((await json<{ deletedAt: string | null }>(await k.api(`/images/ims-${img.id}`))).deletedAt).not.toBeNull();
        expect((await ims(`/objects/boot-images/${img.id}/kernel`, { method: 'DELETE' })).status).toBe(204);

        expect((await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH', json: { operation: 'undelete' } })).status).toBe(204);
        expect(await ok(await ims('/v3/deleted/images'))).toEqual([]);
        const back = await ok<ImsImage>(await ims(`/images/${img.id}`));
        expect(back).not.toHaveProperty('deleted');
        expect(back).toMatchObject({ name: 'to-delete', link: { path: files.manifestPath, type: 's3' } });
        expect(await keysUnder('boot-images', `deleted/${img.id}/`)).toEqual([]);
        expect(await keysUnder('boot-images', `${img.id}/`)).toEqual(keys.map((n) => `${img.id}/${n}`));
        for (const name of ['rootfs', 'kernel', 'initrd'] as const) expect((await getBytes('boot-images', `${img.id}/${name}`)).equals(files[name]), name).toBe(true);
        expect((await json<{ deletedAt: string | null }>(await k.api(`/images/ims-${img.id}`))).deletedAt).toBeNull();
        // Not deleted any more: undelete is a 404.
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'PATCH', json: { operation: 'undelete' } }), 404)).detail).toBe(NOT_FOUND);
      });

      it('DELETE /v3/deleted/images/{id} purges: objects, record and Kiln image gone, and the bytes only it used', async () => {
        expect((await ims(`/v3/images/${img.id}`, { method: 'DELETE' })).status).toBe(204);
        const before = await artifactShas();
        for (const b of [files.rootfs, files.kernel, files.initrd]) expect(before.has(sha256(b))).toBe(true);
        expect((await ims(`/v3/deleted/images/${img.id}`, { method: 'DELETE' })).status).toBe(204);
        expect(await ok(await ims('/v3/deleted/images'))).toEqual([]);
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`), 404)).detail).toBe(NOT_FOUND);
        expect(await keysUnder('boot-images', `deleted/${img.id}/`)).toEqual([]);
        expect(await keysUnder('boot-images', `${img.id}/`)).toEqual([]);
        expect((await k.api(`/images/ims-${img.id}`)).status).toBe(404);
        const after = await artifactShas();
        for (const b of [files.rootfs, files.kernel, files.initrd]) expect(after.has(sha256(b))).toBe(false);
        // The first image's bytes are untouched.
        expect(after.has(sha256(firstFiles.rootfs))).toBe(true);
        expect((await problem(await ims(`/v3/deleted/images/${img.id}`, { method: 'DELETE' }), 404)).detail).toBe(NOT_FOUND);
      });
    });

    it('v2 DELETE is a hard delete: ?cascade=false keeps the objects (and their bytes), the default removes them', async () => {
      const keep = await stage('uploads/keep');
      const a = await ok<ImsImage>(await ims('/images', { method: 'POST', json: { name: 'keep', link: s3link(keep.manifestPath) } }), 201);
      const drop = await stage('uploads/drop');
      const b = await ok<ImsImage>(await ims('/v2/images', { method: 'POST', json: { name: 'drop', link: s3link(drop.manifestPath) } }), 201);
      expect((await problem(await ims(`/v2/images/${a.id}?cascade=perhaps`, { method: 'DELETE' }), 400)).detail).toMatch(/cascade/);
      expect((await ims(`/v2/images/${a.id}?cascade=false`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/images/${b.id}`, { method: 'DELETE' })).status).toBe(204);
      for (const id of [a.id, b.id]) {
        expect((await ims(`/images/${id}`)).status).toBe(404);
        expect((await k.api(`/images/ims-${id}`)).status).toBe(404);
      }
      // Hard: nothing in the deleted collection.
      expect(await ok(await ims('/v3/deleted/images'))).toEqual([]);
      expect(await keysUnder('boot-images', 'uploads/keep/')).toEqual(['initrd', 'kernel', 'manifest.json', 'rootfs'].map((n) => `uploads/keep/${n}`));
      expect(await keysUnder('boot-images', 'uploads/drop/')).toEqual([]);
      const shas = await artifactShas();
      expect(shas.has(sha256(keep.rootfs))).toBe(true);
      expect(shas.has(sha256(drop.rootfs))).toBe(false);
      expect((await getBytes('boot-images', 'uploads/keep/rootfs')).equals(keep.rootfs)).toBe(true);
    });
  });

  describe('recipes', () => {
    let tiny: ImsRecipe;
    let kiwi: ImsRecipe;
    let packer: ImsRecipe;

    it('POST a rootfs-archive recipe (Kiln\'s type) linked to an uploaded tar; kiwi-ng and packer without a link', async () => {
      const o = await putOk('ims', 'recipes/tiny.tar.gz', tar, 'application/gzip');
      tiny = await ok<ImsRecipe>(await ims('/recipes', { method: 'POST', json: { name: 'tiny', recipe_type: 'rootfs-archive', linux_distribution: 'other', link: { path: 's3://ims/recipes/tiny.tar.gz', type: 's3' } } }), 201);
      expect(tiny.id).toMatch(UUID);
      expect(tiny).toMatchObject({ name: 'tiny', recipe_type: 'rootfs-archive', linux_distribution: 'other', template_dictionary: [], require_dkms: true, arch: 'x86_64', link: { path: 's3://ims/recipes/tiny.tar.gz', etag: o.md5, type: 's3' } });
      expect(Object.keys(tiny).sort()).toEqual(['arch', 'created', 'id', 'link', 'linux_distribution', 'name', 'recipe_type', 'require_dkms', 'template_dictionary']);
      kiwi = await ok<ImsRecipe>(await ims('/v3/recipes', { method: 'POST', json: { name: 'cos', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', require_dkms: 'no', template_dictionary: [{ key: 'CSM_RELEASE', value: '1.6' }] } }), 201);
      expect(kiwi).toMatchObject({ link: null, require_dkms: false, template_dictionary: [{ key: 'CSM_RELEASE', value: '1.6' }] });
      packer = await ok<ImsRecipe>(await ims('/v2/recipes', { method: 'POST', json: { name: 'pk', recipe_type: 'packer', linux_distribution: 'sles15', arch: 'aarch64', link: null } }), 201);
      expect(packer).toMatchObject({ link: null, arch: 'aarch64' });
      for (const p of ['/recipes', '/v2/recipes', '/v3/recipes']) expect((await ok<ImsRecipe[]>(await ims(p))).map((r) => r.id), p).toEqual([tiny.id, kiwi.id, packer.id]);
    });

    it('README: GET /recipes/RECIPE_ID → 200 with the record', async () => {
      for (const p of [`/recipes/${tiny.id}`, `/v2/recipes/${tiny.id}`, `/v3/recipes/${tiny.id}`]) expect(await ok(await ims(p)), p).toEqual(tiny);
    });

    it('refuses links Kiln cannot use: not an archive for a type it builds, missing, taken (422)', async () => {
      await putOk('ims', 'recipes/junk.bin', randomBytes(4096));
      const junk = await problem(await ims('/recipes', { method: 'POST', json: { name: 'junk', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/junk.bin', type: 's3' } } }), 422);
      expect(junk.errors).toEqual({ link: [expect.stringMatching(/not a tar archive/)] });
      // A kiwi-ng recipe is an archive with a kiwi description.
      await putOk('ims', 'recipes/plain.tar.gz', tar);
      const noKiwi = await problem(await ims('/recipes', { method: 'POST', json: { name: 'nokiwi', recipe_type: 'kiwi-ng', linux_distribution: 'sles15', link: { path: 's3://ims/recipes/plain.tar.gz', type: 's3' } } }), 422);
      expect(noKiwi.errors).toEqual({ link: [expect.stringMatching(/kiwi description/)] });
      expect((await problem(await ims('/recipes', { method: 'POST', json: { name: 'none', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/none.tgz', type: 's3' } } }), 422)).errors).toEqual({ link: [expect.stringContaining('does not exist')] });
      await putOk('ims', 'recipes/copy.tar.gz', tar);
      const copy = await ok<ImsRecipe>(await ims('/recipes', { method: 'POST', json: { name: 'copy', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/copy.tar.gz', type: 's3' } } }), 201);
      const taken = await problem(await ims('/recipes', { method: 'POST', json: { name: 'twice', recipe_type: 'packer', linux_distribution: 'debian', link: { path: 's3://ims/recipes/copy.tar.gz', type: 's3' } } }), 422);
      expect(taken.errors).toEqual({ link: [`The link path is already used by recipe ${copy.id}.`] });
      // Packer is not built by Kiln: any object will do.
      const p = await ok<ImsRecipe>(await ims(`/recipes/${packer.id}`, { method: 'PATCH', json: { link: { path: 's3://ims/recipes/junk.bin', type: 's3' } } }));
      expect(p.link).toMatchObject({ path: 's3://ims/recipes/junk.bin', type: 's3' });
      expect((await ok<ImsRecipe>(await ims(`/recipes/${packer.id}`, { method: 'PATCH', json: { link: { path: 's3://ims/recipes/junk.bin', type: 's3' }, require_dkms: false } }))).require_dkms).toBe(false);
      expect((await problem(await ims(`/recipes/${packer.id}`, { method: 'PATCH', json: { link: { path: 's3://ims/recipes/tiny.tar.gz', type: 's3' } } }), 409)).code).toBe('KILN_IMS_CONFLICT');
      expect((await problem(await ims(`/recipes/${packer.id}`, { method: 'PATCH', json: { name: 'renamed' } }), 422)).errors).toEqual({ name: ['Unknown field.'] });
      expect((await ims(`/recipes/${copy.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims('/objects/ims/recipes/plain.tar.gz', { method: 'DELETE' })).status).toBe(204);
      expect(await keysUnder('ims', 'recipes/')).toEqual(['recipes/junk.bin', 'recipes/tiny.tar.gz']);
    });

    it('v3 soft delete moves the archive under deleted/; undelete moves it back', async () => {
      await putOk('ims', 'recipes/soft.tar.gz', tar);
      const r = await ok<ImsRecipe>(await ims('/recipes', { method: 'POST', json: { name: 'soft', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/soft.tar.gz', type: 's3' } } }), 201);
      expect((await ims(`/v3/recipes/${r.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await problem(await ims(`/recipes/${r.id}`), 404)).detail).toBe(NOT_FOUND);
      const d = await ok<ImsRecipe>(await ims(`/v3/deleted/recipes/${r.id}`));
      expect(d).toMatchObject({ name: 'soft', link: { path: 's3://ims/deleted/recipes/soft.tar.gz', type: 's3' } });
      expect(Number.isNaN(Date.parse(d.deleted!))).toBe(false);
      expect((await ok<ImsRecipe[]>(await ims('/v3/deleted/recipes'))).map((x) => x.id)).toEqual([r.id]);
      expect(await keysUnder('ims', 'recipes/soft')).toEqual([]);
      expect(await keysUnder('ims', 'deleted/')).toEqual(['deleted/recipes/soft.tar.gz']);
      expect((await problem(await ims('/v2/deleted/recipes'), 404)).code).toBe('KILN_ROUTE_NOT_FOUND');

      expect((await ims(`/v3/deleted/recipes/${r.id}`, { method: 'PATCH', json: { operation: 'undelete' } })).status).toBe(204);
      expect(await ok(await ims(`/recipes/${r.id}`))).toEqual(r);
      expect(await keysUnder('ims', 'deleted/')).toEqual([]);
      expect((await getBytes('ims', 'recipes/soft.tar.gz')).equals(tar)).toBe(true);
      expect(await ok(await ims('/v3/deleted/recipes'))).toEqual([]);

      // Purge: the archive goes.
      expect((await ims(`/v3/recipes/${r.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/v3/deleted/recipes/${r.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await keysUnder('ims', 'deleted/')).toEqual([]);
      expect((await problem(await ims(`/v3/deleted/recipes/${r.id}`), 404)).detail).toBe(NOT_FOUND);
    });

    it('v2 DELETE: ?cascade=false keeps the archive, the default deletes it', async () => {
      await putOk('ims', 'recipes/keep.tar.gz', tar);
      await putOk('ims', 'recipes/drop.tar.gz', tar);
      const mk = async (name: string) => ok<ImsRecipe>(await ims('/recipes', { method: 'POST', json: { name, recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: `s3://ims/recipes/${name}.tar.gz`, type: 's3' } } }), 201);
      const keep = await mk('keep');
      const drop = await mk('drop');
      expect((await ims(`/v2/recipes/${keep.id}?cascade=false`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/recipes/${drop.id}`, { method: 'DELETE' })).status).toBe(204);
      for (const id of [keep.id, drop.id]) expect((await ims(`/v2/recipes/${id}`)).status).toBe(404);
      expect(await ok(await ims('/v3/deleted/recipes'))).toEqual([]);
      const keys = await keysUnder('ims', 'recipes/');
      expect(keys).toContain('recipes/keep.tar.gz');
      expect(keys).not.toContain('recipes/drop.tar.gz');
      // The archive's bytes are still named by keep.tar.gz (and tiny.tar.gz), so they stay.
      expect((await getBytes('ims', 'recipes/keep.tar.gz')).equals(tar)).toBe(true);
    });

    describe('jobs', () => {
      let jobId: string;
      const job = (more: Record<string, unknown> = {}) => ({ job_type: 'create', image_root_archive_name: 'Test', artifact_id: tiny.id, public_key_id: keyId, ...more });

      it('README: POST /jobs {"require_dkms":"False", …} with a linked recipe → 201 "creating", require_dkms false; a Kiln image-build job', async () => {
        const made = await ok<ImsJob>(await ims('/jobs', { method: 'POST', json: job({ require_dkms: 'False' }) }), 201);
        jobId = made.id;
        expect(made.id).toMatch(UUID);
        expect(made).toMatchObject({ status: 'creating', job_type: 'create', artifact_id: tiny.id, public_key_id: keyId, image_root_archive_name: 'Test', require_dkms: false, arch: 'x86_64', kernel_file_name: 'vmlinuz', enable_debug: false, ssh_containers: [], resultant_image_id: null });
        expect(await ok<ImsJob>(await ims(`/v3/jobs/${jobId}`))).toMatchObject({ id: jobId, status: 'creating', require_dkms: false });
        for (const p of ['/jobs', '/v2/jobs', '/v3/jobs']) expect((await ok<ImsJob[]>(await ims(p))).map((j) => j.id), p).toEqual([jobId]);
        expect(await json(await k.api(`/jobs/${jobId}`))).toMatchObject({ id: jobId, type: 'image-build', status: 'queued' });
        // Without require_dkms the recipe's value is used (true by default).
        const other = await ok<ImsJob>(await ims('/v2/jobs', { method: 'POST', json: job({ enable_debug: 'yes' }) }), 201);
        expect(other).toMatchObject({ require_dkms: true, enable_debug: true, ssh_containers: [expect.objectContaining({ name: 'debug', jail: false })] });
        expect((await ims(`/jobs/${other.id}`, { method: 'DELETE' })).status).toBe(204);
      });

      it('PATCH /jobs/{id} is for IMS\'s own pods: 409 (404 for an unknown job, 422 for a bad body)', async () => {
        expect((await problem(await ims(`/jobs/${jobId}`, { method: 'PATCH', json: { status: 'success' } }), 409)).code).toBe('KILN_IMS_CONFLICT');
        expect((await problem(await ims(`/jobs/${jobId}`, { method: 'PATCH', json: { status: 'done' } }), 422)).errors).toEqual({ status: [expect.stringMatching(/^Must be one of: creating, /)] });
        expect((await problem(await ims('/jobs/00000000-0000-4000-8000-000000000000', { method: 'PATCH', json: { status: 'success' } }), 404)).detail).toBe(NOT_FOUND);
        expect((await ok<ImsJob>(await ims(`/jobs/${jobId}`))).status).toBe('creating');
      });

      it('refuses bad job input: unknown field / bad uuid 422; unknown recipe, recipe without link, ssh_containers on create, unlinked image, unknown key 400', async () => {
        const cases: [Record<string, unknown>, number, RegExp | Record<string, unknown>][] = [
          [job({ platform: 'aarch64' }), 422, { platform: ['Unknown field.'] }],
          [job({ artifact_id: 'RECIPE_ID' }), 422, { artifact_id: ['Not a valid UUID.'] }],
          [job({ artifact_id: '00000000-0000-4000-8000-000000000000' }), 400, /no such recipe/],
          [job({ artifact_id: kiwi.id }), 400, /has no link/],
          [job({ ssh_containers: [{ name: 'x' }] }), 400, /ssh_containers/],
          [job({ public_key_id: '00000000-0000-4000-8000-000000000000' }), 400, /no such public key/],
        ];
        // packer is IMS's, not Kiln's: a recipe of that type (linked) is not built.
        cases.push([job({ artifact_id: packer.id }), 400, /which Kiln does not build/]);
        // A recipe whose archive was deleted after it was linked.
        await putOk('ims', 'recipes/vanishing.tar.gz', tar);
        const vanishing = await ok<ImsRecipe>(await ims('/recipes', { method: 'POST', json: { name: 'vanishing', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/vanishing.tar.gz', type: 's3' } } }), 201);
        expect((await ims('/objects/ims/recipes/vanishing.tar.gz', { method: 'DELETE' })).status).toBe(204);
        cases.push([job({ artifact_id: vanishing.id }), 400, /recipes\/vanishing\.tar\.gz\) does not exist/]);
        const unlinked = await ok<ImsImage>(await ims('/images', { method: 'POST', json: { name: 'empty' } }), 201);
        cases.push([job({ job_type: 'customize', artifact_id: unlinked.id }), 400, /has no link/]);
        for (const [body, status, want] of cases) {
          const p = await problem(await ims('/jobs', { method: 'POST', json: body }), status);
          if (want instanceof RegExp) expect(p.detail, JSON.stringify(body)).toMatch(want);
          else expect(p.errors, JSON.stringify(body)).toEqual(want);
        }
        expect((await ok<ImsJob[]>(await ims('/jobs'))).map((j) => j.id)).toEqual([jobId]);
        expect((await ims(`/images/${unlinked.id}`, { method: 'DELETE' })).status).toBe(204);
        expect((await ims(`/recipes/${vanishing.id}`, { method: 'DELETE' })).status).toBe(204);
      });

      it('customize: a linked image gets one "customize" ssh container by default; more than one is a 400', async () => {
        const linked = (await ok<ImsImage[]>(await ims('/images'))).find((i) => i.link !== null)!;
        const body = { job_type: 'customize', artifact_id: linked.id, public_key_id: keyId, image_root_archive_name: 'custom' };
        expect((await problem(await ims('/jobs', { method: 'POST', json: { ...body, ssh_containers: [{ name: 'a' }, { name: 'b' }] } }), 400)).detail).toMatch(/at most one ssh container/);
        const made = await ok<ImsJob>(await ims('/jobs', { method: 'POST', json: body }), 201);
        expect(made).toMatchObject({ status: 'creating', job_type: 'customize', artifact_id: linked.id, require_dkms: true, ssh_containers: [{ name: 'customize', jail: false, status: 'pending', connection_info: {} }] });
        expect(await json(await k.api(`/jobs/${made.id}`))).toMatchObject({ id: made.id, status: 'queued' });
        expect((await ims(`/v3/jobs/${made.id}`, { method: 'DELETE' })).status).toBe(204);
        expect((await ok<ImsJob[]>(await ims('/jobs'))).map((j) => j.id)).toEqual([jobId]);
      });

      it('DELETE /jobs with a bad filter → 400; DELETE /jobs/{id} cancels the Kiln job and removes the record', async () => {
        for (const q of ['age=soon', 'age=5y', 'status=finished', 'job_type=build']) expect((await problem(await ims(`/jobs?${q}`, { method: 'DELETE' }), 400)).code, q).toBe('KILN_IMS_BAD_REQUEST');
        // A filter matching nothing deletes nothing.
        expect((await ims('/jobs?status=success', { method: 'DELETE' })).status).toBe(204);
        expect((await ims('/jobs?age=1d', { method: 'DELETE' })).status).toBe(204);
        expect((await ok<ImsJob[]>(await ims('/jobs'))).map((j) => j.id)).toEqual([jobId]);
        expect((await ims(`/jobs/${jobId}`, { method: 'DELETE' })).status).toBe(204);
        expect((await problem(await ims(`/jobs/${jobId}`), 404)).detail).toBe(NOT_FOUND);
        expect(await ok(await ims('/jobs'))).toEqual([]);
        expect(await json(await k.api(`/jobs/${jobId}`))).toMatchObject({ id: jobId, status: 'cancelled' });
      });
    });
  });

  describe('public keys', () => {
    it('v3: soft delete, /v3/deleted/public-keys, undelete, purge', async () => {
      const made = await ok<ImsKey>(await ims('/v3/public-keys', { method: 'POST', json: { name: 'bob', public_key: key2 } }), 201);
      expect((await ims(`/v3/public-keys/${made.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await problem(await ims(`/public-keys/${made.id}`), 404)).detail).toBe(NOT_FOUND);
      expect((await ok<ImsKey[]>(await ims('/public-keys'))).map((x) => x.name)).toEqual(['test']);
      const d = await ok<ImsKey>(await ims(`/v3/deleted/public-keys/${made.id}`));
      expect(d).toMatchObject({ id: made.id, name: 'bob', public_key: key2 });
      expect(Number.isNaN(Date.parse(d.deleted!))).toBe(false);
      expect((await ok<ImsKey[]>(await ims('/v3/deleted/public-keys'))).map((x) => x.id)).toEqual([made.id]);
      expect((await problem(await ims('/v2/deleted/public-keys'), 404)).code).toBe('KILN_ROUTE_NOT_FOUND');
      expect((await json<{ deletedAt: string | null }>(await k.api(`/public-keys/${made.id}`))).deletedAt).not.toBeNull();

      expect((await ims(`/v3/deleted/public-keys/${made.id}`, { method: 'PATCH', json: { operation: 'undelete' } })).status).toBe(204);
      expect(await ok(await ims(`/public-keys/${made.id}`))).toEqual(made);
      expect(await ok(await ims('/v3/deleted/public-keys'))).toEqual([]);

      expect((await ims(`/v3/public-keys/${made.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/v3/deleted/public-keys/${made.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await ok(await ims('/v3/deleted/public-keys'))).toEqual([]);
      expect((await problem(await ims(`/v3/deleted/public-keys/${made.id}`), 404)).detail).toBe(NOT_FOUND);
      expect((await k.api(`/public-keys/${made.id}`)).status).toBe(404);
    });

    it('undelete is a conflict (409) while a live key has the name', async () => {
      const a = await ok<ImsKey>(await ims('/public-keys', { method: 'POST', json: { name: 'dave', public_key: key2 } }), 201);
      expect((await ims(`/v3/public-keys/${a.id}`, { method: 'DELETE' })).status).toBe(204);
      const b = await ok<ImsKey>(await ims('/public-keys', { method: 'POST', json: { name: 'dave', public_key: key2 } }), 201);
      expect((await problem(await ims(`/v3/deleted/public-keys/${a.id}`, { method: 'PATCH', json: { operation: 'undelete' } }), 409)).code).toBe('KILN_IMS_CONFLICT');
      expect((await ok<ImsKey[]>(await ims('/v3/deleted/public-keys'))).map((x) => x.id)).toEqual([a.id]);
      expect((await ims(`/v3/deleted/public-keys/${a.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/public-keys/${b.id}`, { method: 'DELETE' })).status).toBe(204);
    });

    it('v2 DELETE is a hard delete', async () => {
      const made = await ok<ImsKey>(await ims('/public-keys', { method: 'POST', json: { name: 'carol', public_key: key2 } }), 201);
      expect((await ims(`/v2/public-keys/${made.id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await ims(`/public-keys/${made.id}`)).status).toBe(404);
      expect(await ok(await ims('/v3/deleted/public-keys'))).toEqual([]);
      expect((await k.api(`/public-keys/${made.id}`)).status).toBe(404);
    });
  });

  describe('concurrent writers', () => {
    it('link paths stay unique: of three POSTs, or two PATCHes, naming one manifest, exactly one wins', async () => {
      const statuses = async (reqs: Promise<Response>[]) => (await Promise.all(reqs)).map((r) => r.status).sort();
      const staged = await stage('uploads/race');
      const posts = await Promise.all([1, 2, 3].map(() => ims('/images', { method: 'POST', json: { name: 'race', link: s3link(staged.manifestPath) } })));
      expect(posts.map((r) => r.status).sort()).toEqual([201, 422, 422]);
      const winner = await json<ImsImage>(posts.find((r) => r.status === 201)!);
      expect((await ok<ImsImage[]>(await ims('/images'))).filter((i) => i.link?.path === staged.manifestPath).map((i) => i.id)).toEqual([winner.id]);
      expect((await ims(`/v2/images/${winner.id}?cascade=false`, { method: 'DELETE' })).status).toBe(204);

      const blank = await Promise.all([1, 2].map(async () => ok<ImsImage>(await ims('/images', { method: 'POST', json: { name: 'blank' } }), 201)));
      expect(await statuses(blank.map((b) => ims(`/images/${b.id}`, { method: 'PATCH', json: { link: s3link(staged.manifestPath) } })))).toEqual([200, 422]);
      expect((await ok<ImsImage[]>(await ims('/images'))).filter((i) => i.link?.path === staged.manifestPath)).toHaveLength(1);
      for (const b of blank) expect((await ims(`/v2/images/${b.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await keysUnder('boot-images', 'uploads/race/')).toEqual([]);

      await putOk('ims', 'recipes/race.tar.gz', tar);
      const recipe = () => ims('/recipes', { method: 'POST', json: { name: 'race', recipe_type: 'rootfs-archive', linux_distribution: 'debian', link: { path: 's3://ims/recipes/race.tar.gz', type: 's3' } } });
      const made = await Promise.all([recipe(), recipe(), recipe()]);
      expect(made.map((r) => r.status).sort()).toEqual([201, 422, 422]);
      const races = (await ok<ImsRecipe[]>(await ims('/recipes'))).filter((r) => r.name === 'race');
      expect(races).toHaveLength(1);
      expect((await ims(`/recipes/${races[0]!.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await keysUnder('ims', 'recipes/race')).toEqual([]);
    });
  });

  describe('collections at once', () => {
    it('DELETE /v3/images soft-deletes every image; PATCH /v3/deleted/images undeletes them all', async () => {
      const live = await ok<ImsImage[]>(await ims('/images'));
      expect(live.length).toBeGreaterThan(0);
      const first = live.find((i) => i.link?.path === 's3://boot-images/uploads/first/manifest.json')!;
      expect((await ims('/v3/images', { method: 'DELETE' })).status).toBe(204);
      expect(await ok(await ims('/images'))).toEqual([]);
      expect((await ok<ImsImage[]>(await ims('/v3/deleted/images'))).map((i) => i.id).sort()).toEqual(live.map((i) => i.id).sort());
      expect(await keysUnder('boot-images', 'uploads/first/')).toEqual([]);
      expect(await keysUnder('boot-images', 'deleted/uploads/first/')).toHaveLength(4);
      expect(await keysUnder('boot-images', `deleted/${first.id}/`)).toEqual([`deleted/${first.id}/deleted_manifest.json`]);
      expect((await problem(await ims('/v3/deleted/images', { method: 'PATCH', json: { operation: 'purge' } }), 422)).errors).toEqual({ operation: ['Must be one of: undelete.'] });
      expect((await ims('/v3/deleted/images', { method: 'PATCH', json: { operation: 'undelete' } })).status).toBe(204);
      expect(await ok(await ims('/v3/deleted/images'))).toEqual([]);
      // Back as they were, but for the etag of the link: as in IMS, that of the restored manifest object (S3's ETag; Kiln's md5).
      const manifestMd5 = (await ok<ObjectInfo[]>(await ims('/objects/boot-images?prefix=uploads/first/manifest.json')))[0]!.md5;
      expect(await ok(await ims('/images'))).toEqual(live.map((i) => (i.id === first.id ? { ...i, link: { ...i.link, etag: manifestMd5 } } : i)));
      expect(await keysUnder('boot-images', 'deleted/')).toEqual([]);
      expect(await keysUnder('boot-images', 'uploads/first/')).toHaveLength(4);
    });

    it('DELETE /v3/recipes then DELETE /v3/deleted/recipes purges every recipe and its archive; DELETE /public-keys (v2) removes every key', async () => {
      const live = await ok<ImsRecipe[]>(await ims('/recipes'));
      expect(live.map((r) => r.name)).toEqual(['tiny', 'cos', 'pk']);
      // The job made Kiln recipe ims-<id> of tiny; the purge takes it too.
      const tinyId = live[0]!.id;
      expect(await json(await k.api(`/recipes/ims-${tinyId}`))).toMatchObject({ kind: 'rootfs-archive', sha256: sha256(tar) });
      expect((await ims('/v3/recipes', { method: 'DELETE' })).status).toBe(204);
      expect(await ok(await ims('/recipes'))).toEqual([]);
      expect(await keysUnder('ims', 'deleted/')).toEqual(['deleted/recipes/junk.bin', 'deleted/recipes/tiny.tar.gz']);
      expect((await ims('/v3/deleted/recipes', { method: 'DELETE' })).status).toBe(204);
      expect(await ok(await ims('/v3/deleted/recipes'))).toEqual([]);
      expect(await keysUnder('ims', 'deleted/')).toEqual([]);
      expect(await keysUnder('ims', 'recipes/')).toEqual(['recipes/keep.tar.gz']);
      expect((await k.api(`/recipes/ims-${tinyId}`)).status).toBe(404);

      expect((await ok<ImsKey[]>(await ims('/public-keys'))).length).toBeGreaterThan(0);
      expect((await ims('/public-keys', { method: 'DELETE' })).status).toBe(204);
      expect(await ok(await ims('/public-keys'))).toEqual([]);
      expect(await ok(await ims('/v3/deleted/public-keys'))).toEqual([]);
    });
  });
});
