// ncore-api's iPXE menu (template_https.ipxe), kept in structure: one entry per image, HTTPS then
// HTTP, a retry that reboots, and the tools entries. Values are escaped like every Kiln script.
import { escapeIpxe, escapeIpxeText } from '../../boot/ipxe/escape-ipxe.js';

export interface SchemeUrls {
  http: string;
  https: string;
}

export interface NcoreMenuImage {
  /** ncore's ImageName: a Kiln version name, also the menu label. */
  name: string;
  /** Operator-set kernel arguments (checked for control characters when saved). */
  cmdline: string;
  kernel: SchemeUrls;
  initrd: SchemeUrls | null;
  rootfs: SchemeUrls | null;
}

/** `images[0]` is the default entry. */
export function renderNcoreMenu(images: readonly NcoreMenuImage[]): string {
  const labels = images.map((i) => escapeIpxe(i.name));
  const lines = [
    '#!ipxe',
    '# ncore-api compatible menu served by Kiln',
    `set menu-default ${labels[0] ?? 'reboot'}`,
    'set menu-timeout 2000',
    'isset ${hostname} && set display-name ${hostname} || set display-name ${mac}',
    '',
    ':start',
    'menu Boot Options for ${display-name}',
    'item --gap -------------------- Images --------------------',
    ...labels.map((l) => `item ${l} ${l}`),
    'item --gap -------------------- Tools and Utilities --------------------',
    'item xyz netboot.xyz',
    'item shell iPXE shell',
    'item reboot Reboot',
    'choose --timeout ${menu-timeout} --default ${menu-default} selected || goto cancel',
    'set menu-timeout 0',
    'goto ${selected}',
    '',
    ':cancel',
    'echo You cancelled the menu, dropping you to a shell',
    '',
    ':shell',
    "echo Type 'exit' to get back to the menu",
    'shell',
    'set menu-timeout 0',
    'goto start',
    '',
    ':retry',
    'echo Boot failed, rebooting',
    'sleep 3',
    'reboot',
    '',
    ':reboot',
    'reboot',
    '',
    ':xyz',
    'chain --autofree https://boot.netboot.xyz || goto start',
  ];
  for (const [i, image] of images.entries()) {
    const label = labels[i]!;
    lines.push('', '# image boot', `:${label}`);
    for (const scheme of ['https', 'http'] as const) {
      const args = [image.cmdline.trim(), ...(image.initrd !== null ? ['initrd=initrd.magic'] : []), ...(image.rootfs !== null ? [`root=${image.rootfs[scheme]}`] : [])];
      lines.push(
        `echo Booting ${escapeIpxeText(image.name)} from ${scheme}`,
        `set conn_type ${scheme}`,
        `kernel ${image.kernel[scheme]} ${args.filter((a) => a !== '').join(' ')}`.trimEnd(),
        ...(image.initrd !== null ? [`initrd ${image.initrd[scheme]}`] : []),
        scheme === 'https' ? 'boot || echo HTTPS failed... attempting HTTP...' : 'boot || goto retry',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
