// Shared by the image build tests: what a build needs from the host (skip locally, fail in CI), a tiny
// root filesystem (busybox-static, the host's Debian kernel and a few of its modules), tarballs of
// directories, waiting for jobs, and looking into built artifacts with the real tools.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { findTestKernel } from '../../src/demo/build-boot-image.js';
import { until } from '../../src/jobs/contract/probes.js';
import type { Job } from '../../src/jobs/job.js';
import { orderModules } from '../../src/jobs/builders/netboot-initrd.js';
import { BUSYBOX, findExecutable, isCi, isStaticElf } from '../e2e/support/e2e-prerequisites.js';
import { json, type TestKiln } from './helpers.js';

export const exec = promisify(execFile);
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Need {
  what: string;
  pkg: string | null;
  ok: () => boolean;
}

const tool = (name: string, pkg: string): Need => ({ what: `${name} on PATH`, pkg, ok: () => findExecutable(name) !== null });
const ARCHIVE_BUILDS: Need[] = [
  { what: 'root (builds unpack owners and device nodes, chroot)', pkg: null, ok: () => process.getuid?.() === 0 },
  { what: 'an x86_64 host (builds are native)', pkg: null, ok: () => process.arch === 'x64' },
  tool('tar', 'tar'),
  tool('mksquashfs', 'squashfs-tools'),
  tool('unsquashfs', 'squashfs-tools'),
  tool('cpio', 'cpio'),
  tool('zstd', 'zstd'),
  { what: `a statically linked ${BUSYBOX}`, pkg: 'busybox-static', ok: () => isStaticElf(BUSYBOX) },
  { what: 'a Debian kernel in /boot with its modules', pkg: 'linux-image-amd64', ok: () => findTestKernel() !== null },
];
const DEBOOTSTRAP_BUILDS: Need[] = [...ARCHIVE_BUILDS, tool('debootstrap', 'debootstrap'), tool('unshare', 'util-linux'), tool('flock', 'util-linux')];
const KIWI_BUILDS: Need[] = [...DEBOOTSTRAP_BUILDS, tool('kiwi-ng', 'kiwi'), tool('rsync', 'rsync')];

/** Skip locally (saying which packages are missing), fail in CI: build tests can never pass by not running. */
export function buildGate(needs: 'archive' | 'debootstrap' | 'kiwi', title: string): { skip: boolean; title: string } {
  const list = needs === 'archive' ? ARCHIVE_BUILDS : needs === 'debootstrap' ? DEBOOTSTRAP_BUILDS : KIWI_BUILDS;
  const missing = list.filter((n) => !n.ok());
  if (missing.length === 0) return { skip: false, title };
  const pkgs = [...new Set(missing.map((m) => m.pkg).filter((p): p is string => p !== null))];
  const reason = `missing ${missing.map((m) => m.what).join('; ')}${pkgs.length > 0 ? ` (apt-get install ${pkgs.join(' ')})` : ''}`;
  if (isCi()) throw new Error(`CI must run the image build tests (${title}), but: ${reason}`);
  process.stderr.write(`\n  "${title}" skipped: ${reason}\n\n`);
  return { skip: true, title: `${title} (skipped: ${reason})` };
}

/** The init of the tiny test root: says where it runs and calls back Kiln (see the kiln-live initrd's kiln.env). */
export const TINY_INIT = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
. /run/initramfs/kiln.env
echo "KILN-BUILD-TEST: tiny root, / is $(awk '$2 == "/" {print $3}' /proc/mounts | tail -n 1)"
wget -q -O- "$KILN_CALLBACK&state=booted" && echo "KILN-BUILD-TEST-CALLBACK-OK"
poweroff -f
`;

/**
 * A root filesystem of busybox-static applets, the host's Debian kernel in /boot/vmlinuz-<release>
 * and /lib/modules/<release> holding modules.dep and just the modules the live initrd needs.
 */
export async function makeTinyRoot(dir: string, marker: string): Promise<{ release: string; kernel: string }> {
  const k = findTestKernel()!;
  for (const d of ['bin', 'sbin', 'boot', 'dev', 'etc', 'proc', 'run', 'sys', 'tmp', `lib/modules/${k.version}`]) await mkdir(join(dir, d), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'mount', 'awk', 'tail', 'wget', 'poweroff', 'cat', 'echo']) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'sbin', 'init'), TINY_INIT, { mode: 0o755 });
  await writeFile(join(dir, 'etc', 'kiln-build-test'), `${marker}\n`);
  await copyFile(k.path, join(dir, 'boot', `vmlinuz-${k.version}`));
  const dep = await readFile(join(k.modules, 'modules.dep'), 'utf8');
  await writeFile(join(dir, 'lib/modules', k.version, 'modules.dep'), dep);
  for (const f of orderModules(dep, ['virtio_net', 'squashfs', 'overlay', 'loop']).files) {
    await mkdir(join(dir, 'lib/modules', k.version, f, '..'), { recursive: true });
    await copyFile(join(k.modules, f), join(dir, 'lib/modules', k.version, f));
  }
  return { release: k.version, kernel: k.path };
}

/** `tar` of a directory's contents (numeric owners), gzip'd when asked. */
export async function tarDir(dir: string, out: string, opts: { gzip?: boolean } = {}): Promise<Buffer> {
  await exec('tar', ['--numeric-owner', `-c${opts.gzip === true ? 'z' : ''}f`, out, '-C', dir, '.']);
  return readFile(out);
}

export async function createRecipe(k: TestKiln, query: Record<string, string>, body: Buffer | string): Promise<Response> {
  return k.api(`/recipes?${new URLSearchParams(query).toString()}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
}

export async function settled(k: TestKiln, id: string, timeoutMs = 600_000): Promise<Job> {
  return until(`job ${id} to finish`, async () => {
    const j = await json<Job>(await k.api(`/jobs/${id}`));
    return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
  }, timeoutMs);
}

export async function download(k: TestKiln, sha: string): Promise<Buffer> {
  const res = await k.api(`/artifacts/${sha}`);
  if (res.status !== 200) throw new Error(`download ${sha}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Paths in a squashfs as `unsquashfs -l` lists them (`/etc/os-release`). */
export async function squashfsPaths(file: string): Promise<string[]> {
  const { stdout } = await exec('unsquashfs', ['-l', file], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => l.startsWith('squashfs-root/')).map((l) => l.slice('squashfs-root'.length));
}

/** Names in a gzip'd newc cpio (an initrd). */
export async function cpioNames(initrd: Buffer, tmpFile: string): Promise<string[]> {
  await writeFile(tmpFile, gunzipSync(initrd));
  const { stdout } = await exec('cpio', ['-it', '--quiet', '-F', tmpFile]);
  return stdout.split('\n').filter((l) => l !== '');
}

export interface VersionView {
  image: string;
  version: string;
  arch: string;
  cmdline: string;
  metadata: Record<string, unknown>;
  artifacts: { name: string; role: string; sha256: string; size: number; mediaType: string }[];
}

export interface ManifestView {
  version: string;
  created: string;
  artifacts: { name: string; role: string; type: string; sha256: string; md5: string; size: number; link: { path: string; etag: string; type: string } }[];
}

/** The version's manifest.json, parsed. */
export async function readManifest(k: TestKiln, v: VersionView): Promise<ManifestView> {
  const m = v.artifacts.find((a) => a.name === 'manifest.json');
  if (m === undefined) throw new Error('the version has no manifest.json');
  return JSON.parse((await download(k, m.sha256)).toString('utf8')) as ManifestView;
}

/** Every artifact of the version but the manifest is in the manifest with its sha256, size and md5; one rootfs. */
export async function expectManifestMatches(k: TestKiln, v: VersionView): Promise<ManifestView> {
  const manifest = await readManifest(k, v);
  expect(manifest.version).toBe('1.0');
  expect(manifest.artifacts.filter((a) => a.type === 'application/vnd.cray.image.rootfs.squashfs')).toHaveLength(1);
  const built = v.artifacts.filter((a) => a.name !== 'manifest.json');
  expect(manifest.artifacts.map((a) => a.name).sort()).toEqual(built.map((a) => a.name).sort());
  for (const a of built) {
    const e = manifest.artifacts.find((x) => x.name === a.name)!;
    expect(e, a.name).toMatchObject({ role: a.role, sha256: a.sha256, size: a.size, link: { path: `/api/v1/artifacts/${a.sha256}`, etag: a.sha256, type: 'kiln' } });
    const bytes = await download(k, a.sha256);
    expect(sha256(bytes), `${a.name}'s bytes`).toBe(a.sha256);
    expect(bytes.length).toBe(a.size);
    expect(createHash('md5').update(bytes).digest('hex'), `${a.name}'s md5`).toBe(e.md5);
  }
  return manifest;
}
