// `kiln demo`: the README's tour in one command. Builds a tiny image from this host's Debian kernel and
// busybox, registers it in the running Kiln, network-boots a QEMU VM from it with the serial console
// streamed here, and shows the machine booted.
import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import { CliError } from '../api-client.js';
import { contextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printRows } from '../output.js';
import { preparePushFiles, pushFiles } from './push-files.js';

interface MachineRow {
  id: string;
  macs: string[];
  state: string;
  profile: string | null;
  lastSeenAt: string | null;
}

/** QEMU's user network reaches the host's loopback at 10.0.2.2; other addresses are reached as they are. */
export function guestUrl(server: string): string {
  const u = new URL(server);
  if (u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]' || u.hostname === '0.0.0.0') u.hostname = '10.0.2.2';
  return u.href.replace(/\/+$/, '');
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('build a tiny image, register it, and network-boot a QEMU VM from this Kiln (needs QEMU and a Debian kernel)')
    .addOption(new Option('--firmware <kind>', 'VM firmware').choices(['bios', 'uefi']).default('bios'))
    .option('--kvm', 'use KVM acceleration instead of software emulation')
    .option('--timeout <seconds>', 'give up when the VM has not booted by then (software emulation: 20-40 s is normal)', '240')
    .action(async (opts: { firmware: 'bios' | 'uefi'; timeout: string; kvm?: boolean }, command: Command) => {
      const { client } = contextOf(command);
      const say = (s: string) => process.stderr.write(`kiln demo: ${s}\n`);
      const { missingForDemo } = await import('../../demo/demo-prerequisites.js');
      const missing = missingForDemo(opts.firmware);
      if (missing.length > 0) {
        const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
        throw new CliError(`missing: ${missing.map((m) => m.what).join(', ')}\n  install them with: apt-get install --no-install-recommends ${pkgs}`, EXIT.unavailable);
      }
      await client.get('/whoami');

      say('building the demo image (the Debian kernel and a busybox initramfs; cached after the first time)');
      const { buildTestImage } = await import('../../demo/build-boot-image.js');
      const image = await buildTestImage();
      const files = await preparePushFiles([{ path: image.kernel, role: 'kernel' }, { path: image.initrd, role: 'initrd' }]);
      const pushed = await pushFiles(client, files);
      const name = 'kiln-demo';
      if ((await client.request('GET', `/images/${name}`).catch(() => null)) === null) await client.post('/images', { name, description: 'kiln demo: Debian kernel and a busybox initramfs that calls back' });
      const version = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(2).toString('hex')}`;
      await client.post(`/images/${name}/versions`, { version, cmdline: 'console=ttyS0 panic=1', artifacts: pushed.map((p) => ({ name: p.name, role: p.role, sha256: p.sha256 })) });
      await client.post(`/images/${name}/channels/stable/promote`, { version });
      if ((await client.request('GET', `/profiles/${name}`).catch(() => null)) === null) await client.post('/profiles', { name, image: { image: name, channel: 'stable' } });
      const mac = `52:54:00:${randomBytes(3).toString('hex').match(/../g)!.join(':')}`;
      const machine = await client.post<MachineRow>('/machines', { macs: [mac], hostname: 'kiln-demo', labels: { demo: 'true' } });
      await client.put(`/machines/${machine.id}/assignment`, { profile: name });
      say(`registered image ${name} version ${version} and machine ${mac}; starting the VM (${opts.firmware})`);

      const { startDemoVm } = await import('../../demo/run-demo-vm.js');
      const vm = await startDemoVm({ mac, bootUrl: `${guestUrl(client.server)}/boot.ipxe`, firmware: opts.firmware, kvm: opts.kvm === true, onSerial: (c) => process.stdout.write(c) });
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      let state = 'discovered';
      let done = false;
      void vm.exited.then(() => (done = true));
      while (!done && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        state = (await client.get<MachineRow>(`/machines/${machine.id}`)).state;
        if (state === 'booted' || state === 'failed') break;
      }
      vm.stop();
      await vm.exited;
      process.stdout.write('\n');
      const rows = (await client.get<{ items: MachineRow[] }>('/machines', { label: 'demo=true', limit: 20 })).items;
      printRows('table', rows, [
        { header: 'MAC', value: (m) => m.macs[0] },
        { header: 'STATE', value: (m) => m.state },
        { header: 'PROFILE', value: (m) => m.profile },
        { header: 'LAST SEEN', value: (m) => m.lastSeenAt },
      ]);
      if (state !== 'booted') throw new CliError(`the VM did not report booted (state ${state}); its console is above`, EXIT.failure);
      say(`machine ${mac} network-booted from Kiln and called back. See its timeline: kiln machine events ${mac}`);
    });
}
