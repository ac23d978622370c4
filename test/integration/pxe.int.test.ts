// `kiln serve --pxe` end to end on loopback: proxyDHCP answers by architecture and records the
// request in the machine's timeline, TFTP and /boot/files serve the boot binaries from the root.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram, { type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DhcpMessageType, decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/pxe/dhcp/dhcp-codec.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

function request(mac: string, opts: { arch: number; userClass?: string; xid: number }): Buffer {
  const options = new Map<number, Buffer>([
    [53, Buffer.from([DhcpMessageType.request])],
    [60, Buffer.from(`PXEClient:Arch:${String(opts.arch).padStart(5, '0')}:UNDI:003016`)],
    [93, Buffer.from([0, opts.arch])],
    [97, Buffer.concat([Buffer.from([0]), Buffer.from('4c4c454400001000800000000000abcd', 'hex')])],
  ]);
  if (opts.userClass !== undefined) options.set(77, Buffer.from(opts.userClass));
  const p: DhcpPacket = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: opts.xid, secs: 0, flags: 0, ciaddr: '127.0.0.1', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from(mac.replaceAll(':', ''), 'hex'), Buffer.alloc(10)]), sname: '', file: '', options,
  };
  return encodeDhcp(p);
}

async function ask(port: number, packet: Buffer): Promise<DhcpPacket> {
  const s: Socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  try {
    const reply = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no proxyDHCP answer')), 10_000);
      s.once('message', (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
    s.send(packet, port, '127.0.0.1');
    return decodeDhcp(await reply);
  } finally {
    s.close();
  }
}

describe('kiln serve --pxe', () => {
  let k: TestKiln;
  let root: string;
  const efi = randomBytes(300_000);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-tftproot-'));
    await writeFile(join(root, 'snponly.efi'), efi);
    await writeFile(join(root, 'undionly.kpxe'), randomBytes(70_000));
    k = await startTestKiln({
      'pxe.enabled': 'true', 'pxe.serverIp': '127.0.0.1', 'pxe.address': '127.0.0.1', 'pxe.dhcpPort': '0', 'pxe.pxePort': '0', 'pxe.tftpPort': '0', 'pxe.tftpRoot': root,
    });
  });

  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
    await removeDir(root);
  });

  it('answers a UEFI PXE client with snponly.efi over TFTP and an iPXE client with the HTTP script', async () => {
    const ports = k.kiln.pxe!;
    const uefi = await ask(ports.pxe, request('52:54:00:0d:00:01', { arch: 7, xid: 1 }));
    expect(uefi).toMatchObject({ op: 2, xid: 1, siaddr: '127.0.0.1', file: 'snponly.efi' });
    expect(uefi.options.get(60)?.toString()).toBe('PXEClient');
    const ipxe = await ask(ports.pxe, request('52:54:00:0d:00:01', { arch: 7, xid: 2, userClass: 'iPXE' }));
    const bootPort = new URL(k.kiln.bootUrl).port;
    expect(ipxe.options.get(67)?.toString()).toBe(`http://127.0.0.1:${bootPort}/boot.ipxe`);
  });

  it('enrolls the unknown machine and records each request in its timeline', async () => {
    const mac = '52:54:00:0d:00:01';
    let events: { kind: string; detail: Record<string, unknown> }[] = [];
    for (let i = 0; i < 100 && events.filter((e) => e.kind === 'dhcp').length < 2; i++) {
      const res = await k.api(`/machines/${mac}/events`);
      if (res.status === 200) events = (await json<{ items: typeof events }>(res)).items;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(events.filter((e) => e.kind === 'dhcp').map((e) => e.detail)).toEqual([
      expect.objectContaining({ via: 'pxe', arch: 7, ipxe: false, bootFile: 'snponly.efi' }),
      expect.objectContaining({ via: 'pxe', arch: 7, ipxe: true }),
    ]);
    const m = await json<{ state: string; firmware: string; arch: string; uuid: string }>(await k.api(`/machines/${mac}`));
    expect(m).toMatchObject({ state: 'discovered', firmware: 'uefi', arch: 'x86_64', uuid: '4c4c4544-0000-1000-8000-00000000abcd' });
  });

  it('serves the boot binaries over HTTP for UEFI HTTP boot, jailed to the root', async () => {
    const res = await fetch(`${k.kiln.bootUrl}/boot/files/snponly.efi`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(efi)).toBe(true);
    for (const bad of ['..%2Fetc%2Fpasswd', 'missing.efi', '.']) expect((await fetch(`${k.kiln.bootUrl}/boot/files/${bad}`)).status).toBe(404);
  });

  const curl = existsSync('/usr/bin/curl');
  if (!curl) console.warn('TFTP fetch with a real client skipped: install Debian package curl');
  it.skipIf(!curl && process.env.CI === undefined)('serves the same file over TFTP to a real client (curl)', async () => {
    const out = join(root, 'fetched.efi');
    await new Promise<void>((resolve, reject) => {
      execFile('curl', ['-sS', '--tftp-blksize', '1468', '-o', out, `tftp://127.0.0.1:${k.kiln.pxe!.tftp}/snponly.efi`], (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve()));
    });
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(out)).equals(efi)).toBe(true);
  });
});
