import { describe, expect, it } from 'vitest';
import { bareMac, ncoreHostname, parseNcoreNode } from './ncore-mac.js';

describe('parseNcoreNode', () => {
  it('accepts the MAC forms ncore accepts: colons, upper case, URL-encoded colons, bare', () => {
    for (const input of ['52:54:00:AB:cd:01', '525400abcd01', '52%3A54%3a00%3aab%3acd%3a01', '5254:00ab:cd01']) {
      expect(parseNcoreNode(input, { hostname: false })).toEqual({ kind: 'mac', mac: '52:54:00:ab:cd:01', bare: '525400abcd01' });
    }
  });

  it('reads the 7-character gXXXXXX form as a host name matching the last six hex digits, where allowed', () => {
    expect(parseNcoreNode('gABCD01', { hostname: true })).toEqual({ kind: 'hostname', suffix: 'ab:cd:01', hostname: 'gabcd01' });
    expect(parseNcoreNode('gabcd01', { hostname: false })).toBeNull();
    expect(parseNcoreNode('gxyz123', { hostname: true })).toBeNull();
  });

  it('refuses every other length, and non-hex 12-character ids', () => {
    for (const input of ['', 'test_mac', '525400abcd0', '525400abcd012', 'test_mac_xyz', '52-54-00-ab-cd-01']) {
      expect(parseNcoreNode(input, { hostname: true }), input).toBeNull();
    }
  });

  it('derives ncore host names and bare MACs', () => {
    expect(ncoreHostname('52:54:00:ab:cd:01')).toBe('gabcd01');
    expect(bareMac('52:54:00:ab:cd:01')).toBe('525400abcd01');
  });
});
