// The Cray IMS flow end to end through /apis/ims on a real Kiln (SQLite, fs blobs, in-process worker):
// a public key; a rootfs-archive recipe uploaded to the `ims` bucket; a create job building it into
// an IMS image (objects and manifest in `boot-images`, md5s that match the bytes); a customize job
// of that image, finished from inside with the real `ssh` client (the marker file lands in the new
// image's squashfs, the original untouched); a v3 soft delete moving the objects under `deleted/`
// and the undelete bringing them back; and the Kiln image behind it seen natively.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable, isCi } from '../e2e/support/e2e-prerequisites.js';
import { buildGate, exec, makeTinyRoot, tarDir } from './build-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

// ---------------------------------------------------------------- prerequisites

const TITLE = 'Cray IMS: create, customize over SSH, delete, undelete';
const gate = buildGate('archive', TITLE);
function sshMissing(): string | null {
  const missing = [['unshare', 'util-linux'], ['ssh', 'openssh-client'], ['ssh-keygen', 'openssh-client'], ['sshd', 'openssh-server']]
    .filter(([exe]) => findExecutable(exe!) === null)
    .map(([exe, pkg]) => `${exe} (apt-get install ${pkg})`);
  return missing.length === 0 ? null : `missing ${missing.join('; ')}`;
}
const sshReason = gate.skip ? null : sshMissing();
if (sshReason !== null && isCi()) throw new Error(`CI must run the IMS flow test, but: ${sshReason}`);
if (sshReason !== null) process.stderr.write(`\n  "${TITLE}" skipped: ${sshReason}\n\n`);
const skip = gate.skip || sshReason !== null;

// ---------------------------------------------------------------- IMS shapes

/** IMS's job statuses (Cray-HPE/ims JobStatuses), written out here rather than taken from Kiln's code. */
const IMS_STATUSES = ['creating', 'fetching_image', 'fetching_recipe', 'waiting_for_repos', 'building_image', 'packaging_artifacts', 'waiting_on_user', 'error', 'success'];
const ROOTFS_TYPE = 'application/vnd.cray.image.rootfs.squashfs';
const TIMEOUT = 240_000;

interface ImsJob {
  id: string;
  job_type: string;
  status: string;
  resultant_image_id: string | null;
  ssh_containers: { name: string; status: string; connection_info: { customer_access?: { host: string; port: number } } }[];
}
interface ImsImage {
  id: string;
  name: string;
  link: { path: string; etag: string; type: string } | null;
  deleted?: string;
}
interface ImsManifest {
  version: string;
  artifacts: { link: { path: string; etag: string; type: string }; type: string; md5: string }[];
}
interface ObjectInfo {
  key: string;
  md5: string;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe.skipIf(skip)(gate.title, () => {
  let k: TestKiln;
  let work: string;
  let recipeTar: Buffer;
  let keyPath: string;
  let keyId: string;
  let baseId: string;
  let baseRootfs: Buffer;
  let customId: string;
  const marker = `ims-flow ${randomBytes(8).toString('hex')}\n`;

  /** A request to the IMS API with the admin token (JSON when `json` is given). */
  const ims = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${k.token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${k.kiln.adminUrl}/apis/ims${path}`, { ...init, headers, body });
  };
  /** The body of a response that must have `status`, else a failure that shows what came back. */
  const expectStatus = async <T>(res: Response, status: number): Promise<T> => {
    const text = await res.text();
    expect(res.status, `${res.url}: ${text}`).toBe(status);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  };
  const object = async (bucket: string, key: string): Promise<Buffer> => {
    const res = await ims(`/objects/${bucket}/${key}`);
    expect(res.status, `GET object ${bucket}/${key}`).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };
  const keysUnder = async (bucket: string, prefix: string) =>
    (await expectStatus<ObjectInfo[]>(await ims(`/objects/${bucket}?prefix=${encodeURIComponent(prefix)}`), 200)).map((o) => o.key).sort();
  const kilnLog = async (id: string) => (await k.api(`/jobs/${id}/logs`)).text();

  /**
   * Polls GET /jobs/{id} until `done` holds, recording every status seen (each must be IMS's); fails
   * at once, with the Kiln job's log, when the job errors.
   */
  async function poll(id: string, done: (j: ImsJob) => boolean, seen: string[]): Promise<ImsJob> {
    const end = Date.now() + TIMEOUT - 20_000;
    for (;;) {
      const j = await expectStatus<ImsJob>(await ims(`/jobs/${id}`), 200);
      if (seen.at(-1) !== j.status) seen.push(j.status);
      if (j.status === 'error') throw new Error(`IMS job ${id} failed (statuses ${seen.join(' → ')}):\n${await kilnLog(id)}`);
      if (done(j)) return j;
      if (Date.now() > end) throw new Error(`IMS job ${id} still ${j.status} (statuses ${seen.join(' → ')}):\n${await kilnLog(id)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The manifest of an IMS image (version 1.0, one rootfs, every md5 and etag that of the bytes) and its rootfs bytes. */
  async function checkedManifest(image: ImsImage): Promise<{ manifest: ImsManifest; rootfs: Buffer }> {
    expect(image.link).toMatchObject({ path: `s3://boot-images/${image.id}/manifest.json`, type: 's3' });
    const manifestBytes = await object('boot-images', `${image.id}/manifest.json`);
    expect(md5(manifestBytes), 'the manifest link etag').toBe(image.link!.etag);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ImsManifest;
    expect(manifest.version).toBe('1.0');
    expect(manifest.artifacts.filter((a) => a.type === ROOTFS_TYPE)).toHaveLength(1);
    expect(manifest.artifacts.map((a) => a.link.path).sort()).toEqual(['initrd', 'kernel', 'rootfs'].map((n) => `s3://boot-images/${image.id}/${n}`));
    let rootfs: Buffer | null = null;
    for (const a of manifest.artifacts) {
      const bytes = await object('boot-images', a.link.path.slice('s3://boot-images/'.length));
      expect(md5(bytes), `md5 of ${a.link.path}`).toBe(a.md5);
      expect(a.link).toMatchObject({ etag: a.md5, type: 's3' });
      if (a.type === ROOTFS_TYPE) rootfs = bytes;
    }
    return { manifest, rootfs: rootfs! };
  }

  /** `path` in a squashfs, or null when it is not there. */
  async function fileInSquashfs(bytes: Buffer, path: string): Promise<string | null> {
    const file = join(work, `${randomBytes(4).toString('hex')}.sqfs`);
    await writeFile(file, bytes);
    expect(bytes.toString('latin1', 0, 4), 'squashfs magic').toBe('hsqs');
    const { stdout } = await exec('unsquashfs', ['-l', file], { maxBuffer: 64 * 1024 * 1024 });
    if (!stdout.split('\n').includes(`squashfs-root/${path}`)) return null;
    return (await exec('unsquashfs', ['-cat', file, path])).stdout;
  }

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.ims.enabled': 'true', 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    work = await mkdtemp(join(tmpdir(), 'kiln-ims-flow-'));
    const root = join(work, 'root');
    await makeTinyRoot(root, 'ims flow');
    // What the customize session runs: touch and a home for root.
    await symlink('busybox', join(root, 'bin', 'touch'));
    await mkdir(join(root, 'root'), { mode: 0o700 });
    recipeTar = await tarDir(root, join(work, 'recipe.tar'));
    keyPath = join(work, 'id_ed25519');
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ims-flow@test', '-f', keyPath]);
  }, 120_000);

  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('create: a public key and a rootfs-archive recipe in the ims bucket build into an IMS image', async () => {
    const pub = (await readFile(`${keyPath}.pub`, 'utf8')).trim();
    const key = await expectStatus<{ id: string; name: string; public_key: string }>(await ims('/public-keys', { method: 'POST', json: { name: 'ims-flow', public_key: pub } }), 201);
    expect(key).toMatchObject({ name: 'ims-flow', public_key: pub });
    keyId = key.id;

    const put = await expectStatus<ObjectInfo>(await ims('/objects/ims/recipes/flow/recipe.tar', { method: 'PUT', body: recipeTar, headers: { 'content-type': 'application/x-tar' } }), 200);
    expect(put).toMatchObject({ key: 'recipes/flow/recipe.tar', md5: md5(recipeTar) });
    const recipe = await expectStatus<{ id: string; link: unknown }>(await ims('/recipes', {
      method: 'POST',
      json: { name: 'flow', recipe_type: 'rootfs-archive', linux_distribution: 'other', link: { path: 's3://ims/recipes/flow/recipe.tar', type: 's3' } },
    }), 201);
    expect(recipe.link).toMatchObject({ path: 's3://ims/recipes/flow/recipe.tar', type: 's3' });

    const created = await expectStatus<ImsJob>(await ims('/jobs', { method: 'POST', json: { job_type: 'create', artifact_id: recipe.id, public_key_id: keyId, image_root_archive_name: 'flow-base' } }), 201);
    expect(created).toMatchObject({ job_type: 'create', status: 'creating', resultant_image_id: null });
    const seen: string[] = [];
    const job = await poll(created.id, (j) => j.status === 'success', seen);
    expect(seen.filter((s) => !IMS_STATUSES.includes(s)), `statuses ${seen.join(' → ')}`).toEqual([]);
    expect(job.resultant_image_id).toMatch(/^[0-9a-f-]{36}$/);
    baseId = job.resultant_image_id!;

    const image = await expectStatus<ImsImage>(await ims(`/images/${baseId}`), 200);
    expect(image).toMatchObject({ id: baseId, name: 'flow-base' });
    baseRootfs = (await checkedManifest(image)).rootfs;
    expect(await fileInSquashfs(baseRootfs, 'etc/kiln-build-test')).toBe('ims flow\n');
  }, TIMEOUT);

  it('customize: ssh in, write a file, touch /tmp/complete; a new image holds it, the original does not', async () => {
    const created = await expectStatus<ImsJob>(await ims('/jobs', { method: 'POST', json: { job_type: 'customize', artifact_id: baseId, public_key_id: keyId, image_root_archive_name: 'flow-custom' } }), 201);
    expect(created).toMatchObject({ job_type: 'customize', status: 'creating' });
    const seen: string[] = [];
    const waiting = await poll(created.id, (j) => j.status === 'waiting_on_user' && j.ssh_containers[0]?.status === 'active', seen);
    expect(waiting.ssh_containers).toHaveLength(1);
    const access = waiting.ssh_containers[0]!.connection_info.customer_access!;
    expect(Object.keys(access).sort()).toEqual(['host', 'port']);
    expect(access.host).not.toBe('');
    expect(Number.isInteger(access.port) && access.port > 0, `port ${access.port}`).toBe(true);

    const ssh = await exec('ssh', [
      '-i', keyPath, '-p', String(access.port), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      `root@${access.host}`, `printf '%s' '${marker}' > /etc/ims-flow-marker && touch /tmp/complete`,
    ]).then(() => 'exit 0', (e: { code: number; stderr: string }) => `exit ${e.code}: ${e.stderr}`);
    expect(ssh).toBe('exit 0');

    const job = await poll(created.id, (j) => j.status === 'success', seen);
    expect(seen.filter((s) => !IMS_STATUSES.includes(s)), `statuses ${seen.join(' → ')}`).toEqual([]);
    expect(job.ssh_containers[0]!.status).toBe('complete');
    expect(job.resultant_image_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(job.resultant_image_id).not.toBe(baseId);
    customId = job.resultant_image_id!;

    const image = await expectStatus<ImsImage>(await ims(`/images/${customId}`), 200);
    expect(image).toMatchObject({ id: customId, name: 'flow-custom' });
    const { rootfs } = await checkedManifest(image);
    expect(await fileInSquashfs(rootfs, 'etc/ims-flow-marker')).toBe(marker);
    expect(await fileInSquashfs(rootfs, 'tmp/complete')).toBeNull();

    // The original: same rootfs bytes as before, no marker.
    const original = await expectStatus<ImsImage>(await ims(`/images/${baseId}`), 200);
    const before = (await checkedManifest(original)).rootfs;
    expect(md5(before)).toBe(md5(baseRootfs));
    expect(await fileInSquashfs(before, 'etc/ims-flow-marker')).toBeNull();
  }, TIMEOUT);

  it('v3 delete moves the image and its objects under deleted/; undelete brings them back', async () => {
    const live = ['initrd', 'kernel', 'manifest.json', 'rootfs'].map((n) => `${customId}/${n}`);
    expect(await keysUnder('boot-images', `${customId}/`)).toEqual(live);

    await expectStatus(await ims(`/v3/images/${customId}`, { method: 'DELETE' }), 204);
    expect((await ims(`/v3/images/${customId}`)).status).toBe(404);
    expect((await expectStatus<ImsImage[]>(await ims('/v3/images'), 200)).map((i) => i.id)).not.toContain(customId);
    const deleted = await expectStatus<ImsImage[]>(await ims('/v3/deleted/images'), 200);
    const gone = deleted.find((i) => i.id === customId);
    expect(gone).toMatchObject({ name: 'flow-custom', link: { path: `s3://boot-images/deleted/${customId}/deleted_manifest.json`, type: 's3' } });
    expect(Date.parse(gone!.deleted ?? ''), `deleted ${gone!.deleted}`).not.toBeNaN();
    expect(await keysUnder('boot-images', `${customId}/`)).toEqual([]);
    expect(await keysUnder('boot-images', `deleted/${customId}/`)).toEqual([...live.map((key) => `deleted/${key}`), `deleted/${customId}/deleted_manifest.json`].sort());
    expect((await ims(`/objects/boot-images/${customId}/rootfs`)).status).toBe(404);
    // The Kiln image behind it is soft-deleted too.
    const kilnDeletedAt = async () => (await json<{ deletedAt: string | null }>(await k.api(`/images/ims-${customId}`))).deletedAt;
    expect(await kilnDeletedAt()).toEqual(expect.any(String));

    await expectStatus(await ims(`/v3/deleted/images/${customId}`, { method: 'PATCH', json: { operation: 'undelete' } }), 204);
    expect((await ims(`/v3/deleted/images/${customId}`)).status).toBe(404);
    const back = await expectStatus<ImsImage>(await ims(`/v3/images/${customId}`), 200);
    expect(back).toMatchObject({ id: customId, name: 'flow-custom' });
    expect(back.deleted).toBeUndefined();
    expect(await kilnDeletedAt()).toBeNull();
    expect(await keysUnder('boot-images', `${customId}/`)).toEqual(live);
    expect(await keysUnder('boot-images', `deleted/${customId}/`)).toEqual([]);
    const { rootfs } = await checkedManifest(back);
    expect(await fileInSquashfs(rootfs, 'etc/ims-flow-marker')).toBe(marker);
  }, TIMEOUT);

  it('natively, the customized image is Kiln image ims-<id> with version 1', async () => {
    const versions = await json<{ items: { version: string; artifacts: { role: string; sha256: string }[] }[] }>(await k.api(`/images/ims-${customId}/versions`));
    expect(versions.items.map((v) => v.version)).toEqual(['1']);
    const rootfs = versions.items[0]!.artifacts.find((a) => a.role === 'rootfs')!;
    const objects = await expectStatus<{ key: string; sha256: string }[]>(await ims(`/objects/boot-images?prefix=${customId}/rootfs`), 200);
    expect(objects.map((o) => o.sha256)).toEqual([rootfs.sha256]);
  }, TIMEOUT);
});
