// Kiln's own proxyDHCP and TFTP against real firmware, on a private bridge next to a plain address-only DHCP
// server: OVMF's native PXE → TFTP snponly.efi from Kiln → iPXE → Kiln's HTTP script → kernel → callback;
// and SeaBIOS with the NIC's iPXE ROM, which Kiln's proxy sends straight to the HTTP script.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImage } from '../../src/demo/build-boot-image.js';
import { e2eGate } from './support/e2e-prerequisites.js';
import { addMachine, createProfile, getMachine, machineEvents, prepareTftpRoot, seedTestImage, startE2eKiln, type E2eKiln } from './support/kiln-server.js';
import { createNetnsLab, type NetnsLab } from './support/netns-lab.js';
import { bootVm, describeRun, expectSerial, randomMac, type VmRun } from './support/qemu.js';

const gate = e2eGate('lab', "e2e: Kiln's proxyDHCP + TFTP in a network-namespace lab");
// Inside its own namespace Kiln can take any port; this one is fixed so --public-url can name it.
const HTTP_PORT = 8080;

describe.skipIf(gate.skip)(gate.title, () => {
  let lab: NetnsLab | undefined;
  let kiln: E2eKiln | undefined;
  let tftp: Awaited<ReturnType<typeof prepareTftpRoot>> | undefined;
  let bootBase: string;

  beforeAll(async () => {
    const image = await buildTestImage();
    lab = await createNetnsLab({ taps: 2 });
    tftp = await prepareTftpRoot();
    bootBase = `http://${lab.serverIp}:${HTTP_PORT}`;
    kiln = await startE2eKiln({
      netns: lab.serverNs,
      args: [
        '--listen', `${lab.apiIp}:${HTTP_PORT}`,
        '--boot-listen', `${lab.serverIp}:${HTTP_PORT}`,
        '--public-url', bootBase,
        '--pxe', 'true',
        '--pxe-server-ip', lab.serverIp,
        '--tftp-root', tftp.dir,
        '--pxe-uefi-x64-file', 'snponly.efi',
        '--pxe-bios-file', 'undionly.kpxe',
      ],
    });
    const seeded = await seedTestImage(kiln, image);
    await createProfile(kiln, 'e2e-pxe', seeded.image);
  }, 180_000);

  afterAll(async () => {
    // Kiln first: its sockets live in the lab's namespace.
    await kiln?.stop();
    await lab?.destroy();
    await tftp?.remove();
  });

  const why = (run: VmRun) => `${describeRun(run)}\n--- kiln log tail ---\n${kiln!.stderr().split('\n').slice(-25).join('\n')}\n--- dhcp server log tail ---\n${lab!.dhcpLog().split('\n').slice(-15).join('\n')}`;

  async function bootAndCheck(name: string, run: VmRun, mac: string) {
    if (!run.serial.includes('KILN-IMAGE-CALLBACK-OK')) throw new Error(`${name}: no callback from the guest\n${why(run)}`);
    expectSerial(run, new RegExp(`kiln\\.callback=${bootBase}/boot/callback\\?mac=${mac}`));
    expect((await getMachine(kiln!, mac)).state, why(run)).toBe('booted');
    return machineEvents(kiln!, mac);
  }

  describe.concurrent('boots through Kiln\'s proxyDHCP', () => {
    it('uefi: OVMF native PXE (no iPXE ROM) → TFTP snponly.efi → iPXE → HTTP script → kernel → callback', async () => {
      const mac = randomMac();
      await addMachine(kiln!, mac, 'e2e-pxe');
      const run = await bootVm({ name: 'pxe-uefi-native', firmware: 'uefi', mac, ipxeRom: false, net: { kind: 'tap', netns: lab!.lanNs, tap: lab!.taps[0]! } });
      const events = await bootAndCheck('uefi native PXE', run, mac);
      const dhcp = events.filter((e) => e.kind === 'dhcp').map((e) => e.detail);
      // First the firmware's PXE client, sent to TFTP; then the iPXE it loaded, sent to HTTP.
      expect(dhcp, why(run)).toEqual(expect.arrayContaining([
        expect.objectContaining({ ipxe: false, arch: 7, bootFile: 'snponly.efi' }),
        expect.objectContaining({ ipxe: true, bootFile: `${bootBase}/boot.ipxe` }),
      ]));
      const kinds = events.map((e) => e.kind);
      expect(kinds.indexOf('dhcp'), why(run)).toBeLessThan(kinds.indexOf('script'));
      expect(kinds, why(run)).toContain('callback');
      process.stderr.write(`  e2e ${run.name}: booted and called back in ${(run.durationMs / 1000).toFixed(1)} s\n`);
    }, 240_000);

    it('bios: SeaBIOS + iPXE ROM → proxyDHCP hands iPXE the HTTP script → kernel → callback', async () => {
      const mac = randomMac();
      await addMachine(kiln!, mac, 'e2e-pxe');
      const run = await bootVm({ name: 'pxe-bios-ipxe', firmware: 'bios', mac, net: { kind: 'tap', netns: lab!.lanNs, tap: lab!.taps[1]! } });
      const events = await bootAndCheck('bios iPXE ROM', run, mac);
      const dhcp = events.filter((e) => e.kind === 'dhcp').map((e) => e.detail);
      expect(dhcp, why(run)).toEqual(expect.arrayContaining([expect.objectContaining({ ipxe: true, arch: 0, bootFile: `${bootBase}/boot.ipxe` })]));
      expect(dhcp.some((d) => d.bootFile === 'undionly.kpxe'), why(run)).toBe(false);
      expect(events.map((e) => e.kind), why(run)).toContain('callback');
      process.stderr.write(`  e2e ${run.name}: booted and called back in ${(run.durationMs / 1000).toFixed(1)} s\n`);
    }, 240_000);
  });
});
