// One real debootstrap build of Debian bookworm (minbase, the kernel, busybox) through a real Kiln's API
// and in-process worker, from the Debian mirror: the version's kernel is a bzImage, its squashfs a real
// one holding /etc/os-release, its manifest matches every artifact. Then, where QEMU is, a VM boots that
// version through Kiln (iPXE over HTTP, the kiln-live initrd fetching the squashfs) and the image's own
// init calls back. Last, a second build is cancelled in the middle of debootstrap: no version, no
// artifact, no work directory, no mount left.
import { readdir, readFile, rm, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../src/jobs/contract/probes.js';
import type { Job } from '../../src/jobs/job.js';
import { mountsUnder } from '../../src/jobs/work-dirs.js';
import { e2eGate } from '../e2e/support/e2e-prerequisites.js';
import { bootVm, describeRun, expectSerial, randomMac } from '../e2e/support/qemu.js';
import { buildGate, createRecipe, download, exec, expectManifestMatches, settled, squashfsPaths, type VersionView } from './build-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const gate = buildGate('debootstrap', 'image build: debootstrap bookworm minbase');

// Minbase has no init: the test image's own prints where it runs and calls back Kiln with busybox
// (the callback URL is in the kiln-live initrd's /run/initramfs/kiln.env). Drivers a VM does not need
// go, so the squashfs a TCG guest downloads stays small.
const SPEC = `# Kiln test image: Debian bookworm minbase, its kernel, busybox.
suite: bookworm
mirror: http://deb.debian.org/debian
variant: minbase
packages: [busybox]
postInstall: |
  cd /lib/modules/*/kernel
  rm -rf sound drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/iio drivers/net/wireless drivers/usb drivers/bluetooth drivers/isdn drivers/comedi net/wireless net/bluetooth fs/btrfs fs/xfs fs/ocfs2
  cat >/sbin/init <<'EOF'
  #!/bin/sh
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin
  mount -t proc proc /proc
  . /run/initramfs/kiln.env
  . /etc/os-release
  echo "KILN-BUILD-TEST: $PRETTY_NAME, / is $(busybox awk '$2 == "/" {print $3}' /proc/mounts | busybox tail -n 1)"
  busybox wget -q -O- "$KILN_CALLBACK&state=booted" && echo "KILN-BUILD-TEST-CALLBACK-OK"
  busybox poweroff -f
  EOF
  chmod 755 /sbin/init
`;

describe.skipIf(gate.skip)(gate.title, () => {
  let k: TestKiln;
  let work: string;
  let built: VersionView | null = null;

  beforeAll(async () => {
    k = await startTestKiln({ 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    work = await mkdtemp(join(tmpdir(), 'kiln-build-deb-'));
    const res = await createRecipe(k, { name: 'bookworm', kind: 'debootstrap', description: 'Debian bookworm minbase' }, SPEC);
    if (res.status !== 201) throw new Error(`recipe: ${res.status} ${await res.text()}`);
  });

  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  const artifactShas = async () => (await json<{ items: { sha256: string }[] }>(await k.api('/artifacts'))).items.map((a) => a.sha256).sort();
  const workDirs = async () => (await readdir(join(k.dataDir, 'work')).catch(() => [] as string[])).filter((n) => n !== '.cache');

  it('builds a version whose kernel is a bzImage and whose squashfs holds Debian; the manifest matches', async () => {
    const started = Date.now();
    const res = await k.api('/recipes/bookworm/builds', { method: 'POST', json: { image: 'bookworm', promote: 'stable', cmdline: 'console=ttyS0 panic=1' } });
    expect(res.status, await res.clone().text()).toBe(202);
    const job = await settled(k, (await json<Job>(res)).id, 900_000);
    const log = await (await k.api(`/jobs/${job.id}/logs`)).text();
    expect(job.status, log.slice(-4000)).toBe('succeeded');
    process.stderr.write(`  debootstrap build: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    expect(log).toContain('I: Base system installed successfully.');
    expect(log).toContain("running the recipe's postInstall script");

    const v = await json<VersionView>(await k.api('/images/bookworm/versions/1'));
    built = v;
    expect(v.artifacts.map((a) => a.role)).toEqual(['kernel', 'initrd', 'rootfs', 'other']);
    const kernel = await download(k, v.artifacts[0]!.sha256);
    expect(kernel.toString('latin1', 0x202, 0x206)).toBe('HdrS');
    const release = (job.result as { kernelRelease: string }).kernelRelease;
    expect(release).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
    const sqfs = join(work, 'bookworm.sqfs');
    await writeFile(sqfs, await download(k, v.artifacts[2]!.sha256));
    expect((await readFile(sqfs)).toString('latin1', 0, 4)).toBe('hsqs');
    const paths = await squashfsPaths(sqfs);
    // (10,000 paths: checked one by one, so a failure does not print them all)
    for (const p of ['/etc/os-release', '/usr/sbin/init', `/boot/vmlinuz-${release}`, `/usr/lib/modules/${release}/modules.dep`]) expect(paths.includes(p), p).toBe(true);
    expect(paths.filter((p) => p.startsWith('/var/cache/apt/archives/') && p.endsWith('.deb'))).toEqual([]);
    const { stdout: osRelease } = await exec('unsquashfs', ['-cat', sqfs, 'usr/lib/os-release']);
    expect(osRelease).toContain('VERSION_CODENAME=bookworm');
    // The build host's name and resolver stay out of the image; no initrd of Debian's own was made.
    expect((await exec('unsquashfs', ['-cat', sqfs, 'etc/hostname'])).stdout).toBe('localhost\n');
    expect(paths.includes('/etc/resolv.conf')).toBe(false);
    expect(paths.filter((p) => p.startsWith('/boot/initrd.img'))).toEqual([]);
    await expectManifestMatches(k, v);
    expect((await json<{ version: string }>(await k.api('/images/bookworm/channels/stable'))).version).toBe('1');
    // The packages stay in the worker's cache for the next build; the job's own directory is gone.
    expect((await readdir(join(k.dataDir, 'work', '.cache', 'debootstrap', 'amd64'))).filter((f) => f.endsWith('.deb')).length).toBeGreaterThan(50);
    expect(await workDirs()).toEqual([]);
  }, 900_000);

  const vm = e2eGate('vm', 'a VM boots the built version through Kiln');
  it.skipIf(vm.skip)(vm.title, async () => {
    expect(built, 'the build above succeeded').not.toBeNull();
    await k.api('/profiles', { method: 'POST', json: { name: 'bookworm', image: { image: 'bookworm', channel: 'stable' } } });
    const mac = randomMac();
    expect((await k.api('/machines', { method: 'POST', json: { macs: [mac] } })).status).toBe(201);
    expect((await k.api(`/machines/${mac}/assignment`, { method: 'PUT', json: { profile: 'bookworm' } })).status).toBe(200);
    const port = new URL(k.kiln.bootUrl).port;
    const run = await bootVm({ name: 'build-debootstrap', firmware: 'bios', mac, memoryMiB: 1024, timeoutMs: 240_000, net: { kind: 'user', bootfile: `http://10.0.2.2:${port}/boot.ipxe` } });
    const why = describeRun(run);
    expectSerial(run, 'kiln-initrd: fetching the root filesystem', 'the kiln-live initrd');
    expectSerial(run, /KILN-BUILD-TEST: Debian GNU\/Linux 12 \(bookworm\), \/ is overlay/, "the image's own init");
    expectSerial(run, 'KILN-BUILD-TEST-CALLBACK-OK');
    expect(run.timedOut, why).toBe(false);
    expect((await json<{ state: string }>(await k.api(`/machines/${mac}`))).state, why).toBe('booted');
    const events = (await json<{ items: { kind: string; detail: Record<string, unknown> }[] }>(await k.api(`/machines/${mac}/events?limit=1000`))).items;
    const rootfs = events.find((e) => e.kind === 'artifact' && e.detail.name === 'rootfs.squashfs');
    expect(rootfs?.detail, why).toMatchObject({ sha256: built!.artifacts[2]!.sha256, status: 200, complete: true });
    process.stderr.write(`  ${run.name}: booted the built image and called back in ${(run.durationMs / 1000).toFixed(1)} s\n`);
  }, 300_000);

  it('a build cancelled inside debootstrap leaves no version, no artifact, no work directory and no mount', async () => {
    const before = await artifactShas();
    const started = Date.now();
    const res = await k.api('/recipes/bookworm/builds', { method: 'POST', json: { image: 'cancelled' } });
    const job = await json<Job>(res);
    // Deep enough that debootstrap has mounted /proc in the new root.
    await until('debootstrap to install packages', async () => (await (await k.api(`/jobs/${job.id}/logs`)).text()).includes('I: Installing core packages'), 300_000);
    process.stderr.write(`  debootstrap (packages cached) installing after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const dir = join(k.dataDir, 'work', `${job.id}.1`);
    const mounted = (await mountsUnder(dir)).length;
    const cancelAt = Date.now();
    expect((await k.api(`/jobs/${job.id}/cancel`, { method: 'POST' })).status).toBe(202);
    expect(await settled(k, job.id, 120_000)).toMatchObject({ status: 'cancelled', error: { code: 'KILN_JOB_CANCELLED' } });
    process.stderr.write(`  cancelled with ${mounted} mounts in the build's directory; stopped after ${((Date.now() - cancelAt) / 1000).toFixed(1)} s\n`);
    expect((await k.api('/images/cancelled')).status).toBe(404);
    expect(await artifactShas()).toEqual(before);
    expect(await workDirs()).toEqual([]);
    expect(await mountsUnder(join(k.dataDir, 'work'))).toEqual([]);
  }, 400_000);
});
