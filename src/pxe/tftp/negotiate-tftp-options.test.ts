import { describe, expect, it } from 'vitest';
import { negotiateTftpOptions } from './negotiate-tftp-options.js';

const limits = { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000 };
const ask = (o: Record<string, string>, size = 3000) => negotiateTftpOptions(new Map(Object.entries(o)), size, limits);

describe('negotiateTftpOptions', () => {
  it('without options: plain RFC 1350, no OACK', () => {
    expect(ask({})).toEqual({ blksize: 512, windowsize: 1, timeoutMs: 1000, oack: null });
  });

  it('accepts what OVMF asks for', () => {
    const n = ask({ blksize: '1468', windowsize: '4' });
    expect(n).toMatchObject({ blksize: 1468, windowsize: 4 });
    expect(n.oack).toEqual(new Map([['blksize', '1468'], ['windowsize', '4']]));
  });

  it('caps blksize and windowsize at the limits and says so in the OACK', () => {
    const n = ask({ blksize: '65464', windowsize: '500' });
    expect(n).toMatchObject({ blksize: 1468, windowsize: 64 });
    expect(n.oack).toEqual(new Map([['blksize', '1468'], ['windowsize', '64']]));
  });

  it('answers tsize with the real size, whatever was sent', () => {
    expect(ask({ tsize: '0' }, 123456).oack).toEqual(new Map([['tsize', '123456']]));
    expect(ask({ tsize: 'x' }, 7).oack).toEqual(new Map([['tsize', '7']]));
  });

  it('takes the timeout in seconds', () => {
    const n = ask({ timeout: '3' });
    expect(n.timeoutMs).toBe(3000);
    expect(n.oack).toEqual(new Map([['timeout', '3']]));
  });

  it.each([
    ['blksize below 8', { blksize: '7' }],
    ['blksize over 65464', { blksize: '65465' }],
    ['blksize not a number', { blksize: '1e3' }],
    ['negative blksize', { blksize: '-512' }],
    ['timeout 0', { timeout: '0' }],
    ['timeout over 255', { timeout: '256' }],
    ['windowsize 0', { windowsize: '0' }],
    ['windowsize over 65535', { windowsize: '65536' }],
    ['an unknown option', { multicast: '' }],
  ])('leaves out %s', (_what, o) => {
    const n = ask(o);
    expect(n.oack).toBeNull();
    expect(n).toMatchObject({ blksize: 512, windowsize: 1, timeoutMs: 1000 });
  });
});
