// Recipes and image builds from archives through a real Kiln (SQLite, fs blobs, in-process worker):
// a rootfs tar and an OCI image layout (layers, whiteouts, opaque directories) become versions with
// the host kernel, a kiln-live initrd, a zstd squashfs and a manifest; recipes are checked as they
// stream in (a refused one leaves nothing); failed builds leave no version, no artifact, no work
// directory; a layer that would write through a link out of the root is refused; and `kiln recipe`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/jobs/job.js';
import type { Recipe } from '../../src/core/recipes/recipe.js';
import {
  buildGate, cpioNames, createRecipe, download, exec, expectManifestMatches, makeTinyRoot, settled, sha256, squashfsPaths, tarDir, type VersionView,
} from './build-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const gate = buildGate('archive', 'image builds from rootfs and OCI archives');

/** An OCI image layout tarball of plain-tar layers (each gzip'd when asked), for amd64. */
async function ociLayout(work: string, layers: { dir: string; gzip: boolean }[]): Promise<Buffer> {
  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer) => {
    const sha = sha256(bytes);
    await writeFile(join(blobs, sha), bytes);
    return { digest: `sha256:${sha}`, size: bytes.length };
  };
  const descs = [];
  for (const [i, l] of layers.entries()) {
    const bytes = await tarDir(l.dir, join(work, `layer${i}.tar`), { gzip: l.gzip });
    descs.push({ mediaType: `application/vnd.oci.image.layer.v1.tar${l.gzip ? '+gzip' : ''}`, ...(await put(bytes)) });
  }
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = await put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: descs })));
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { architecture: 'amd64', os: 'linux' } }] }));
  return tarDir(layout, join(work, 'layout.tar'));
}

describe.skipIf(gate.skip)(gate.title, () => {
  let k: TestKiln;
  let work: string;
  let tiny: Buffer;
  let release: string;
  let hostKernel: Buffer;

  beforeAll(async () => {
    k = await startTestKiln({ 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    work = await mkdtemp(join(tmpdir(), 'kiln-build-test-'));
    const rootDir = join(work, 'tiny');
    const made = await makeTinyRoot(rootDir, 'tiny rootfs archive');
    release = made.release;
    hostKernel = await readFile(made.kernel);
    tiny = await tarDir(rootDir, join(work, 'tiny.tar.gz'), { gzip: true });
  }, 120_000);

  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  const artifactShas = async () => (await json<{ items: { sha256: string }[] }>(await k.api('/artifacts'))).items.map((a) => a.sha256).sort();
  const recipeShas = async () => (await json<{ items: Recipe[] }>(await k.api('/recipes'))).items.map((r) => r.sha256);
  /** Work directories the worker left (the shared package cache `.cache` is no job's). */
  const workDirs = async () => (await readdir(join(k.dataDir, 'work')).catch(() => [] as string[])).filter((n) => n !== '.cache');

  async function build(recipe: string, body: Record<string, unknown>): Promise<Job> {
    const res = await k.api(`/recipes/${recipe}/builds`, { method: 'POST', json: body });
    expect(res.status, await res.clone().text()).toBe(202);
    return settled(k, (await json<Job>(res)).id, 120_000);
  }

  it('rootfs-archive: a version with the image kernel, a kiln-live initrd, a zstd squashfs and a manifest; promoted', async () => {
    const created = await createRecipe(k, { name: 'tiny', kind: 'rootfs-archive', description: 'busybox root' }, tiny);
    expect(created.status, await created.clone().text()).toBe(201);
    const recipe = await json<Recipe>(created);
    expect(recipe).toMatchObject({ name: 'tiny', kind: 'rootfs-archive', arch: 'x86_64', sha256: sha256(tiny), size: tiny.length, revision: 1 });
    expect(created.headers.get('etag')).not.toBeNull();

    const job = await build('tiny', { image: 'tiny', promote: 'stable', cmdline: 'console=ttyS0 panic=1' });
    const log = await (await k.api(`/jobs/${job.id}/logs`)).text();
    expect(job.status, log).toBe('succeeded');
    expect(job).toMatchObject({ type: 'image-build', stage: 'packaging_artifacts', progress: 100, input: { recipe: 'tiny', recipeSha256: recipe.sha256, image: 'tiny', initrd: 'kiln-live' } });
    expect(log).toContain('[kiln] stage: fetching_recipe');
    expect(log).toContain('[kiln] stage: building_image');
    const result = job.result as { image: string; version: string; kernelRelease: string; promoted: string };
    expect(result).toMatchObject({ image: 'tiny', version: '1', kernelRelease: release, promoted: 'stable' });

    const v = await json<VersionView>(await k.api('/images/tiny/versions/1'));
    expect(v.artifacts.map((a) => [a.name, a.role])).toEqual([['vmlinuz', 'kernel'], ['initrd.img', 'initrd'], ['rootfs.squashfs', 'rootfs'], ['manifest.json', 'other']]);
    expect(v).toMatchObject({ arch: 'x86_64', cmdline: 'console=ttyS0 panic=1', metadata: { build: { job: job.id, recipe: 'tiny', recipeKind: 'rootfs-archive', kernelRelease: release, initrd: 'kiln-live' } } });
    const kernel = await download(k, v.artifacts[0]!.sha256);
    expect(kernel.toString('latin1', 0x202, 0x206)).toBe('HdrS');
    expect(sha256(kernel)).toBe(sha256(hostKernel));
    const initrdNames = await cpioNames(await download(k, v.artifacts[1]!.sha256), join(work, 'initrd.cpio'));
    expect(initrdNames).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'bin/wget', 'etc/udhcpc.script', 'lib/modules/squashfs.ko', 'lib/modules/overlay.ko', 'lib/modules/virtio_net.ko']));
    const sqfs = join(work, 'tiny.sqfs');
    await writeFile(sqfs, await download(k, v.artifacts[2]!.sha256));
    expect((await readFile(sqfs)).toString('latin1', 0, 4)).toBe('hsqs');
    expect(await squashfsPaths(sqfs)).toEqual(expect.arrayContaining(['/etc/kiln-build-test', '/sbin/init', `/boot/vmlinuz-${release}`]));
    const { stdout: super_ } = await exec('unsquashfs', ['-s', sqfs]);
    expect(super_).toMatch(/Compression zstd/);
    await expectManifestMatches(k, v);

    const channel = await json<{ version: string; history: { actor: string }[] }>(await k.api('/images/tiny/channels/stable'));
    expect(channel).toMatchObject({ version: '1', history: [{ actor: 'admin' }] });
    expect(await workDirs()).toEqual([]);
  });

  it('oci-archive: layers in order, whiteouts and opaque directories honoured', async () => {
    const base = join(work, 'oci-base');
    await makeTinyRoot(base, 'oci layer 1');
    for (const [f, text] of [['etc/a', 'a'], ['etc/b', 'b'], ['opt/dir/x', 'x'], ['opt/dir/y', 'y'], ['opt/keep', 'keep']] as const) {
      await mkdir(join(base, f, '..'), { recursive: true });
      await writeFile(join(base, f), text);
    }
    const top = join(work, 'oci-top');
    await mkdir(join(top, 'etc'), { recursive: true });
    await mkdir(join(top, 'opt/dir'), { recursive: true });
    await writeFile(join(top, 'etc/.wh.a'), '');
    await writeFile(join(top, 'etc/c'), 'c');
    await writeFile(join(top, 'opt/dir/.wh..wh..opq'), '');
    await writeFile(join(top, 'opt/dir/z'), 'z');
    await writeFile(join(top, 'etc/kiln-build-test'), 'oci layer 2\n');
    const layout = await ociLayout(join(work, 'oci1'), [{ dir: base, gzip: true }, { dir: top, gzip: false }]);
    expect((await createRecipe(k, { name: 'oci', kind: 'oci-archive' }, layout)).status).toBe(201);

    const job = await build('oci', { image: 'oci', version: 'v1' });
    const log = await (await k.api(`/jobs/${job.id}/logs`)).text();
    expect(job.status, log).toBe('succeeded');
    expect(log).toContain('applied 2 layers (2 whiteouts)');
    const v = await json<VersionView>(await k.api('/images/oci/versions/v1'));
    const sqfs = join(work, 'oci.sqfs');
    await writeFile(sqfs, await download(k, v.artifacts.find((a) => a.role === 'rootfs')!.sha256));
    const paths = await squashfsPaths(sqfs);
    expect(paths).toEqual(expect.arrayContaining(['/etc/b', '/etc/c', '/opt/dir/z', '/opt/keep', '/sbin/init']));
    expect(paths).not.toContain('/etc/a');
    expect(paths).not.toContain('/opt/dir/x');
    expect(paths).not.toContain('/opt/dir/y');
    expect(paths.filter((p) => p.includes('.wh.'))).toEqual([]);
    const { stdout } = await exec('unsquashfs', ['-cat', sqfs, 'etc/kiln-build-test']);
    expect(stdout).toBe('oci layer 2\n');
    await expectManifestMatches(k, v);
  });

  it('oci-archive: a layer writing through a link that leaves the root is refused; the host is untouched', async () => {
    const victim = await mkdtemp(join(tmpdir(), 'kiln-build-victim-'));
    try {
      const base = join(work, 'evil-base');
      await makeTinyRoot(base, 'evil');
      await symlink(victim, join(base, 'escape'));
      const top = join(work, 'evil-top');
      await mkdir(join(top, 'escape'), { recursive: true });
      await writeFile(join(top, 'escape', 'pwned'), 'pwned');
      // The layer has no directory entry for escape/ (that would replace the link): only the file.
      await exec('tar', ['-cf', join(work, 'evil-top.tar'), '-C', top, 'escape/pwned']);
      const bytes = await readFile(join(work, 'evil-top.tar'));
      const again = await ociLayoutWith(join(work, 'oci-evil'), base, { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256(bytes)}`, size: bytes.length }, bytes);
      expect((await createRecipe(k, { name: 'evil', kind: 'oci-archive' }, again)).status).toBe(201);
      const before = await artifactShas();
      const job = await build('evil', { image: 'evil' });
      expect(job).toMatchObject({ status: 'failed', error: { code: 'KILN_BUILD_ARCHIVE_UNSAFE' } });
      expect(job.error?.message).toContain('/escape');
      expect(await readdir(victim)).toEqual([]);
      expect((await k.api('/images/evil')).status).toBe(404);
      expect(await artifactShas()).toEqual(before);
      expect(await workDirs()).toEqual([]);
    } finally {
      await rm(victim, { recursive: true, force: true });
    }
  });

  /** A layout whose image is the gzip'd tar of `base` and then a given raw layer. */
  async function ociLayoutWith(dir: string, base: string, layer: { mediaType: string; digest: string; size: number }, bytes: Buffer): Promise<Buffer> {
    await ociLayout(dir, [{ dir: base, gzip: true }]);
    const layout = join(dir, 'layout');
    await writeFile(join(layout, 'blobs', 'sha256', layer.digest.slice(7)), bytes);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
    const mPath = join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7));
    const manifest = JSON.parse(await readFile(mPath, 'utf8')) as { layers: unknown[] };
    manifest.layers.push(layer);
    const mBytes = Buffer.from(JSON.stringify(manifest));
    await rm(mPath);
    await writeFile(join(layout, 'blobs', 'sha256', sha256(mBytes)), mBytes);
    index.manifests[0] = { ...index.manifests[0]!, digest: `sha256:${sha256(mBytes)}`, size: mBytes.length };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    return tarDir(layout, join(dir, 'layout2.tar'));
  }

  it("initrd image: the image's own /boot initrd boots it instead of Kiln's; without one the build fails", async () => {
    const dir = join(work, 'own-initrd');
    await makeTinyRoot(dir, 'own initrd');
    const own = randomBytes(3000);
    await writeFile(join(dir, 'boot', `initrd.img-${release}`), own);
    expect((await createRecipe(k, { name: 'own-initrd', kind: 'rootfs-archive' }, await tarDir(dir, join(work, 'own.tar'), { gzip: true }))).status).toBe(201);
    const job = await build('own-initrd', { image: 'own-initrd', initrd: 'image' });
    expect(job.status, job.error?.message).toBe('succeeded');
    const v = await json<VersionView>(await k.api('/images/own-initrd/versions/1'));
    expect(v.artifacts.find((a) => a.role === 'initrd')).toMatchObject({ name: 'initrd.img', sha256: sha256(own) });
    expect(v.metadata).toMatchObject({ build: { initrd: 'image' } });

    const before = await artifactShas();
    const none = await build('tiny', { image: 'no-own-initrd', initrd: 'image' });
    expect(none).toMatchObject({ status: 'failed', error: { code: 'KILN_BUILD_FAILED' } });
    expect(none.error?.message).toContain('no initrd');
    expect(await artifactShas()).toEqual(before);
  });

  it('a failed build (no kernel in the root) leaves no image, no version, no artifact and no work directory', async () => {
    const dir = join(work, 'nokernel');
    await mkdir(join(dir, 'etc'), { recursive: true });
    await writeFile(join(dir, 'etc', 'hostname'), 'nokernel\n');
    expect((await createRecipe(k, { name: 'nokernel', kind: 'rootfs-archive' }, await tarDir(dir, join(work, 'nokernel.tar')))).status).toBe(201);
    const before = await artifactShas();
    const job = await build('nokernel', { image: 'nokernel', promote: 'stable' });
    expect(job).toMatchObject({ status: 'failed', stage: 'packaging_artifacts', error: { code: 'KILN_BUILD_NO_KERNEL' } });
    expect((await k.api('/images/nokernel')).status).toBe(404);
    expect(await artifactShas()).toEqual(before);
    expect(await workDirs()).toEqual([]);
  });

  it('refuses bad recipes with stable codes and stores nothing', async () => {
    const before = await artifactShas();
    const recipesBefore = await recipeShas();
    const problem = async (res: Response) => ({ status: res.status, ...(await json<{ code: string; detail: string; problems?: string[] }>(res)) });

    const spec = await problem(await createRecipe(k, { name: 'bad-spec', kind: 'debootstrap' }, 'suite: Bookworm!\nvariant: tiny\npackages: [ok, "a,b"]\nmirror: ftp://x\nextra: 1\n'));
    expect(spec).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    for (const word of ['suite', 'variant', 'packages', 'mirror', 'unknown key "extra"']) expect(spec.detail).toContain(word);
    expect(await problem(await createRecipe(k, { name: 'bad-yaml', kind: 'debootstrap' }, 'suite: [unclosed'))).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    expect(await problem(await createRecipe(k, { name: 'not-tar', kind: 'rootfs-archive' }, randomBytes(4096)))).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    const truncated = tiny.subarray(0, Math.floor(tiny.length / 2));
    expect(await problem(await createRecipe(k, { name: 'truncated', kind: 'rootfs-archive' }, truncated))).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    expect(await problem(await createRecipe(k, { name: 'not-oci', kind: 'oci-archive' }, tiny))).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    expect(await problem(await createRecipe(k, { name: 'not-kiwi', kind: 'kiwi-ng' }, tiny))).toMatchObject({ status: 400, code: 'KILN_RECIPE_INVALID' });
    expect(await problem(await createRecipe(k, { name: 'Bad Name', kind: 'rootfs-archive' }, tiny))).toMatchObject({ status: 400 });
    expect(await problem(await createRecipe(k, { name: 'x', kind: 'packer' }, tiny))).toMatchObject({ status: 400, code: 'KILN_REQUEST_INVALID' });
    expect(await problem(await createRecipe(k, { name: 'tiny', kind: 'rootfs-archive' }, tiny))).toMatchObject({ status: 409, code: 'KILN_RECIPE_EXISTS' });
    expect(await artifactShas()).toEqual(before);
    expect(await recipeShas()).toEqual(recipesBefore);

    const buildProblem = async (recipe: string, body: unknown) => problem(await k.api(`/recipes/${recipe}/builds`, { method: 'POST', json: body }));
    expect(await buildProblem('nope', { image: 'x' })).toMatchObject({ status: 404, code: 'KILN_RECIPE_NOT_FOUND' });
    expect(await buildProblem('tiny', { image: 'x', arch: 'aarch64' })).toMatchObject({ status: 400, code: 'KILN_BUILD_INVALID' });
    expect(await buildProblem('tiny', { image: 'tiny', version: '1' })).toMatchObject({ status: 409, code: 'KILN_VERSION_EXISTS' });
    expect(await buildProblem('tiny', { image: 'x', cmdline: 'a\nb' })).toMatchObject({ status: 400, code: 'KILN_BUILD_INVALID' });
    expect(await buildProblem('tiny', { image: 'x', promote: 'Not A Channel' })).toMatchObject({ status: 400 });
    expect(await buildProblem('tiny', { image: 'x', rm: '-rf' })).toMatchObject({ status: 400, code: 'KILN_REQUEST_INVALID' });
    // The job API checks the same when the job starts.
    const viaJobs = await json<Job>(await k.api('/jobs', { method: 'POST', json: { type: 'image-build', input: { recipe: 'nope', image: 'x' } } }));
    expect(await settled(k, viaJobs.id)).toMatchObject({ status: 'failed', error: { code: 'KILN_RECIPE_NOT_FOUND' } });
  });

  it('recipes: show, download, patch with If-Match, replace content (pinned builds keep theirs), delete', async () => {
    const cur = await k.api('/recipes/tiny');
    const etag = cur.headers.get('etag')!;
    const content = await k.api('/recipes/tiny/content');
    expect(sha256(Buffer.from(await content.arrayBuffer()))).toBe(sha256(tiny));
    const patched = await k.api('/recipes/tiny', { method: 'PATCH', json: { description: 'tiny busybox root' }, headers: { 'if-match': etag } });
    expect(patched.status).toBe(200);
    expect(await json<Recipe>(patched)).toMatchObject({ description: 'tiny busybox root', revision: 2 });
    expect((await k.api('/recipes/tiny', { method: 'PATCH', json: { description: 'x' }, headers: { 'if-match': etag } })).status).toBe(412);
    const replaced = await k.api('/recipes/tiny/content', { method: 'PUT', body: randomBytes(100), headers: { 'content-type': 'application/octet-stream' } });
    expect(replaced.status).toBe(400);
    const tar2 = await tarDir(join(work, 'oci-top'), join(work, 'other.tar'));
    const ok = await k.api('/recipes/tiny/content', { method: 'PUT', body: tar2, headers: { 'content-type': 'application/x-tar' } });
    expect(ok.status).toBe(200);
    expect(await json<Recipe>(ok)).toMatchObject({ sha256: sha256(tar2), kind: 'rootfs-archive', revision: 3 });
    expect((await k.api('/recipes/tiny', { method: 'DELETE', headers: { 'if-match': etag } })).status).toBe(412);
    expect((await k.api('/recipes/tiny', { method: 'DELETE' })).status).toBe(204);
    expect((await k.api('/recipes/tiny')).status).toBe(404);
  });

  it('kiln recipe create | list | show | build | delete (the CLI from its sources)', async () => {
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KILN_'))), KILN_SERVER: k.kiln.adminUrl, KILN_TOKEN: k.token };
    const kiln = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', join(ROOT, 'test/integration/jobs-support/register-ts.mjs'), join(ROOT, 'src/cli/kiln.ts'), ...args], { env }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const file = join(work, 'cli-tiny.tar.gz');
    expect(existsSync(file)).toBe(false);
    await writeFile(file, tiny);
    const created = await kiln('recipe', 'create', 'cli-tiny', '--kind', 'rootfs-archive', '--file', file, '--description', 'from the CLI', '-o', 'json');
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'cli-tiny', kind: 'rootfs-archive', sha256: sha256(tiny) });
    const listed = await kiln('recipe', 'list');
    expect(listed.stdout).toMatch(/cli-tiny\s+rootfs-archive\s+x86_64/);
    expect(JSON.parse((await kiln('recipe', 'show', 'cli-tiny', '-o', 'json')).stdout)).toMatchObject({ description: 'from the CLI' });
    const bad = await kiln('recipe', 'create', 'cli-bad', '--kind', 'rootfs-archive', '--file', join(ROOT, 'package.json'));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('KILN_RECIPE_INVALID');
    const built = await kiln('recipe', 'build', 'cli-tiny', '--image', 'cli-tiny', '--promote', 'stable', '-o', 'json');
    expect(built.code, built.stderr).toBe(0);
    expect(built.stderr).toContain('kiln job logs -f');
    const job = await settled(k, (JSON.parse(built.stdout) as Job).id, 120_000);
    expect(job.status).toBe('succeeded');
    expect((await kiln('recipe', 'delete', 'cli-tiny')).code).toBe(0);
    expect((await kiln('recipe', 'show', 'cli-tiny')).code).not.toBe(0);
  });
});
