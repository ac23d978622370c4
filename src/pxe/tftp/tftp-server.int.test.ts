// Real UDP on loopback: an in-test TFTP client (RFC 7440 receiver that can drop its own ACKs), and the
// real clients Debian ships (tftp-hpa, busybox, curl) where installed.
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PxeLog } from '../log-limiter.js';
import { decodeTftp, encodeTftp, type TftpOptions, type TftpPacket } from './tftp-codec.js';
import { startTftpServer, type TftpServer, type TftpTransferEvent } from './tftp-server.js';

const silent: PxeLog = { info: () => undefined, warn: () => undefined, debug: () => undefined };

interface GetOptions {
  options?: Record<string, string>;
  /** Absolute block numbers whose first ACK this client "loses". */
  dropAcks?: Set<number>;
  mode?: string;
}

type GetResult = { ok: true; data: Buffer; oack: TftpOptions | null; tid: number } | { ok: false; code: number; message: string };

async function openSocket(): Promise<Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

const closeSocket = (s: Socket): Promise<void> => new Promise((resolve) => s.close(() => resolve()));

/** Resolves once the packet is out, so closing the socket right after cannot swallow it. */
const sendTo = (s: Socket, buf: Buffer, port: number): Promise<void> =>
  new Promise((resolve, reject) => s.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));

/** A minimal read client: lock-step or windowed, re-ACKs the last in-order block on gaps and duplicates. */
async function tftpGet(port: number, filename: string, opts: GetOptions = {}): Promise<GetResult> {
  const socket = await openSocket();
  const requested = new Map(Object.entries(opts.options ?? {}));
  const rrq = encodeTftp({ op: 'rrq', filename, mode: opts.mode ?? 'octet', options: requested });
  const dropped = new Set<number>();
  try {
    return await new Promise<GetResult>((resolve, reject) => {
      let tid: number | null = null;
      let blksize = 512;
      let windowsize = 1;
      let oack: TftpOptions | null = null;
      let have = 0; // highest in-order block received
      let sinceAck = 0;
      const parts: Buffer[] = [];
      let lastSent = rrq;
      let idle = 0;
      const send = (buf: Buffer): void => {
        lastSent = buf;
        socket.send(buf, tid ?? port, '127.0.0.1');
      };
      const ack = (block: number): void => {
        sinceAck = 0;
        const pkt = encodeTftp({ op: 'ack', block: block & 0xffff });
        if (opts.dropAcks?.has(block) === true && !dropped.has(block)) {
          dropped.add(block);
          lastSent = pkt;
          return;
        }
        send(pkt);
      };
      // The client's own retransmission, well above the server's, and a generous overall give-up.
      const timer = setInterval(() => {
        if (++idle > 30) {
          clearInterval(timer);
          reject(new Error(`client gave up on ${filename} at block ${have}`));
          return;
        }
        socket.send(lastSent, tid ?? port, '127.0.0.1');
      }, 1000);
      const finish = (r: GetResult): void => {
        clearInterval(timer);
        resolve(r);
      };
      send(rrq);
      socket.on('message', (msg, rinfo) => {
        idle = 0;
        if (tid === null) tid = rinfo.port;
        else if (rinfo.port !== tid) return;
        let pkt: TftpPacket;
        try {
          pkt = decodeTftp(msg);
        } catch (err) {
          clearInterval(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (pkt.op === 'error') return finish({ ok: false, code: pkt.code, message: pkt.message });
        if (pkt.op === 'oack') {
          if (have > 0) return;
          oack = pkt.options;
          blksize = Number(pkt.options.get('blksize') ?? 512);
          windowsize = Number(pkt.options.get('windowsize') ?? 1);
          ack(0);
          return;
        }
        if (pkt.op !== 'data') return;
        if (pkt.block !== ((have + 1) & 0xffff)) {
          // A gap or a repeat: tell the server where we are.
          ack(have);
          return;
        }
        have++;
        parts.push(Buffer.from(pkt.data));
        if (pkt.data.length < blksize) {
          // The server stops on this ACK, so it must leave before the socket closes (never dropped here).
          const result: GetResult = { ok: true, data: Buffer.concat(parts), oack, tid: rinfo.port };
          socket.send(encodeTftp({ op: 'ack', block: have & 0xffff }), rinfo.port, '127.0.0.1', () => finish(result));
          return;
        }
        if (++sinceAck >= windowsize) ack(have);
      });
    });
  } finally {
    await closeSocket(socket);
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('startTftpServer over loopback UDP', () => {
  let dir: string;
  let root: string;
  let server: TftpServer;
  const files = new Map<string, Buffer>();
  const events: TftpTransferEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kiln-tftp-'));
    root = path.join(dir, 'root');
    await mkdir(path.join(root, 'efi'), { recursive: true });
    files.set('undionly.kpxe', randomBytes(74_000));
    files.set('efi/snponly.efi', randomBytes(174_000));
    files.set('big.bin', randomBytes(3 * 1024 * 1024));
    files.set('exact.bin', randomBytes(1468 * 4));
    files.set('empty.bin', Buffer.alloc(0));
    files.set('wrap.bin', randomBytes(70_000 * 16 + 5));
    for (const [name, data] of files) await writeFile(path.join(root, name), data);
    await writeFile(path.join(dir, 'secret'), 'outside the root');
    await symlink(path.join(dir, 'secret'), path.join(root, 'escape'));
    server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      root,
      resolve: async (p) => (p === 'autoexec.ipxe' ? Buffer.from('#!ipxe\nchain http://kiln/boot.ipxe\n') : null),
      // Short server timeout so dropped ACKs cost little; many retries so a busy machine does not fail a transfer.
      timeoutMs: 300,
      retries: 30,
      onTransfer: (e) => events.push(e),
      log: silent,
    });
  });

  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const expectFile = (r: GetResult, name: string): Extract<GetResult, { ok: true }> => {
    if (!r.ok) throw new Error(`error ${r.code}: ${r.message}`);
    expect(sha(r.data)).toBe(sha(files.get(name) ?? Buffer.alloc(1)));
    return r;
  };

  it('serves a file in plain RFC 1350 lock-step', async () => {
    const r = expectFile(await tftpGet(server.port, 'undionly.kpxe'), 'undionly.kpxe');
    expect(r.oack).toBeNull();
  });

  it('serves an absolute name from the root, and backslash paths', async () => {
    expectFile(await tftpGet(server.port, '/undionly.kpxe'), 'undionly.kpxe');
    expectFile(await tftpGet(server.port, '\\efi\\snponly.efi'), 'efi/snponly.efi');
  });

  it('negotiates blksize, tsize and windowsize as OVMF does', async () => {
    const r = expectFile(await tftpGet(server.port, 'efi/snponly.efi', { options: { blksize: '1468', tsize: '0', windowsize: '4' } }), 'efi/snponly.efi');
    expect(r.oack).toEqual(new Map([['blksize', '1468'], ['tsize', '174000'], ['windowsize', '4']]));
  });

  it('caps a large blksize at the configured maximum', async () => {
    const r = expectFile(await tftpGet(server.port, 'undionly.kpxe', { options: { blksize: '65464' } }), 'undionly.kpxe');
    expect(r.oack?.get('blksize')).toBe('1468');
  });

  it('accepts netascii and serves the bytes unchanged', async () => {
    expectFile(await tftpGet(server.port, 'undionly.kpxe', { mode: 'netascii' }), 'undionly.kpxe');
  });

  it('ends an exact multiple of blksize with an empty block, and serves an empty file', async () => {
    expectFile(await tftpGet(server.port, 'exact.bin', { options: { blksize: '1468' } }), 'exact.bin');
    expectFile(await tftpGet(server.port, 'exact.bin', { options: { blksize: '1468', windowsize: '4' } }), 'exact.bin');
    expectFile(await tftpGet(server.port, 'empty.bin'), 'empty.bin');
  });

  it('gets 3 MB through with a few lost ACKs, lock-step and windowed', async () => {
    expectFile(await tftpGet(server.port, 'big.bin', { options: { blksize: '1468' }, dropAcks: new Set([0, 1, 700, 2000]) }), 'big.bin');
    expectFile(await tftpGet(server.port, 'big.bin', { options: { blksize: '1468', windowsize: '16' }, dropAcks: new Set([16, 512, 1600]) }), 'big.bin');
  });

  it('rolls the block number over past 65535 blocks', async () => {
    expectFile(await tftpGet(server.port, 'wrap.bin', { options: { blksize: '16', windowsize: '32' } }), 'wrap.bin');
  });

  it('runs 20 transfers at once, each from its own port', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        tftpGet(server.port, i % 2 === 0 ? 'efi/snponly.efi' : 'undionly.kpxe', { options: i % 3 === 0 ? {} : { blksize: '1468', windowsize: String(1 + (i % 8)) } }),
      ),
    );
    results.forEach((r, i) => expectFile(r, i % 2 === 0 ? 'efi/snponly.efi' : 'undionly.kpxe'));
    expect(new Set(results.map((r) => (r.ok ? r.tid : 0))).size).toBe(20);
    await vi.waitFor(() => expect(server.activeTransfers()).toBe(0), { timeout: 20_000 });
  });

  it('serves virtual files before the filesystem', async () => {
    const r = await tftpGet(server.port, '/autoexec.ipxe');
    expect(r.ok && r.data.toString()).toBe('#!ipxe\nchain http://kiln/boot.ipxe\n');
  });

  it.each([
    ['../etc/passwd', 2],
    ['/../etc/passwd', 2],
    ['..\\..\\etc\\passwd', 2],
    ['efi/../../secret', 2],
    ['escape', 2],
    ['missing.efi', 1],
    ['efi', 2],
  ])('refuses %s with ERROR %i', async (name, code) => {
    const r = await tftpGet(server.port, name);
    expect(r).toMatchObject({ ok: false, code });
  });

  it('reports each transfer once, however it ended', async () => {
    const before = events.length;
    await tftpGet(server.port, 'undionly.kpxe');
    await tftpGet(server.port, 'missing.efi');
    await tftpGet(server.port, '../x');
    await vi.waitFor(() => expect(events.length - before).toBe(3), { timeout: 20_000 });
    expect(events.slice(before).map((e) => [e.path, e.outcome])).toEqual(
      expect.arrayContaining([['undionly.kpxe', 'done'], ['missing.efi', 'not-found'], ['../x', 'denied']]),
    );
  });

  describe('on the request port', () => {
    let s: Socket;
    const replies: { msg: Buffer; port: number }[] = [];
    beforeAll(async () => {
      s = await openSocket();
      s.on('message', (msg, rinfo) => replies.push({ msg, port: rinfo.port }));
    });
    afterAll(() => closeSocket(s));

    const exchange = async (buf: Buffer): Promise<TftpPacket> => {
      const n = replies.length;
      s.send(buf, server.port, '127.0.0.1');
      await vi.waitFor(() => expect(replies.length).toBeGreaterThan(n), { timeout: 20_000 });
      return decodeTftp(replies[n]!.msg);
    };

    it('refuses writes: read-only', async () => {
      expect(await exchange(encodeTftp({ op: 'wrq', filename: 'x', mode: 'octet', options: new Map() }))).toMatchObject({ op: 'error', code: 2 });
    });

    it('answers unknown opcodes, stray DATA/ACK and malformed requests with ERROR 4', async () => {
      expect(await exchange(Buffer.from([0, 9, 1, 2]))).toMatchObject({ op: 'error', code: 4 });
      expect(await exchange(encodeTftp({ op: 'ack', block: 1 }))).toMatchObject({ op: 'error', code: 4 });
      expect(await exchange(Buffer.from([0, 1, 0x66]))).toMatchObject({ op: 'error', code: 4 });
      expect(await exchange(encodeTftp({ op: 'rrq', filename: 'undionly.kpxe', mode: 'mail', options: new Map() }))).toMatchObject({ op: 'error', code: 4 });
    });
  });

  it('tells a stranger it has the wrong TID and carries on with the client', async () => {
    const client = await openSocket();
    const stranger = await openSocket();
    const fromServer: { pkt: TftpPacket; port: number }[] = [];
    const toStranger: TftpPacket[] = [];
    client.on('message', (m, r) => fromServer.push({ pkt: decodeTftp(m), port: r.port }));
    stranger.on('message', (m) => toStranger.push(decodeTftp(m)));
    try {
      client.send(encodeTftp({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: new Map() }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(fromServer.length).toBeGreaterThan(0), { timeout: 20_000 });
      const tid = fromServer[0]!.port;
      expect(fromServer[0]!.pkt).toMatchObject({ op: 'data', block: 1 });
      stranger.send(encodeTftp({ op: 'ack', block: 1 }), tid, '127.0.0.1');
      await vi.waitFor(() => expect(toStranger).toEqual([expect.objectContaining({ op: 'error', code: 5 })]), { timeout: 20_000 });
      client.send(encodeTftp({ op: 'ack', block: 1 }), tid, '127.0.0.1');
      await vi.waitFor(() => expect(fromServer.some((f) => f.pkt.op === 'data' && f.pkt.block === 2)).toBe(true), { timeout: 20_000 });
      await sendTo(client, encodeTftp({ op: 'error', code: 0, message: 'done here' }), tid);
    } finally {
      await closeSocket(client);
      await closeSocket(stranger);
    }
    await vi.waitFor(() => expect(server.activeTransfers()).toBe(0), { timeout: 20_000 });
  });

  it('treats a repeated RRQ from the same port as one transfer, a different one as a restart, and ERROR as the end', async () => {
    const client = await openSocket();
    const other = await openSocket();
    const got: { pkt: TftpPacket; port: number }[] = [];
    const otherGot: TftpPacket[] = [];
    client.on('message', (m, r) => got.push({ pkt: decodeTftp(m), port: r.port }));
    other.on('message', (m) => otherGot.push(decodeTftp(m)));
    const rrq = encodeTftp({ op: 'rrq', filename: 'efi/snponly.efi', mode: 'octet', options: new Map([['tsize', '0']]) });
    try {
      const before = server.activeTransfers();
      client.send(rrq, server.port, '127.0.0.1');
      await vi.waitFor(() => expect(got.length).toBe(1), { timeout: 20_000 });
      expect(got[0]!.pkt).toEqual({ op: 'oack', options: new Map([['tsize', '174000']]) });
      client.send(rrq, server.port, '127.0.0.1');
      // The request socket handles packets in order: once the WRQ after it is answered, the repeat was seen.
      other.send(encodeTftp({ op: 'wrq', filename: 'x', mode: 'octet', options: new Map() }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(otherGot.length).toBe(1), { timeout: 20_000 });
      expect(server.activeTransfers()).toBe(before + 1);
      // What OVMF does after its tsize probe, minus the ERROR: a new RRQ from the same port replaces the probe.
      client.send(encodeTftp({ op: 'rrq', filename: 'efi/snponly.efi', mode: 'octet', options: new Map([['blksize', '1468'], ['windowsize', '4']]) }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(got.length).toBeGreaterThan(1), { timeout: 20_000 });
      expect(got[1]!.pkt).toEqual({ op: 'oack', options: new Map([['blksize', '1468'], ['windowsize', '4']]) });
      expect(got[1]!.port).not.toBe(got[0]!.port);
      expect(server.activeTransfers()).toBe(before + 1);
      await sendTo(client, encodeTftp({ op: 'error', code: 8, message: 'User aborted the transfer' }), got[1]!.port);
      await vi.waitFor(() => expect(server.activeTransfers()).toBe(before), { timeout: 20_000 });
    } finally {
      await closeSocket(client);
      await closeSocket(other);
    }
  });
});

describe('startTftpServer limits and shutdown', () => {
  it('serves only virtual files without a root', async () => {
    const server = await startTftpServer({ address: '127.0.0.1', port: 0, root: null, resolve: async (p) => (p === 'a' ? Buffer.from('A') : null), log: silent });
    try {
      expect(await tftpGet(server.port, 'a')).toMatchObject({ ok: true, data: Buffer.from('A') });
      expect(await tftpGet(server.port, 'b')).toMatchObject({ ok: false, code: 1 });
    } finally {
      await server.close();
    }
  });

  it('abandons a transfer whose client went away, after the retries', async () => {
    const events: TftpTransferEvent[] = [];
    const server = await startTftpServer({ address: '127.0.0.1', port: 0, root: null, resolve: async () => Buffer.alloc(2000), timeoutMs: 50, retries: 2, onTransfer: (e) => events.push(e), log: silent });
    const client = await openSocket();
    const got: TftpPacket[] = [];
    client.on('message', (m) => got.push(decodeTftp(m)));
    try {
      client.send(encodeTftp({ op: 'rrq', filename: 'x', mode: 'octet', options: new Map() }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(events).toEqual([expect.objectContaining({ outcome: 'failed' })]), { timeout: 30_000 });
      expect(server.activeTransfers()).toBe(0);
      // The first DATA 1 and two retransmissions, then an ERROR to say it is over.
      await vi.waitFor(() => expect(got.map((p) => p.op)).toEqual(['data', 'data', 'data', 'error']), { timeout: 20_000 });
    } finally {
      await closeSocket(client);
      await server.close();
    }
  });

  it('closes with transfers in flight', async () => {
    const server = await startTftpServer({ address: '127.0.0.1', port: 0, root: null, resolve: async () => Buffer.alloc(100_000), log: silent });
    const client = await openSocket();
    const got: TftpPacket[] = [];
    client.on('message', (m) => got.push(decodeTftp(m)));
    try {
      client.send(encodeTftp({ op: 'rrq', filename: 'x', mode: 'octet', options: new Map() }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(got.length).toBeGreaterThan(0), { timeout: 20_000 });
      expect(server.activeTransfers()).toBe(1);
      await server.close();
      expect(server.activeTransfers()).toBe(0);
    } finally {
      await closeSocket(client);
    }
  });

  it('refuses transfers over the limit', async () => {
    const server = await startTftpServer({ address: '127.0.0.1', port: 0, root: null, resolve: async () => Buffer.alloc(100_000), maxTransfers: 1, log: silent });
    const first = await openSocket();
    const got: TftpPacket[] = [];
    first.on('message', (m) => got.push(decodeTftp(m)));
    try {
      first.send(encodeTftp({ op: 'rrq', filename: 'x', mode: 'octet', options: new Map() }), server.port, '127.0.0.1');
      await vi.waitFor(() => expect(got.length).toBeGreaterThan(0), { timeout: 20_000 });
      expect(await tftpGet(server.port, 'y')).toMatchObject({ ok: false, code: 0 });
    } finally {
      await closeSocket(first);
      await server.close();
    }
  });

  it('rejects a maxBlksize outside RFC 2348', async () => {
    await expect(startTftpServer({ port: 0, root: null, maxBlksize: 70_000, log: silent })).rejects.toThrow(RangeError);
  });
});

// ---- Real clients. Missing ones skip locally; with CI set they fail, so CI cannot go green without them.

const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

function probe(cmd: string, args: string[], expect: RegExp): boolean {
  try {
    return expect.test(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch (err) {
    // Some clients print their version and exit non-zero; a missing binary has neither output.
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    return expect.test(`${stdout ?? ''}${stderr ?? ''}`);
  }
}

const clients = {
  tftpHpa: { present: probe('tftp', ['-V'], /tftp-hpa/), pkg: 'tftp-hpa' },
  busybox: { present: probe('busybox', ['--list'], /^tftp$/m), pkg: 'busybox-static (or busybox)' },
  curl: { present: probe('curl', ['-V'], /\btftp\b/), pkg: 'curl' },
};
for (const [name, c] of Object.entries(clients)) {
  if (!c.present) console.warn(`TFTP interop with ${name} ${inCi ? 'FAILS in CI' : 'is skipped'}: install the Debian package ${c.pkg}`);
}

function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe('interoperability with real TFTP clients', () => {
  let dir: string;
  let server: TftpServer;
  const small = randomBytes(74_000);
  // Over 65535 blocks of 512 bytes, so a lock-step client crosses the block-number wrap.
  const wrap = randomBytes(65_536 * 512 + 1000);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kiln-tftp-interop-'));
    await mkdir(path.join(dir, 'root'));
    await writeFile(path.join(dir, 'root', 'undionly.kpxe'), small);
    await writeFile(path.join(dir, 'root', 'wrap.bin'), wrap);
    await writeFile(path.join(dir, 'secret'), 'outside');
    server = await startTftpServer({ address: '127.0.0.1', port: 0, root: path.join(dir, 'root'), retries: 30, log: silent });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const fetched = async (name: string): Promise<string> => sha(await readFile(path.join(dir, name)));

  describe.skipIf(!clients.tftpHpa.present && !inCi)('tftp-hpa', () => {
    it('gets a file in binary mode, across the block-number wrap', { timeout: 240_000 }, async () => {
      expect(clients.tftpHpa.present, 'install the Debian package tftp-hpa').toBe(true);
      for (const [remote, local, data] of [['/undionly.kpxe', 'hpa-small', small], ['wrap.bin', 'hpa-wrap', wrap]] as const) {
        const r = await run('tftp', ['-4', '127.0.0.1', String(server.port), '-m', 'binary', '-c', 'get', remote, path.join(dir, local)]);
        expect(r.output).not.toMatch(/error|timed out/i);
        expect(await fetched(local)).toBe(sha(data));
      }
    });

    it('is refused a path out of the root', async () => {
      const r = await run('tftp', ['-4', '127.0.0.1', String(server.port), '-m', 'binary', '-c', 'get', '../secret', path.join(dir, 'hpa-secret')]);
      expect(r.output).toMatch(/Access violation/i);
    });
  });

  describe.skipIf(!clients.busybox.present && !inCi)('busybox tftp', () => {
    it('gets a file with blksize 1468 (tsize too)', async () => {
      expect(clients.busybox.present, 'install the Debian package busybox-static').toBe(true);
      const r = await run('busybox', ['tftp', '-g', '-r', 'undionly.kpxe', '-l', path.join(dir, 'bb-small'), '-b', '1468', '127.0.0.1', String(server.port)]);
      expect(r.code, r.output).toBe(0);
      expect(await fetched('bb-small')).toBe(sha(small));
    });

    it('gets a missing file as an error', async () => {
      const r = await run('busybox', ['tftp', '-g', '-r', 'nope', '-l', path.join(dir, 'bb-nope'), '127.0.0.1', String(server.port)]);
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/not found/i);
    });
  });

  describe.skipIf(!clients.curl.present && !inCi)('curl', () => {
    it('gets a file with blksize 1468 and tsize', { timeout: 240_000 }, async () => {
      expect(clients.curl.present, 'install the Debian package curl').toBe(true);
      const r = await run('curl', ['-sS', '--tftp-blksize', '1468', '-o', path.join(dir, 'curl-wrap'), `tftp://127.0.0.1:${server.port}/wrap.bin`]);
      expect(r.code, r.output).toBe(0);
      expect(await fetched('curl-wrap')).toBe(sha(wrap));
    });
  });
});
