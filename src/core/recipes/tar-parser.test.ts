import { describe, expect, it } from 'vitest';
import { normalizeTarName, TarFormatError, TarParser, whiteoutOf, type TarEntry } from './tar-parser.js';

/** A ustar header block for `name` (checksum filled in). */
function header(name: string, opts: { type?: string; size?: number; linkname?: string; prefix?: string; magic?: 'ustar' | 'gnu' } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${(opts.size ?? 0).toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(opts.type ?? '0', 156);
  h.write(opts.linkname ?? '', 157, 100, 'utf8');
  if (opts.magic === 'gnu') h.write('ustar  \0', 257, 'latin1');
  else h.write('ustar\x0000', 257, 'latin1');
  if (opts.prefix !== undefined) h.write(opts.prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function entry(name: string, data: Buffer | string = '', opts: Parameters<typeof header>[1] = {}): Buffer {
  const d = Buffer.from(data);
  const pad = Buffer.alloc((512 - (d.length % 512)) % 512);
  return Buffer.concat([header(name, { ...opts, size: opts.type === undefined || opts.type === '0' || ['L', 'x', 'K'].includes(opts.type) ? d.length : 0 }), d, pad]);
}

function pax(records: Record<string, string>): string {
  return Object.entries(records)
    .map(([k, v]) => {
      const body = ` ${k}=${v}\n`;
      // The length counts bytes, its own digits included.
      let len = Buffer.byteLength(body) + 1;
      while (Buffer.byteLength(`${len}${body}`) !== len) len = Buffer.byteLength(`${len}${body}`);
      return `${len}${body}`;
    })
    .join('');
}

const end = Buffer.alloc(1024);

function parse(archive: Buffer, chunk: number, keep: (name: string) => boolean = () => false): TarEntry[] {
  const out: TarEntry[] = [];
  const p = new TarParser((e) => out.push(e), keep);
  for (let i = 0; i < archive.length; i += chunk) p.write(archive.subarray(i, i + chunk));
  p.end();
  return out;
}

const archive = Buffer.concat([
  entry('./', '', { type: '5' }),
  entry('./etc/', '', { type: '5' }),
  entry('./etc/hostname', 'kiln\n'),
  entry('bin/sh', '', { type: '2', linkname: '/bin/busybox' }),
  entry('bin/ash', '', { type: '1', linkname: './bin/busybox' }),
  entry('name.txt', '', { prefix: 'very/long/prefix' }),
  entry('././@LongLink', `${'d/'.repeat(80)}long-file\0`, { type: 'L', magic: 'gnu' }),
  entry('d/d/d/truncated', 'x', { magic: 'gnu' }),
  entry('PaxHeaders/x', pax({ path: 'pax/ünïcode path', linkpath: 'target' }), { type: 'x' }),
  entry('short', '', { type: '2' }),
  entry('index.json', '{"manifests":[]}'),
  end,
]);

describe('TarParser', () => {
  it('reads ustar, GNU long names and PAX paths the same whatever the chunk size', () => {
    const whole = parse(archive, archive.length, (n) => n === 'index.json');
    expect(whole.map((e) => [e.name, e.type, e.linkname])).toEqual([
      ['', 'directory', ''],
      ['etc', 'directory', ''],
      ['etc/hostname', 'file', ''],
      ['bin/sh', 'symlink', '/bin/busybox'],
      ['bin/ash', 'hardlink', 'bin/busybox'],
      ['very/long/prefix/name.txt', 'file', ''],
      [`${'d/'.repeat(80)}long-file`, 'file', ''],
      ['pax/ünïcode path', 'symlink', 'target'],
      ['index.json', 'file', ''],
    ]);
    expect(whole.find((e) => e.name === 'etc/hostname')).toMatchObject({ size: 5, mode: 0o644 });
    expect(whole.find((e) => e.name === 'index.json')?.data?.toString()).toBe('{"manifests":[]}');
    for (const chunk of [1, 7, 511, 513, 4096]) expect(parse(archive, chunk, (n) => n === 'index.json')).toEqual(whole);
  });

  it('refuses what is not a tar, a bad checksum, a truncated archive and an empty one', () => {
    expect(() => parse(Buffer.alloc(512, 0x41), 512)).toThrow(TarFormatError);
    const corrupt = Buffer.from(archive);
    corrupt[512 * 2 + 10] = corrupt[512 * 2 + 10]! ^ 0xff;
    expect(() => parse(corrupt, 100)).toThrow(/checksum/);
    expect(() => parse(archive.subarray(0, 512 * 3 + 100), 512)).toThrow(/truncated/);
    expect(() => parse(Buffer.alloc(0), 1)).toThrow(/empty/);
    expect(() => parse(end, 512)).toThrow(/no entries/);
  });

  it('accepts an archive without the end-of-archive blocks (many writers stop at an entry boundary)', () => {
    expect(parse(entry('a', 'x'), 3).map((e) => e.name)).toEqual(['a']);
  });
});

describe('names and whiteouts', () => {
  it('normalises names', () => {
    expect(normalizeTarName('./a//b/')).toBe('a/b');
    expect(normalizeTarName('/')).toBe('');
    expect(normalizeTarName('../x')).toBe('../x');
  });

  it('recognises OCI whiteouts and opaque markers', () => {
    expect(whiteoutOf('etc/.wh.passwd')).toEqual({ kind: 'whiteout', target: 'etc/passwd' });
    expect(whiteoutOf('.wh.top')).toEqual({ kind: 'whiteout', target: 'top' });
    expect(whiteoutOf('opt/dir/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: 'opt/dir' });
    expect(whiteoutOf('.wh..wh..opq')).toEqual({ kind: 'opaque', dir: '' });
    expect(whiteoutOf('etc/passwd')).toBeNull();
    expect(whiteoutOf('etc/.wh.')).toBeNull();
  });
});
