// A real kiwi-ng build (Cray IMS's recipe format) of Debian bookworm with Debian's kiwi: the description
// tarball becomes a version with the image's kernel, a kiln-live initrd and a squashfs holding what
// config.sh wrote. Slow (about 1.5 min of `kiwi-ng system prepare` here, from the Debian mirror), so
// only with KILN_TEST_KIWI=1: the long suite, not every CI run.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/jobs/job.js';
import { buildGate, createRecipe, download, exec, expectManifestMatches, settled, tarDir, type VersionView } from './build-support.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const optIn = process.env.KILN_TEST_KIWI === '1';
if (!optIn) process.stderr.write('\n  kiwi-ng build test skipped: set KILN_TEST_KIWI=1 to run it (about 2 min, needs the kiwi and rsync packages)\n\n');
const gate = optIn ? buildGate('kiwi', 'image build: kiwi-ng description of Debian bookworm') : { skip: true, title: 'image build: kiwi-ng (set KILN_TEST_KIWI=1)' };

const CONFIG_XML = `<?xml version="1.0" encoding="utf-8"?>
<image schemaversion="7.5" name="kiln-kiwi-test">
  <description type="system">
    <author>Kiln</author>
    <contact>kiln@example.org</contact>
    <specification>Kiln kiwi-ng test image</specification>
  </description>
  <preferences>
    <version>1.0.0</version>
    <packagemanager>apt</packagemanager>
    <type image="kis" filesystem="squashfs"/>
  </preferences>
  <users>
    <user password="" home="/root" name="root" groups="root"/>
  </users>
  <repository type="apt-deb" alias="bookworm" distribution="bookworm" components="main" repository_gpgcheck="false">
    <source path="http://deb.debian.org/debian"/>
  </repository>
  <packages type="image">
    <package name="linux-image-amd64"/>
    <package name="busybox"/>
  </packages>
  <packages type="bootstrap">
    <package name="ca-certificates"/>
  </packages>
</image>
`;

describe.skipIf(gate.skip)(gate.title, () => {
  let k: TestKiln;
  let work: string;

  beforeAll(async () => {
    k = await startTestKiln({ 'jobs.heartbeatSeconds': '1', 'jobs.pollIntervalMs': '50' });
    work = await mkdtemp(join(tmpdir(), 'kiln-build-kiwi-'));
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('builds a version from a kiwi description tarball', async () => {
    const desc = join(work, 'desc', 'bookworm');
    await mkdir(desc, { recursive: true });
    await writeFile(join(desc, 'config.xml'), CONFIG_XML);
    await writeFile(join(desc, 'config.sh'), '#!/bin/bash\necho "written by config.sh" >/etc/kiln-kiwi-test\n', { mode: 0o755 });
    const res = await createRecipe(k, { name: 'kiwi', kind: 'kiwi-ng' }, await tarDir(join(work, 'desc'), join(work, 'kiwi.tar.gz'), { gzip: true }));
    expect(res.status, await res.clone().text()).toBe(201);
    const started = Date.now();
    const build = await json<Job>(await k.api('/recipes/kiwi/builds', { method: 'POST', json: { image: 'kiwi' } }));
    const job = await settled(k, build.id, 1_200_000);
    const log = await (await k.api(`/jobs/${job.id}/logs`)).text();
    expect(job.status, log.slice(-4000)).toBe('succeeded');
    process.stderr.write(`  kiwi-ng build: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    const v = await json<VersionView>(await k.api('/images/kiwi/versions/1'));
    expect((await download(k, v.artifacts[0]!.sha256)).toString('latin1', 0x202, 0x206)).toBe('HdrS');
    const sqfs = join(work, 'kiwi.sqfs');
    await writeFile(sqfs, await download(k, v.artifacts.find((a) => a.role === 'rootfs')!.sha256));
    expect((await readFile(sqfs)).toString('latin1', 0, 4)).toBe('hsqs');
    expect((await exec('unsquashfs', ['-cat', sqfs, 'etc/kiln-kiwi-test'])).stdout).toBe('written by config.sh\n');
    // kiwi's copy of the description is not part of the image.
    expect((await exec('unsquashfs', ['-l', sqfs])).stdout).not.toMatch(/^squashfs-root\/image\//m);
    await expectManifestMatches(k, v);
  }, 1_300_000);
});
