import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KilnError } from './kiln-error.js';
import { parseMac, tryParseMac } from './mac.js';

const CANONICAL = 'aa:bb:cc:0d:0e:ff';

describe('tryParseMac accepts', () => {
  it.each([
    ['colon', 'aa:bb:cc:0d:0e:ff'],
    ['dash', 'aa-bb-cc-0d-0e-ff'],
    ['dot (cisco)', 'aabb.cc0d.0eff'],
    ['bare hex', 'aabbcc0d0eff'],
    ['upper case colon', 'AA:BB:CC:0D:0E:FF'],
    ['upper case dash', 'AA-BB-CC-0D-0E-FF'],
    ['upper case dot', 'AABB.CC0D.0EFF'],
    ['upper case bare', 'AABBCC0D0EFF'],
    ['mixed case', 'aA:Bb:cC:0d:0E:fF'],
    ['surrounding whitespace', '  aa:bb:cc:0d:0e:ff\t'],
    ['trailing newline', 'aabbcc0d0eff\n'],
  ])('%s: %s', (_what, input) => {
    expect(tryParseMac(input)).toBe(CANONICAL);
    expect(parseMac(input)).toBe(CANONICAL);
  });
});

describe('tryParseMac rejects', () => {
  it.each([
    ['empty', ''],
    ['whitespace only', '   '],
    ['mixed colon and dash', 'aa:bb-cc:dd:ee:ff'],
    ['mixed dash and colon', 'aa-bb-cc-dd-ee:ff'],
    ['dot mixed with colon', 'aabb.ccdd:eeff'],
    ['five octets', 'aa:bb:cc:dd:ee'],
    ['seven octets', 'aa:bb:cc:dd:ee:ff:00'],
    ['short octet', 'aa:bb:cc:d:ee:ff'],
    ['long octet', 'aa:bb:cc:ddd:ee:ff'],
    ['11 bare digits', 'aabbccddeef'],
    ['13 bare digits', 'aabbccddeeff0'],
    ['dot groups of wrong size', 'aab.bccdd.eeff'],
    ['two dot groups', 'aabbcc.ddeeff'],
    ['non-hex letter', 'aa:bb:cc:dd:ee:fg'],
    ['non-hex bare', 'zzbbccddeeff'],
    ['inner whitespace', 'aa:bb:cc dd:ee:ff'],
    ['trailing separator', 'aa:bb:cc:dd:ee:ff:'],
    ['leading separator', ':aa:bb:cc:dd:ee:ff'],
    ['wrong separator', 'aa.bb.cc.dd.ee.ff'],
    ['underscore separator', 'aa_bb_cc_dd_ee_ff'],
    ['0x prefix', '0xaabbccddeeff'],
  ])('%s: %j', (_what, input) => {
    expect(tryParseMac(input)).toBeNull();
  });
});

describe('parseMac', () => {
  it('throws a KilnError with code KILN_MAC_INVALID', () => {
    let caught: unknown;
    try {
      parseMac('not-a-mac');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KilnError);
    expect((caught as KilnError).code).toBe('KILN_MAC_INVALID');
    expect((caught as KilnError).kind).toBe('invalid');
  });

  it('throws on empty input and on mixed separators', () => {
    expect(() => parseMac('')).toThrow(expect.objectContaining({ code: 'KILN_MAC_INVALID' }) as Error);
    expect(() => parseMac('aa:bb-cc:dd:ee:ff')).toThrow(expect.objectContaining({ code: 'KILN_MAC_INVALID' }) as Error);
  });

  it('keeps an echo of very long input short in the message', () => {
    try {
      parseMac('x'.repeat(10_000));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });
});

describe('property: every accepted form of the same 6 bytes parses to one canonical form', () => {
  const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

  it('colon, dash, dot, bare, upper case and padded forms agree', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 6, maxLength: 6 }),
        fc.constantFrom('', ' ', '\t', '\n '),
        fc.boolean(),
        (bytes, pad, upper) => {
          const octets = Array.from(bytes, hex2);
          const canonical = octets.join(':');
          const bare = octets.join('');
          const forms = [
            octets.join(':'),
            octets.join('-'),
            `${bare.slice(0, 4)}.${bare.slice(4, 8)}.${bare.slice(8, 12)}`,
            bare,
          ];
          for (const f of forms) {
            const input = pad + (upper ? f.toUpperCase() : f) + pad;
            expect(tryParseMac(input)).toBe(canonical);
            expect(parseMac(input)).toBe(canonical);
          }
          expect(canonical).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a canonical MAC is a fixed point', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        const canonical = Array.from(bytes, hex2).join(':');
        expect(parseMac(parseMac(canonical))).toBe(canonical);
      }),
    );
  });
});
