import { describe, expect, it } from 'vitest';
import { renderNcoreMenu } from './ncore-menu.js';

const urls = (name: string) => ({
  https: `https://objects.example/kiln/sha256/${name}?X-Amz-Expires=900&X-Amz-Signature=abc`,
  http: `http://objects.example/kiln/sha256/${name}?X-Amz-Expires=900&X-Amz-Signature=abc`,
});

describe('ncore menu (golden)', () => {
  it('keeps the original structure: menu, per-image HTTPS then HTTP, retry and reboot', async () => {
    const script = renderNcoreMenu([
      { name: 'ncore-develop-ci-test.20230320-1916', cmdline: 'root=UUID=cb2e0849 ro console=tty1 console=ttyS0', kernel: urls('vmlinuz'), initrd: urls('initrd.img'), rootfs: urls('rootfs') },
    ]);
    await expect(script).toMatchFileSnapshot('golden/menu.ipxe');
    expect(script.indexOf('from https')).toBeLessThan(script.indexOf('from http\n'));
    expect(script).toContain('boot || goto retry');
  });

  it('leaves out initrd and root= when the version has none, and escapes names', () => {
    const script = renderNcoreMenu([{ name: 'v1 ${evil}', cmdline: '', kernel: urls('k'), initrd: null, rootfs: null }]);
    expect(script).not.toContain('initrd');
    expect(script).not.toContain('root=');
    expect(script).not.toContain('${evil}');
    expect(script).toContain(':v1%20%24%7Bevil%7D');
  });

  it('with no image the menu still offers the tools and defaults to reboot', () => {
    const script = renderNcoreMenu([]);
    expect(script).toContain('set menu-default reboot');
    expect(script).not.toContain('# image boot');
  });
});
