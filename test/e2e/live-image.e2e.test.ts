// A live image: the initramfs fetches the version's squashfs root from Kiln over HTTP, mounts it read-only
// under a tmpfs overlay (mounted, never unpacked), switch_roots, and the image's own init calls back Kiln.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImage } from '../../src/demo/build-boot-image.js';
import { e2eGate } from './support/e2e-prerequisites.js';
import { addMachine, createProfile, getMachine, machineEvents, seedTestImage, startE2eKiln, type E2eKiln, type SeededImage } from './support/kiln-server.js';
import { bootVm, describeRun, expectSerial, randomMac } from './support/qemu.js';

const gate = e2eGate('vm', 'e2e: live image (squashfs root over HTTP, overlay, switch_root)');

describe.skipIf(gate.skip)(gate.title, () => {
  let kiln: E2eKiln;
  let seeded: SeededImage;
  let port: string;

  beforeAll(async () => {
    const image = await buildTestImage();
    kiln = await startE2eKiln();
    port = new URL(kiln.bootUrl).port;
    seeded = await seedTestImage(kiln, image, 'e2e-live', { live: true });
    // No rootfs argument here: Kiln's script passes the rootfs artifact's (signed) URL as kiln.rootfs=.
    await createProfile(kiln, 'e2e-live', seeded.image);
  }, 180_000);

  afterAll(async () => {
    await kiln?.stop();
  });

  it('bios: boots the squashfs root and the image\'s init calls back', async () => {
    const mac = randomMac();
    await addMachine(kiln, mac, 'e2e-live');
    const run = await bootVm({ name: 'live-bios', firmware: 'bios', mac, net: { kind: 'user', bootfile: `http://10.0.2.2:${port}/boot.ipxe` } });
    const why = describeRun(run);
    expectSerial(run, `kiln.rootfs=http://10.0.2.2:${port}/boot/artifacts/${seeded.rootfsSha}/rootfs.squashfs?mac=${mac}`, 'the kernel command line');
    // Only the live root's init calls back, after checking / is the overlay over the squashfs and writable.
    expectSerial(run, 'live root: pid 1, / is overlay, lower is squashfs');
    expectSerial(run, 'KILN-IMAGE-LIVE-CALLBACK-OK state=booted');
    expect(run.timedOut, why).toBe(false);
    expect((await getMachine(kiln, mac)).state, why).toBe('booted');
    const events = await machineEvents(kiln, mac);
    const rootfs = events.find((e) => e.kind === 'artifact' && e.detail.name === 'rootfs.squashfs');
    expect(rootfs?.detail, why).toMatchObject({ sha256: seeded.rootfsSha, status: 200, complete: true });
    process.stderr.write(`  e2e ${run.name}: live root booted and called back in ${(run.durationMs / 1000).toFixed(1)} s\n`);
  }, 240_000);
});
