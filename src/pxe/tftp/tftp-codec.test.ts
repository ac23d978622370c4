import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TftpDecodeError, decodeTftp, encodeTftp, type TftpPacket } from './tftp-codec.js';

const raw = (...parts: (number[] | string)[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

function decodeError(buf: Buffer): TftpDecodeError {
  try {
    decodeTftp(buf);
  } catch (err) {
    if (err instanceof TftpDecodeError) return err;
    throw err;
  }
  throw new Error('expected a TftpDecodeError');
}

describe('decodeTftp', () => {
  it('reads an RRQ with options, lower-casing names and mode', () => {
    const p = decodeTftp(raw([0, 1], 'undionly.kpxe\0OCTET\0BlkSize\x001468\0tsize\x000\0windowsize\x004\0'));
    expect(p).toEqual({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: new Map([['blksize', '1468'], ['tsize', '0'], ['windowsize', '4']]) });
  });

  it('reads a WRQ', () => {
    expect(decodeTftp(raw([0, 2], 'up.bin\0octet\0'))).toMatchObject({ op: 'wrq', filename: 'up.bin' });
  });

  it('ignores trailing padding and unpaired option names; the first duplicate wins', () => {
    const p = decodeTftp(raw([0, 1], 'f\0octet\0blksize\x00512\0BLKSIZE\x001024\0lonely\0'));
    expect(p).toMatchObject({ options: new Map([['blksize', '512']]) });
    expect(decodeTftp(raw([0, 1], 'f\0octet\0\0\0\0'))).toMatchObject({ options: new Map() });
  });

  it('reads DATA, ACK (padded too), ERROR (with or without NUL) and OACK', () => {
    expect(decodeTftp(raw([0, 3, 0xff, 0xff], 'abc'))).toEqual({ op: 'data', block: 65535, data: Buffer.from('abc') });
    expect(decodeTftp(raw([0, 3, 0, 1]))).toEqual({ op: 'data', block: 1, data: Buffer.alloc(0) });
    expect(decodeTftp(raw([0, 4, 0, 7]))).toEqual({ op: 'ack', block: 7 });
    expect(decodeTftp(raw([0, 4, 0, 7, 0, 0]))).toEqual({ op: 'ack', block: 7 });
    expect(decodeTftp(raw([0, 5, 0, 8], 'User aborted the transfer\0'))).toEqual({ op: 'error', code: 8, message: 'User aborted the transfer' });
    expect(decodeTftp(raw([0, 5, 0, 1], 'nope'))).toEqual({ op: 'error', code: 1, message: 'nope' });
    expect(decodeTftp(raw([0, 6], 'tsize\x00123\0'))).toEqual({ op: 'oack', options: new Map([['tsize', '123']]) });
  });

  it.each([
    ['an empty packet', raw(), 'truncated', null],
    ['one byte', raw([0]), 'truncated', null],
    ['opcode 0', raw([0, 0]), 'unknown-opcode', 0],
    ['opcode 7', raw([0, 7, 1, 2]), 'unknown-opcode', 7],
    ['RRQ without a mode', raw([0, 1], 'file\0'), 'truncated', 1],
    ['RRQ with an unterminated mode', raw([0, 1], 'file\0octet'), 'unterminated-string', 1],
    ['RRQ with nothing', raw([0, 1]), 'truncated', 1],
    ['RRQ with an empty name', raw([0, 1], '\0octet\0'), 'empty-filename', 1],
    ['RRQ with invalid UTF-8', raw([0, 1], [0xc3, 0x28, 0], 'octet\0'), 'bad-encoding', 1],
    ['short DATA', raw([0, 3, 0]), 'truncated', 3],
    ['short ACK', raw([0, 4, 1]), 'truncated', 4],
    ['short ERROR', raw([0, 5]), 'truncated', 5],
    ['OACK with an unterminated value', raw([0, 6], 'blksize\x00512'), 'unterminated-string', 6],
  ])('rejects %s', (_what, buf, reason, opcode) => {
    const err = decodeError(buf);
    expect(err.reason).toBe(reason);
    expect(err.opcode).toBe(opcode);
  });
});

describe('encodeTftp', () => {
  it('writes the RFC 1350 layouts', () => {
    expect(encodeTftp({ op: 'ack', block: 258 })).toEqual(raw([0, 4, 1, 2]));
    expect(encodeTftp({ op: 'data', block: 1, data: Buffer.from('hi') })).toEqual(raw([0, 3, 0, 1], 'hi'));
    expect(encodeTftp({ op: 'error', code: 1, message: 'file not found' })).toEqual(raw([0, 5, 0, 1], 'file not found\0'));
    expect(encodeTftp({ op: 'oack', options: new Map([['blksize', '1468']]) })).toEqual(raw([0, 6], 'blksize\x001468\0'));
    expect(encodeTftp({ op: 'rrq', filename: 'a', mode: 'octet', options: new Map() })).toEqual(raw([0, 1], 'a\0octet\0'));
  });
});

describe('properties', () => {
  it('random bytes either decode or throw TftpDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 7 }), (bytes, op) => {
        // Half the time force a known opcode so the per-opcode parsers see the noise.
        const buf = Buffer.from(bytes);
        if (buf.length >= 2 && op > 0) buf.writeUInt16BE(op, 0);
        try {
          decodeTftp(buf);
        } catch (err) {
          if (!(err instanceof TftpDecodeError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  const text = fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => s.replaceAll('\0', ''));
  const name = text.filter((s) => s !== '');
  const options = fc
    .uniqueArray(fc.tuple(name.map((s) => s.toLowerCase()), text), { selector: ([k]) => k, maxLength: 5 })
    .map((entries) => new Map(entries));
  const packet: fc.Arbitrary<TftpPacket> = fc.oneof(
    fc.record({ op: fc.constantFrom('rrq' as const, 'wrq' as const), filename: name, mode: fc.constantFrom('octet', 'netascii'), options }),
    fc.record({ op: fc.constant('data' as const), block: fc.nat(0xffff), data: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) }),
    fc.record({ op: fc.constant('ack' as const), block: fc.nat(0xffff) }),
    fc.record({ op: fc.constant('error' as const), code: fc.nat(8), message: fc.string({ maxLength: 40 }).map((s) => Buffer.from(s.replaceAll('\0', ''), 'latin1').toString('latin1')).filter((s) => /^[\x20-\x7e]*$/.test(s)) }),
    fc.record({ op: fc.constant('oack' as const), options }),
  );

  it('encode then decode gives the packet back', () => {
    fc.assert(fc.property(packet, (p) => {
      expect(decodeTftp(encodeTftp(p))).toEqual(p);
    }), { numRuns: 1000 });
  });
});
