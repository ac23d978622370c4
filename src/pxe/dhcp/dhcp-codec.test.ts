import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DhcpDecodeError,
  DhcpEncodeError,
  DhcpOption,
  decodeDhcp,
  decodeSubOptions,
  encodeDhcp,
  encodeSubOptions,
  type DhcpPacket,
} from './dhcp-codec.js';

/** A BOOTP header with the magic cookie, built by hand so the decoder is not tested against the encoder. */
function rawHeader(): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1; // BOOTREQUEST
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0xdeadbeef, 4);
  b.writeUInt16BE(4, 8);
  b.writeUInt16BE(0x8000, 10);
  Buffer.from([10, 0, 0, 9]).copy(b, 24); // giaddr
  Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]).copy(b, 28);
  b.write('srv', 44, 'latin1');
  b.write('boot.file', 108, 'latin1');
  b.writeUInt32BE(0x63825363, 236);
  return b;
}

const withOptions = (...bytes: number[]): Buffer => Buffer.concat([rawHeader(), Buffer.from(bytes)]);

function decodeError(buf: Buffer): DhcpDecodeError {
  try {
    decodeDhcp(buf);
  } catch (err) {
    if (err instanceof DhcpDecodeError) return err;
    throw err;
  }
  throw new Error('expected a DhcpDecodeError');
}

describe('decodeDhcp', () => {
  it('reads the header fields and options', () => {
    const p = decodeDhcp(withOptions(53, 1, 1, 60, 9, ...Buffer.from('PXEClient'), 93, 2, 0, 7, 255));
    expect(p).toMatchObject({ op: 1, htype: 1, hlen: 6, xid: 0xdeadbeef, secs: 4, flags: 0x8000, ciaddr: '0.0.0.0', giaddr: '10.0.0.9', sname: 'srv', file: 'boot.file' });
    expect(p.chaddr.subarray(0, 6).toString('hex')).toBe('525400123456');
    expect(p.chaddr.length).toBe(16);
    expect([...p.options.keys()]).toEqual([53, 60, 93]);
    expect(p.options.get(60)?.toString()).toBe('PXEClient');
  });

  it('skips pad options and ignores everything after END', () => {
    const p = decodeDhcp(withOptions(0, 0, 53, 1, 3, 0, 255, 61, 200, 1, 2));
    expect([...p.options.keys()]).toEqual([53]);
  });

  it('accepts a missing END option', () => {
    expect(decodeDhcp(withOptions(53, 1, 1)).options.get(53)).toEqual(Buffer.from([1]));
  });

  it('keeps zero-length options', () => {
    const p = decodeDhcp(withOptions(175, 0, 77, 0, 255));
    expect(p.options.get(175)).toEqual(Buffer.alloc(0));
    expect(p.options.get(77)).toEqual(Buffer.alloc(0));
  });

  it('concatenates repeated options (RFC 3396)', () => {
    const p = decodeDhcp(withOptions(43, 2, 1, 2, 53, 1, 1, 43, 1, 3, 255));
    expect(p.options.get(43)).toEqual(Buffer.from([1, 2, 3]));
    expect([...p.options.keys()]).toEqual([43, 53]);
  });

  it('takes a huge option 55 list split over several instances', () => {
    const list = Array.from({ length: 255 }, (_, i) => i + 1).slice(0, 254);
    const p = decodeDhcp(withOptions(55, 254, ...list, 55, 254, ...list, 55, 254, ...list, 255));
    expect(p.options.get(55)?.length).toBe(762);
  });

  it('honours option overload: options in the file and sname fields', () => {
    const b = withOptions(52, 1, 3, 255);
    b.fill(0, 44, 236);
    Buffer.from([60, 9, ...Buffer.from('PXEClient'), 255]).copy(b, 108);
    Buffer.from([77, 4, ...Buffer.from('iPXE'), 255]).copy(b, 44);
    const p = decodeDhcp(b);
    expect(p.options.get(60)?.toString()).toBe('PXEClient');
    expect(p.options.get(77)?.toString()).toBe('iPXE');
    expect(p.file).toBe('');
    expect(p.sname).toBe('');
  });

  it.each([
    ['empty', Buffer.alloc(0), 'truncated-header'],
    ['truncated header', rawHeader().subarray(0, 100), 'truncated-header'],
    ['header without cookie', rawHeader().subarray(0, 236), 'missing-cookie'],
    ['half a cookie', rawHeader().subarray(0, 238), 'missing-cookie'],
    ['wrong cookie', Buffer.concat([rawHeader().subarray(0, 236), Buffer.from([1, 2, 3, 4])]), 'missing-cookie'],
    ['option running past the end', withOptions(53, 1, 1, 60, 20, 65, 66), 'option-overrun'],
    ['option code without a length', withOptions(53, 1, 1, 60), 'option-truncated'],
    ['hlen over 16', (() => { const b = rawHeader(); b[2] = 17; return b; })(), 'bad-hlen'],
    ['overload of two bytes', withOptions(52, 2, 1, 1, 255), 'bad-overload'],
    ['overload value 4', withOptions(52, 1, 4, 255), 'bad-overload'],
    ['overloaded file field running over', (() => { const b = withOptions(52, 1, 1, 255); b[234] = 60; b[235] = 9; return b; })(), 'option-overrun'],
  ])('rejects %s', (_what, buf, reason) => {
    expect(decodeError(buf).reason).toBe(reason);
  });
});

function samplePacket(): DhcpPacket {
  return {
    op: 2, htype: 1, hlen: 6, hops: 0, xid: 0x01020304, secs: 0, flags: 0x8000,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '10.0.0.1', giaddr: '0.0.0.0',
    chaddr: Buffer.concat([Buffer.from('525400123456', 'hex'), Buffer.alloc(10)]),
    sname: '', file: 'undionly.kpxe',
    options: new Map([[53, Buffer.from([2])], [54, Buffer.from([10, 0, 0, 1])], [60, Buffer.from('PXEClient')]]),
  };
}

describe('encodeDhcp', () => {
  it('round-trips and pads to the 300-byte BOOTP minimum', () => {
    const buf = encodeDhcp(samplePacket());
    expect(buf.length).toBe(300);
    expect(buf.readUInt32BE(236)).toBe(0x63825363);
    expect(decodeDhcp(buf)).toEqual(samplePacket());
  });

  it('splits a long option into 255-byte pieces that decode back whole', () => {
    const p = samplePacket();
    p.options.set(DhcpOption.bootfileName, Buffer.alloc(600, 0x61));
    const buf = encodeDhcp(p);
    expect(buf.length).toBeGreaterThan(600);
    expect(decodeDhcp(buf).options.get(67)).toEqual(Buffer.alloc(600, 0x61));
  });

  it.each([
    ['a file name that does not fit', (p: DhcpPacket) => { p.file = 'x'.repeat(128); }],
    ['an sname that does not fit', (p: DhcpPacket) => { p.sname = 'x'.repeat(64); }],
    ['a bad address', (p: DhcpPacket) => { p.siaddr = '10.0.0.256'; }],
    ['a host name for an address', (p: DhcpPacket) => { p.siaddr = 'kiln.local'; }],
    ['option 0', (p: DhcpPacket) => { p.options.set(0, Buffer.from([1])); }],
    ['option 255', (p: DhcpPacket) => { p.options.set(255, Buffer.from([1])); }],
    ['option 52', (p: DhcpPacket) => { p.options.set(52, Buffer.from([1])); }],
  ])('refuses %s', (_what, mutate) => {
    const p = samplePacket();
    mutate(p);
    expect(() => encodeDhcp(p)).toThrow(DhcpEncodeError);
  });
});

describe('PXE sub-options (option 43)', () => {
  it('encodes with an END and decodes back', () => {
    const buf = encodeSubOptions(new Map([[6, Buffer.from([8])]]));
    expect(buf).toEqual(Buffer.from([6, 1, 8, 255]));
    expect(decodeSubOptions(buf)).toEqual(new Map([[6, Buffer.from([8])]]));
  });

  it('reports a sub-option running past the end as a decode error', () => {
    expect(() => decodeSubOptions(Buffer.from([6, 5, 8]))).toThrow(DhcpDecodeError);
  });
});

describe('properties', () => {
  const onlyDecodeErrors = (bytes: Uint8Array): void => {
    try {
      decodeDhcp(Buffer.from(bytes));
    } catch (err) {
      if (!(err instanceof DhcpDecodeError)) throw err;
    }
  };

  it('random bytes either decode or throw DhcpDecodeError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), onlyDecodeErrors), { numRuns: 2000 });
  });

  it('random options after a valid header either decode or throw DhcpDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 3 }), (tail, overload) => {
        const head = rawHeader();
        // Sometimes ask for overload so the file and sname fields are parsed as options too.
        const prefix = overload === 0 ? Buffer.alloc(0) : Buffer.from([52, 1, overload]);
        onlyDecodeErrors(Buffer.concat([head, prefix, tail]));
      }),
      { numRuns: 2000 },
    );
  });

  const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((q) => q.join('.'));
  const latin1 = (max: number): fc.Arbitrary<string> =>
    fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a.filter((b) => b !== 0)).toString('latin1'));
  const packet: fc.Arbitrary<DhcpPacket> = fc.record({
    op: fc.integer({ min: 1, max: 2 }),
    htype: fc.nat(255),
    hlen: fc.nat(16),
    hops: fc.nat(255),
    xid: fc.nat(0xffffffff),
    secs: fc.nat(0xffff),
    flags: fc.nat(0xffff),
    ciaddr: ip,
    yiaddr: ip,
    siaddr: ip,
    giaddr: ip,
    chaddr: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
    sname: latin1(63),
    file: latin1(127),
    options: fc
      .array(fc.tuple(fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52), fc.uint8Array({ maxLength: 700 })), { maxLength: 8 })
      .map((entries) => new Map(entries.map(([c, v]) => [c, Buffer.from(v)]))),
  });

  it('encode then decode gives the packet back', () => {
    fc.assert(fc.property(packet, (p) => {
      expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
    }), { numRuns: 500 });
  });
});
