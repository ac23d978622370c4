import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KilnError } from '../../core/kiln-error.js';
import { bzImageRelease, findBootFiles } from './boot-files.js';
import { NETBOOT_INIT, orderModules } from './netboot-initrd.js';
import { resolveInRoot } from './root-path.js';

/** The start of an x86 bzImage: "HdrS" at 0x202 and the release string the header points at. */
function bzImage(release: string): Buffer {
  const b = Buffer.alloc(0x1000);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x800 - 0x200, 0x20e);
  b.write(`${release} (debian-kernel@lists.debian.org) #1 SMP`, 0x800, 'latin1');
  return b;
}

let root: string;
beforeEach(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'kiln-root-')));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(path: string, data: Buffer | string = ''): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), data);
}

describe('resolveInRoot', () => {
  it('follows links as the image sees them: absolute targets start at the root, `..` stops there', async () => {
    await put('usr/lib/modules/6.1/modules.dep');
    await symlink('usr/lib', join(root, 'lib'));
    await symlink('/usr/lib/modules', join(root, 'mods'));
    await symlink('../../../../../etc', join(root, 'up'));
    expect(await resolveInRoot(root, '/lib/modules/6.1/modules.dep')).toBe(join(root, 'usr/lib/modules/6.1/modules.dep'));
    expect(await resolveInRoot(root, 'mods/6.1')).toBe(join(root, 'usr/lib/modules/6.1'));
    expect(await resolveInRoot(root, 'up/passwd')).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, 'mods', false)).toBe(join(root, 'mods'));
    expect(await resolveInRoot(root, 'no/such/../path')).toBe(join(root, 'no/path'));
  });

  it('gives up on link loops', async () => {
    await symlink('/a', join(root, 'a'));
    await expect(resolveInRoot(root, 'a/x')).rejects.toThrow(/too many levels/);
  });
});

describe('findBootFiles', () => {
  it('finds a Debian kernel with its modules (lib -> usr/lib) and its initrd', async () => {
    await put('boot/vmlinuz-6.1.0-50-amd64', bzImage('6.1.0-50-amd64'));
    await put('boot/vmlinuz-5.10.0-1-amd64', bzImage('5.10.0-1-amd64'));
    await put('boot/initrd.img-6.1.0-50-amd64', 'initrd');
    await put('usr/lib/modules/6.1.0-50-amd64/modules.dep');
    await put('usr/lib/modules/5.10.0-1-amd64/modules.dep');
    await symlink('usr/lib', join(root, 'lib'));
    expect(await findBootFiles(root, 'x86_64')).toEqual({
      kernel: join(root, 'boot/vmlinuz-6.1.0-50-amd64'), release: '6.1.0-50-amd64', modulesDir: join(root, 'usr/lib/modules/6.1.0-50-amd64'), initrd: join(root, 'boot/initrd.img-6.1.0-50-amd64'),
    });
  });

  it('finds a kernel in /usr/lib/modules/<release>/vmlinuz (Fedora, Arch) and a bare /boot/vmlinuz, its release from the header', async () => {
    await put('usr/lib/modules/6.8.5-301.fc40.x86_64/vmlinuz', bzImage('6.8.5-301.fc40.x86_64'));
    expect(await findBootFiles(root, 'x86_64')).toMatchObject({ release: '6.8.5-301.fc40.x86_64', initrd: null });
    await rm(join(root, 'usr'), { recursive: true });
    await put('boot/vmlinuz', bzImage('6.6.1-custom'));
    expect(await findBootFiles(root, 'x86_64')).toMatchObject({ kernel: join(root, 'boot/vmlinuz'), release: '6.6.1-custom', modulesDir: null });
    expect(await bzImageRelease(join(root, 'boot/vmlinuz'))).toBe('6.6.1-custom');
  });

  it('never picks up a file of the build host through a link, and wants a real kernel', async () => {
    // /boot/vmlinuz-x -> /etc/hostname would be the host's file if followed naively.
    await put('usr/lib/modules/9.9/modules.dep');
    await mkdir(join(root, 'boot'));
    await symlink('/etc/hostname', join(root, 'boot/vmlinuz-9.9'));
    await put('boot/vmlinuz', 'not a kernel');
    const err = await findBootFiles(root, 'x86_64').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('KILN_BUILD_NO_KERNEL');
  });
});

describe('the kiln-live initrd', () => {
  it('orders modules after their dependencies and reports the ones the image lacks', () => {
    const dep = [
      'kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko',
      'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko',
      'kernel/net/core/failover.ko:',
      'kernel/fs/squashfs/squashfs.ko.xz:',
      'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:',
    ].join('\n');
    expect(orderModules(dep, ['virtio_net', 'squashfs', 'overlay', 'net-failover'])).toEqual({
      files: ['kernel/net/core/failover.ko', 'kernel/drivers/net/net_failover.ko', 'kernel/drivers/net/virtio_net.ko', 'kernel/fs/squashfs/squashfs.ko.xz'],
      absent: ['overlay'],
    });
  });

  it('has an /init the shell accepts', async () => {
    const file = join(root, 'init');
    await writeFile(file, NETBOOT_INIT);
    await promisify(execFile)('sh', ['-n', file]);
  });
});
