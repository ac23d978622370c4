// Real firmware network-boots from Kiln over QEMU user networking: slirp's DHCP hands the NIC's iPXE ROM
// Kiln's /boot.ipxe; the guest boots the image assigned to its MAC and its init calls back Kiln.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImage } from '../../src/demo/build-boot-image.js';
import { e2eGate } from './support/e2e-prerequisites.js';
import { addMachine, createProfile, getMachine, machineEvents, seedTestImage, startE2eKiln, type E2eKiln } from './support/kiln-server.js';
import { bootVm, describeRun, expectSerial, randomMac, type Firmware } from './support/qemu.js';

const gate = e2eGate('vm', 'e2e: netboot over QEMU user networking (slirp)');

describe.skipIf(gate.skip)(gate.title, () => {
  let kiln: E2eKiln;
  let port: string;

  beforeAll(async () => {
    const image = await buildTestImage();
    kiln = await startE2eKiln();
    port = new URL(kiln.bootUrl).port;
    const seeded = await seedTestImage(kiln, image);
    await createProfile(kiln, 'e2e-worker', seeded.image);
  }, 180_000);

  afterAll(async () => {
    await kiln?.stop();
  });

  // Both firmwares boot at once: each is mostly waiting on single-threaded TCG.
  describe.concurrent('boots the image assigned to its MAC and shows the machine booted', () => {
    for (const firmware of ['bios', 'uefi'] as Firmware[]) {
      it(`${firmware}: ${firmware === 'bios' ? 'SeaBIOS' : 'OVMF'} + iPXE ROM, DHCP boot file = Kiln's /boot.ipxe`, async () => {
        const mac = randomMac();
        await addMachine(kiln, mac, 'e2e-worker');
        // Slirp maps the guest's 10.0.2.2 to the host's loopback, where Kiln listens.
        const run = await bootVm({ name: `slirp-${firmware}`, firmware, mac, net: { kind: 'user', bootfile: `http://10.0.2.2:${port}/boot.ipxe` } });
        const why = describeRun(run);
        expectSerial(run, 'KILN-IMAGE-CALLBACK-OK');
        // UEFI kernels find the initrd only by the initrd=<name> Kiln puts on the kernel line (the EFI stub adds argv[0]).
        expectSerial(run, new RegExp(`cmdline: (vmlinuz )?initrd=initrd\\.img console=ttyS0 panic=1 quiet kiln\\.callback=http://10\\.0\\.2\\.2:${port}/boot/callback\\?mac=${mac}`));
        expect(run.timedOut, why).toBe(false);
        const machine = await getMachine(kiln, mac);
        expect(machine.state, why).toBe('booted');
        const events = await machineEvents(kiln, mac);
        const kinds = events.map((e) => e.kind);
        expect(kinds, why).toContain('script');
        expect(kinds, why).toContain('callback');
        const script = events.find((e) => e.kind === 'script')!;
        expect(script.detail, why).toMatchObject({ profile: 'e2e-worker', image: 'e2e', version: '1', source: 'assignment' });
        const artifacts = events.filter((e) => e.kind === 'artifact').map((e) => e.detail.name);
        expect(artifacts, why).toEqual(expect.arrayContaining(['vmlinuz', 'initrd.img']));
        process.stderr.write(`  e2e ${run.name}: booted and called back in ${(run.durationMs / 1000).toFixed(1)} s\n`);
      }, 240_000);
    }
  });
});
