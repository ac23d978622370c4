import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../kiln-error.js';
import { compressionOf, kiwiDescriptionDir, RecipeInspector, type RecipeFacts } from './recipe-inspector.js';
import type { RecipeKind } from './recipe.js';

/** A minimal ustar archive of files. */
function tar(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write('0000644\0', 100);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write(name.endsWith('/') ? '5' : '0', 156);
    h.write('ustar\x0000', 257, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

/** Streams `bytes` (in small chunks) through the inspector; the bytes out must equal the bytes in. */
async function inspect(kind: RecipeKind, bytes: Buffer): Promise<RecipeFacts> {
  const inspector = new RecipeInspector(kind, 'x86_64');
  const out: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 700) chunks.push(bytes.subarray(i, i + 700));
  await pipeline(Readable.from(chunks), inspector, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  expect(Buffer.concat(out).equals(bytes)).toBe(true);
  return inspector.facts;
}

async function refused(kind: RecipeKind, bytes: Buffer): Promise<string> {
  const err = await inspect(kind, bytes).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe('KILN_RECIPE_INVALID');
  return (err as KilnError).message;
}

const digest = 'a'.repeat(64);
const oci = { 'oci-layout': '{"imageLayoutVersion":"1.0.0"}', 'index.json': `{"schemaVersion":2,"manifests":[{"digest":"sha256:${digest}"}]}`, 'blobs/': '', 'blobs/sha256/': '', [`blobs/sha256/${digest}`]: '{}' };

describe('RecipeInspector', () => {
  it('passes a root filesystem tar through, plain or gzip, counting its entries', async () => {
    const t = tar({ 'etc/': '', 'etc/hostname': 'x\n', 'boot/vmlinuz-6.1': 'k' });
    expect(await inspect('rootfs-archive', t)).toEqual({ compression: 'none', entries: 3 });
    expect(await inspect('rootfs-archive', gzipSync(t))).toEqual({ compression: 'gzip', entries: 3 });
  });

  it('recognises zstd, xz and bzip2 by their magic (Node 20 cannot read them; the build does)', async () => {
    expect(await inspect('rootfs-archive', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]))).toEqual({ compression: 'zstd' });
    expect(await inspect('rootfs-archive', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(10)]))).toEqual({ compression: 'xz' });
    expect(compressionOf(Buffer.from('BZh91AY'))).toBe('bzip2');
  });

  it('refuses bytes that are not a tar, a truncated or corrupt gzip, `..` members and empty uploads', async () => {
    expect(await refused('rootfs-archive', Buffer.from('hello'))).toMatch(/not a tar archive/);
    expect(await refused('rootfs-archive', Buffer.alloc(2048, 0x41))).toMatch(/not a tar archive/);
    const gz = gzipSync(tar({ a: 'x'.repeat(5000) }));
    expect(await refused('rootfs-archive', gz.subarray(0, gz.length - 20))).toMatch(/gzip|truncated/);
    expect(await refused('rootfs-archive', tar({ '../etc/passwd': 'x' }))).toMatch(/"\.\."/);
    expect(await refused('rootfs-archive', Buffer.alloc(0))).toMatch(/not a tar archive/);
  });

  it('oci-archive: wants oci-layout and an index.json whose manifests are in blobs/sha256', async () => {
    expect(await inspect('oci-archive', tar(oci))).toMatchObject({ compression: 'none' });
    const { 'oci-layout': _l, ...noLayout } = oci;
    expect(await refused('oci-archive', tar(noLayout))).toMatch(/oci-layout/);
    expect(await refused('oci-archive', tar({ ...oci, 'index.json': '{"manifests":[]}' }))).toMatch(/no manifests/);
    expect(await refused('oci-archive', tar({ ...oci, 'index.json': 'nope' }))).toMatch(/not JSON/);
    expect(await refused('oci-archive', tar({ ...oci, 'index.json': '{"manifests":[{"digest":"sha256:' + 'b'.repeat(64) + '"}]}' }))).toMatch(/not in blobs/);
  });

  it('kiwi-ng: wants config.xml or a *.kiwi description at the top or in one top directory', async () => {
    expect(await inspect('kiwi-ng', tar({ 'config.xml': '<image/>', 'config.sh': '' }))).toMatchObject({ descriptionDir: '' });
    expect(await inspect('kiwi-ng', gzipSync(tar({ 'desc/': '', 'desc/sles.kiwi': '<image/>' })))).toMatchObject({ descriptionDir: 'desc' });
    expect(await refused('kiwi-ng', tar({ 'a/b/config.xml': '' }))).toMatch(/no kiwi description/);
    expect(kiwiDescriptionDir(['a/config.xml', 'b/config.xml'])).toBeNull();
  });

  it('debootstrap: parses the spec at the end; a spec over 1 MiB is refused early', async () => {
    expect((await inspect('debootstrap', Buffer.from('suite: bookworm\npackages: [busybox]\n'))).spec).toMatchObject({ suite: 'bookworm', packages: ['busybox'] });
    expect(await refused('debootstrap', Buffer.from('suite: 1.2.3!'))).toMatch(/suite/);
    expect(await refused('debootstrap', Buffer.alloc(1024 * 1024 + 1, 0x20))).toMatch(/larger than/);
  });
});
