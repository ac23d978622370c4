// Real UDP on loopback: a dgram client plays the PXE ROM; "broadcast" replies are pointed at it.
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PxeLog } from '../log-limiter.js';
import { DhcpMessageType, decodeDhcp, encodeDhcp, type DhcpPacket } from './dhcp-codec.js';
import { replyTarget, startProxyDhcp, type ProxyDhcpServer, type PxeClientEvent } from './proxy-dhcp-server.js';

interface Line { level: 'info' | 'warn' | 'debug'; obj: Record<string, unknown>; msg: string }

function captureLog(): PxeLog & { lines: Line[] } {
  const lines: Line[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    debug: (obj, msg) => lines.push({ level: 'debug', obj, msg }),
  };
}

function packet(opts: { xid: number; type: number; vendorClass?: string; arch?: number; ciaddr?: string; userClass?: string }): Buffer {
  const options = new Map<number, Buffer>([[53, Buffer.from([opts.type])]]);
  if (opts.vendorClass !== undefined) options.set(60, Buffer.from(opts.vendorClass));
  if (opts.arch !== undefined) options.set(93, Buffer.from([0, opts.arch]));
  if (opts.userClass !== undefined) options.set(77, Buffer.from(opts.userClass));
  const p: DhcpPacket = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid: opts.xid, secs: 0, flags: 0x8000,
    ciaddr: opts.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from('0a0b0c0d0e0f', 'hex'), Buffer.alloc(10)]),
    sname: '', file: '', options,
  };
  return encodeDhcp(p);
}

/** Replies in arrival order; waits (generously) for the next one. */
class Inbox {
  private readonly queue: Buffer[] = [];
  private waiter: ((b: Buffer) => void) | null = null;
  constructor(socket: Socket) {
    socket.on('message', (msg) => {
      if (this.waiter !== null) {
        const w = this.waiter;
        this.waiter = null;
        w(msg);
      } else this.queue.push(msg);
    });
  }
  next(): Promise<DhcpPacket> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(decodeDhcp(queued));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within 20 s')), 20_000);
      this.waiter = (b) => {
        clearTimeout(t);
        resolve(decodeDhcp(b));
      };
    });
  }
}

async function bound(): Promise<Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

const send = (s: Socket, buf: Buffer, port: number): Promise<void> =>
  new Promise((resolve, reject) => s.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));

describe('startProxyDhcp over loopback UDP', () => {
  let client: Socket;
  let inbox: Inbox;
  let server: ProxyDhcpServer;
  let log: ReturnType<typeof captureLog>;
  let events: PxeClientEvent[];

  beforeEach(async () => {
    client = await bound();
    inbox = new Inbox(client);
    log = captureLog();
    events = [];
    server = await startProxyDhcp({
      address: '127.0.0.1',
      ports: { dhcp: 0, pxe: 0 },
      serverIp: '127.0.0.1',
      broadcastAddress: '127.0.0.1',
      clientPort: client.address().port,
      httpBase: 'http://127.0.0.1:8080',
      bootFiles: { bios: 'undionly.kpxe', uefiX64: 'snponly.efi', uefiArm64: null, httpEfiX64: 'ipxe.efi', httpEfiArm64: null },
      onClient: (e) => events.push(e),
      log,
    });
  });

  afterEach(async () => {
    await server.close();
    await new Promise<void>((resolve) => client.close(() => resolve()));
  });

  it('answers a PXE DISCOVER on the DHCP port with a broadcast proxy OFFER', async () => {
    await send(client, packet({ xid: 1, type: DhcpMessageType.discover, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', arch: 7 }), server.ports.dhcp);
    const offer = await inbox.next();
    expect(offer).toMatchObject({ op: 2, xid: 1, yiaddr: '0.0.0.0', siaddr: '127.0.0.1', file: 'snponly.efi' });
    expect(offer.options.get(53)).toEqual(Buffer.from([DhcpMessageType.offer]));
    expect(events).toEqual([expect.objectContaining({ mac: '0a:0b:0c:0d:0e:0f', arch: 7, via: 'dhcp', bootFile: 'snponly.efi', isIpxe: false })]);
  });

  it('answers a REQUEST on the PXE port with an ACK sent back to the sender', async () => {
    await send(client, packet({ xid: 2, type: DhcpMessageType.request, vendorClass: 'PXEClient', arch: 0, ciaddr: '127.0.0.1' }), server.ports.pxe);
    const ack = await inbox.next();
    expect(ack.xid).toBe(2);
    expect(ack.options.get(53)).toEqual(Buffer.from([DhcpMessageType.ack]));
    expect(ack.file).toBe('undionly.kpxe');
    expect(events[0]?.via).toBe('pxe');
  });

  it('sends iPXE to the HTTP script', async () => {
    await send(client, packet({ xid: 3, type: DhcpMessageType.discover, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, userClass: 'iPXE' }), server.ports.dhcp);
    const offer = await inbox.next();
    expect(offer.options.get(67)?.toString()).toBe('http://127.0.0.1:8080/boot.ipxe');
  });

  it('stays silent for non-PXE clients and for REQUESTs on the DHCP port', async () => {
    await send(client, packet({ xid: 10, type: DhcpMessageType.discover, vendorClass: 'MSFT 5.0' }), server.ports.dhcp);
    await send(client, packet({ xid: 11, type: DhcpMessageType.discover }), server.ports.dhcp);
    await send(client, packet({ xid: 12, type: DhcpMessageType.request, vendorClass: 'PXEClient' }), server.ports.dhcp);
    await send(client, packet({ xid: 13, type: DhcpMessageType.discover, vendorClass: 'PXEClient' }), server.ports.dhcp);
    // Loopback keeps order: the first reply to arrive is for the only request that deserved one.
    expect((await inbox.next()).xid).toBe(13);
    expect(events.map((e) => e.mac)).toHaveLength(1);
  });

  it('survives a flood of malformed packets and logs only a few lines about them', async () => {
    const junk = [Buffer.alloc(0), Buffer.alloc(10, 0xff), Buffer.alloc(240), Buffer.concat([packet({ xid: 1, type: 1 }).subarray(0, 240), Buffer.from([60, 200, 1])])];
    for (let i = 0; i < 200; i++) await send(client, junk[i % junk.length]!, i % 2 === 0 ? server.ports.dhcp : server.ports.pxe);
    await send(client, packet({ xid: 99, type: DhcpMessageType.discover, vendorClass: 'PXEClient' }), server.ports.dhcp);
    expect((await inbox.next()).xid).toBe(99);
    const warnings = log.lines.filter((l) => l.msg.includes('malformed'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.length).toBeLessThanOrEqual(10);
  });

  it('keeps answering when the onClient callback throws', async () => {
    await server.close();
    server = await startProxyDhcp({
      address: '127.0.0.1', ports: { dhcp: 0, pxe: 0 }, serverIp: '127.0.0.1', broadcastAddress: '127.0.0.1', clientPort: client.address().port,
      httpBase: 'http://127.0.0.1:8080',
      bootFiles: { bios: 'undionly.kpxe', uefiX64: 'snponly.efi', uefiArm64: null, httpEfiX64: 'ipxe.efi', httpEfiArm64: null },
      onClient: () => { throw new Error('recorder down'); },
      log,
    });
    for (const xid of [1, 2]) {
      await send(client, packet({ xid, type: DhcpMessageType.discover, vendorClass: 'PXEClient' }), server.ports.dhcp);
      expect((await inbox.next()).xid).toBe(xid);
    }
    expect(log.lines.some((l) => l.msg.includes('onClient'))).toBe(true);
  });

  it('frees its ports on close', async () => {
    const { dhcp, pxe } = server.ports;
    await server.close();
    const again = await startProxyDhcp({
      address: '127.0.0.1', ports: { dhcp, pxe }, serverIp: '127.0.0.1', httpBase: 'http://127.0.0.1:8080',
      bootFiles: { bios: 'undionly.kpxe', uefiX64: 'snponly.efi', uefiArm64: null, httpEfiX64: 'ipxe.efi', httpEfiArm64: null }, log,
    });
    expect(again.ports).toEqual({ dhcp, pxe });
    server = again;
  });

  it('refuses to start with a server address that cannot go on the wire', async () => {
    await expect(startProxyDhcp({
      ports: { dhcp: 0, pxe: 0 }, serverIp: 'kiln.local', httpBase: 'http://kiln.local',
      bootFiles: { bios: 'a', uefiX64: 'b', uefiArm64: null, httpEfiX64: 'c', httpEfiArm64: null }, log,
    })).rejects.toThrow(/IPv4/);
  });
});

describe('replyTarget', () => {
  const opts = { broadcastAddress: '255.255.255.255', clientPort: 68 };
  const req = (ciaddr: string, giaddr: string): DhcpPacket => ({ ...decodeDhcp(packet({ xid: 1, type: 1 })), ciaddr, giaddr });
  const source = { address: '10.0.0.50', port: 68 };

  it('broadcasts to port 68 when the client has no address', () => {
    expect(replyTarget(req('0.0.0.0', '0.0.0.0'), 'dhcp', source, opts)).toEqual({ address: '255.255.255.255', port: 68 });
  });
  it('unicasts to ciaddr when the client has one', () => {
    expect(replyTarget(req('10.0.0.7', '0.0.0.0'), 'dhcp', source, opts)).toEqual({ address: '10.0.0.7', port: 68 });
  });
  it('answers a relayed request through the relay', () => {
    expect(replyTarget(req('0.0.0.0', '10.1.0.1'), 'dhcp', source, opts)).toEqual({ address: '10.1.0.1', port: 67 });
  });
  it('answers 4011 to the sender', () => {
    expect(replyTarget(req('10.0.0.7', '0.0.0.0'), 'pxe', { address: '10.0.0.7', port: 4011 }, opts)).toEqual({ address: '10.0.0.7', port: 4011 });
  });
});
