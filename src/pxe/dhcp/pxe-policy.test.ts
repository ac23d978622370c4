import { describe, expect, it } from 'vitest';
import { DhcpMessageType, decodeSubOptions, type DhcpPacket } from './dhcp-codec.js';
import { decidePxeReply, type PxeDecision, type PxePolicyContext } from './pxe-policy.js';

const ctx: PxePolicyContext = {
  serverIp: '10.77.0.1',
  httpBase: 'http://10.77.0.1:8080',
  bootFiles: { bios: 'undionly.kpxe', uefiX64: 'snponly.efi', uefiArm64: 'ipxe-arm64.efi', httpEfiX64: 'ipxe/ipxe.efi', httpEfiArm64: 'ipxe/ipxe-arm64.efi' },
};

const UUID = Buffer.from('00' + '11223344556677889900aabbccddeeff', 'hex');

function request(opts: { type?: number; vendorClass?: string | null; arch?: number | null; userClass?: string; opt175?: boolean; uuid?: boolean; ciaddr?: string } = {}): DhcpPacket {
  const options = new Map<number, Buffer>();
  options.set(53, Buffer.from([opts.type ?? DhcpMessageType.discover]));
  const vc = opts.vendorClass === undefined ? 'PXEClient:Arch:00000:UNDI:002001' : opts.vendorClass;
  if (vc !== null) options.set(60, Buffer.from(vc, 'latin1'));
  const arch = opts.arch === undefined ? 0 : opts.arch;
  if (arch !== null) options.set(93, Buffer.from([arch >> 8, arch & 0xff]));
  if (opts.userClass !== undefined) options.set(77, Buffer.from(opts.userClass, 'latin1'));
  if (opts.opt175 === true) options.set(175, Buffer.from([0xb1, 1, 1]));
  if (opts.uuid === true) options.set(97, UUID);
  return {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x11223344, secs: 3, flags: 0x8000,
    ciaddr: opts.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from('525400ABCDEF', 'hex'), Buffer.alloc(10)]),
    sname: '', file: '', options,
  };
}

function answered(d: PxeDecision): Extract<PxeDecision, { reply: DhcpPacket }> {
  if ('ignore' in d) throw new Error(`ignored: ${d.ignore}`);
  return d;
}

const bootFileOf = (p: DhcpPacket): string => p.options.get(67)?.toString('latin1') ?? p.file;

describe('decidePxeReply: boot file by architecture', () => {
  it.each([
    ['BIOS (0)', 0, 'undionly.kpxe'],
    ['x86-64 UEFI (7)', 7, 'snponly.efi'],
    ['x86-64 UEFI sent as EBC (9)', 9, 'snponly.efi'],
    ['arm64 UEFI (11)', 11, 'ipxe-arm64.efi'],
  ])('PXE %s gets %s over TFTP', (_what, arch, file) => {
    const { reply, client } = answered(decidePxeReply(request({ arch, vendorClass: `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003000` }), ctx));
    expect(reply.file).toBe(file);
    expect(reply.options.has(67)).toBe(false);
    expect(reply.siaddr).toBe('10.77.0.1');
    expect(client.arch).toBe(arch);
  });

  it.each([
    ['x86-64 (16)', 16, 'http://10.77.0.1:8080/ipxe/ipxe.efi'],
    ['arm64 (19)', 19, 'http://10.77.0.1:8080/ipxe/ipxe-arm64.efi'],
  ])('UEFI HTTP boot %s gets the EFI binary URL, as HTTPClient', (_what, arch, url) => {
    const { reply } = answered(decidePxeReply(request({ arch, vendorClass: `HTTPClient:Arch:000${arch}:UNDI:003000` }), ctx));
    expect(reply.file).toBe(url);
    expect(reply.options.get(67)?.toString()).toBe(url);
    expect(reply.options.get(60)?.toString()).toBe('HTTPClient');
    // Option 43 is PXE's; an HTTP boot client has no use for it.
    expect(reply.options.has(43)).toBe(false);
  });

  it('ignores arm64 when no arm64 binary is configured', () => {
    const none = { ...ctx, bootFiles: { ...ctx.bootFiles, uefiArm64: null, httpEfiArm64: null } };
    expect(decidePxeReply(request({ arch: 11 }), none)).toEqual({ ignore: expect.stringContaining('arm64') as unknown });
    expect(decidePxeReply(request({ arch: 19, vendorClass: 'HTTPClient:Arch:00019' }), none)).toEqual({ ignore: expect.stringContaining('arm64') as unknown });
  });

  it.each([6, 10, 15, 18, 0x1234])('ignores PXE arch %i it has nothing for', (arch) => {
    expect('ignore' in decidePxeReply(request({ arch }), ctx)).toBe(true);
  });

  it('ignores an HTTPClient with a PXE architecture', () => {
    expect('ignore' in decidePxeReply(request({ arch: 7, vendorClass: 'HTTPClient' }), ctx)).toBe(true);
  });

  it('reads the architecture from the vendor class when option 93 is missing', () => {
    const { reply, client } = answered(decidePxeReply(request({ arch: null, vendorClass: 'PXEClient:Arch:00007:UNDI:003016' }), ctx));
    expect(client.arch).toBe(7);
    expect(reply.file).toBe('snponly.efi');
  });

  it('treats an old ROM with no architecture at all as BIOS', () => {
    const { reply, client } = answered(decidePxeReply(request({ arch: null, vendorClass: 'PXEClient' }), ctx));
    expect(client.arch).toBeNull();
    expect(reply.file).toBe('undionly.kpxe');
  });
});

describe('decidePxeReply: clients already running iPXE', () => {
  it.each([
    ['user class iPXE', { userClass: 'iPXE' }],
    ['user class as an RFC 3004 list', { userClass: '\x04iPXE' }],
    ['option 175', { opt175: true }],
  ])('%s get the HTTP boot script, not iPXE again', (_what, extra) => {
    for (const arch of [0, 7]) {
      const { reply, client } = answered(decidePxeReply(request({ arch, ...extra }), ctx));
      expect(client.isIpxe).toBe(true);
      expect(bootFileOf(reply)).toBe('http://10.77.0.1:8080/boot.ipxe');
      expect(reply.file).toBe('http://10.77.0.1:8080/boot.ipxe');
    }
  });

  it('does not take another user class for iPXE', () => {
    const { client, reply } = answered(decidePxeReply(request({ userClass: 'gPXE-ish' }), ctx));
    expect(client.isIpxe).toBe(false);
    expect(reply.file).toBe('undionly.kpxe');
  });

  it('puts a URL too long for the header only in option 67', () => {
    const long = { ...ctx, httpBase: `http://kiln.example/${'a'.repeat(120)}` };
    const { reply } = answered(decidePxeReply(request({ userClass: 'iPXE' }), long));
    expect(reply.file).toBe('');
    expect(bootFileOf(reply)).toBe(`${long.httpBase}/boot.ipxe`);
  });
});

describe('decidePxeReply: the proxy answer', () => {
  it('answers a DISCOVER on 67 with a proxy OFFER carrying the PXE options', () => {
    const { reply, client } = answered(decidePxeReply(request({ uuid: true }), ctx, 'dhcp'));
    expect(reply).toMatchObject({ op: 2, xid: 0x11223344, flags: 0x8000, yiaddr: '0.0.0.0', siaddr: '10.77.0.1', file: 'undionly.kpxe' });
    expect(reply.chaddr).toEqual(request().chaddr);
    expect(reply.options.get(53)).toEqual(Buffer.from([DhcpMessageType.offer]));
    expect(reply.options.get(54)).toEqual(Buffer.from([10, 77, 0, 1]));
    expect(reply.options.get(60)?.toString()).toBe('PXEClient');
    expect(reply.options.get(97)).toEqual(UUID);
    expect(decodeSubOptions(reply.options.get(43) ?? Buffer.alloc(0))).toEqual(new Map([[6, Buffer.from([8])]]));
    expect(client).toEqual({ mac: '52:54:00:ab:cd:ef', arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', isIpxe: false, uuid: '11223344-5566-7788-9900-aabbccddeeff' });
  });

  it('answers a REQUEST on 4011 with an ACK', () => {
    const { reply } = answered(decidePxeReply(request({ type: DhcpMessageType.request, arch: 7, ciaddr: '10.77.0.100' }), ctx, 'pxe'));
    expect(reply.options.get(53)).toEqual(Buffer.from([DhcpMessageType.ack]));
    expect(reply.ciaddr).toBe('10.77.0.100');
    expect(reply.yiaddr).toBe('0.0.0.0');
    expect(reply.file).toBe('snponly.efi');
  });

  it('uses a separate TFTP server address for siaddr when given', () => {
    const { reply } = answered(decidePxeReply(request(), { ...ctx, tftpServerIp: '10.77.0.5' }));
    expect(reply.siaddr).toBe('10.77.0.5');
    expect(reply.options.get(54)).toEqual(Buffer.from([10, 77, 0, 1]));
  });

  it('leaves option 97 out when the client sent none, and reports a malformed one as no UUID', () => {
    expect(answered(decidePxeReply(request(), ctx)).reply.options.has(97)).toBe(false);
    const odd = request();
    odd.options.set(97, Buffer.from([1, 2, 3]));
    const { reply, client } = answered(decidePxeReply(odd, ctx));
    expect(client.uuid).toBeNull();
    expect(reply.options.get(97)).toEqual(Buffer.from([1, 2, 3]));
  });
});

describe('decidePxeReply: what it ignores', () => {
  it.each([
    ['a client without a vendor class', request({ vendorClass: null })],
    ['a non-PXE vendor class', request({ vendorClass: 'MSFT 5.0' })],
    ['a vendor class that only contains PXEClient', request({ vendorClass: 'xPXEClient' })],
    ['a BOOTREPLY', { ...request(), op: 2 }],
    ['no message type', (() => { const p = request(); p.options.delete(53); return p; })()],
    ['a non-Ethernet client', { ...request(), htype: 6 }],
  ])('%s', (_what, req) => {
    expect('ignore' in decidePxeReply(req, ctx)).toBe(true);
  });

  it.each([
    ['REQUEST on 67 (the client taking the site DHCP lease)', DhcpMessageType.request, 'dhcp'],
    ['DISCOVER on 4011', DhcpMessageType.discover, 'pxe'],
    ['RELEASE on 67', DhcpMessageType.release, 'dhcp'],
    ['RELEASE on 4011', DhcpMessageType.release, 'pxe'],
    ['INFORM on 67', DhcpMessageType.inform, 'dhcp'],
    ['INFORM on 4011', DhcpMessageType.inform, 'pxe'],
    ['DECLINE on 67', DhcpMessageType.decline, 'dhcp'],
  ] as const)('%s', (_what, type, via) => {
    expect('ignore' in decidePxeReply(request({ type }), ctx, via)).toBe(true);
  });
});
