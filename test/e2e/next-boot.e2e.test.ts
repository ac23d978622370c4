// A one-shot next boot on real firmware: the first boot runs the next-boot profile, the second the assigned
// one. Each profile tags the kernel command line, and the guest prints /proc/cmdline to its serial log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImage } from '../../src/demo/build-boot-image.js';
import { e2eGate } from './support/e2e-prerequisites.js';
import { addMachine, createProfile, getMachine, machineEvents, seedTestImage, startE2eKiln, type E2eKiln } from './support/kiln-server.js';
import { bootVm, describeRun, expectSerial, randomMac, type VmRun } from './support/qemu.js';

const gate = e2eGate('vm', 'e2e: one-shot next boot');

describe.skipIf(gate.skip)(gate.title, () => {
  let kiln: E2eKiln;
  let port: string;

  beforeAll(async () => {
    const image = await buildTestImage();
    kiln = await startE2eKiln();
    port = new URL(kiln.bootUrl).port;
    const seeded = await seedTestImage(kiln, image);
    await createProfile(kiln, 'e2e-regular', seeded.image, ['kiln.tag=regular']);
    await createProfile(kiln, 'e2e-oneshot', seeded.image, ['kiln.tag=oneshot']);
  }, 180_000);

  afterAll(async () => {
    await kiln?.stop();
  });

  it('bios: the first boot takes the next-boot profile, the second the assigned one', async () => {
    const mac = randomMac();
    await addMachine(kiln, mac, 'e2e-regular');
    const set = await kiln.api<{ nextBoot: string | null }>('PUT', `/machines/${mac}/next-boot`, { profile: 'e2e-oneshot' });
    expect(set.nextBoot).toBe('e2e-oneshot');

    const boot = (n: number) => bootVm({ name: `next-boot-${n}`, firmware: 'bios', mac, net: { kind: 'user', bootfile: `http://10.0.2.2:${port}/boot.ipxe` } });
    const booted = async (run: VmRun) => {
      expectSerial(run, 'KILN-IMAGE-CALLBACK-OK');
      expect((await getMachine(kiln, mac)).state, describeRun(run)).toBe('booted');
    };

    const first = await boot(1);
    await booted(first);
    expectSerial(first, / kiln\.tag=oneshot /, 'the first boot\'s kernel command line');
    expect(/kiln\.tag=regular/.test(first.serial), describeRun(first)).toBe(false);
    expect((await getMachine(kiln, mac)).nextBoot).toBeNull();

    const second = await boot(2);
    await booted(second);
    expectSerial(second, / kiln\.tag=regular /, 'the second boot\'s kernel command line');
    expect(/kiln\.tag=oneshot/.test(second.serial), describeRun(second)).toBe(false);

    const events = await machineEvents(kiln, mac);
    const scripts = events.filter((e) => e.kind === 'script').map((e) => ({ profile: e.detail.profile, source: e.detail.source }));
    expect(scripts).toEqual([{ profile: 'e2e-oneshot', source: 'next-boot' }, { profile: 'e2e-regular', source: 'assignment' }]);
    expect(events.filter((e) => e.kind === 'next-boot-consumed').map((e) => e.detail.profile)).toEqual(['e2e-oneshot']);
    expect(events.filter((e) => e.kind === 'callback')).toHaveLength(2);
    process.stderr.write(`  e2e next boot: ${(first.durationMs / 1000).toFixed(1)} s + ${(second.durationMs / 1000).toFixed(1)} s\n`);
  }, 300_000);
});
