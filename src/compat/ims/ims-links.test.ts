import { describe, expect, it } from 'vitest';
import { KilnError } from '../../core/kiln-error.js';
import { MANIFEST_TYPES } from '../../core/recipes/image-manifest.js';
import {
  checkBucket, checkKey, deletedKey, manifestDocument, manifestEntries, ManifestProblem, parseManifest, parseS3Path, roleOfType, s3Path, typeOfRole, undeletedKey,
} from './ims-links.js';

const ID = '3f9c0c1e-6d3a-4b7e-9a55-0c2b1d4e5f60';
const art = (key: string, type: string, more: Record<string, unknown> = {}) => ({ link: { path: `s3://boot-images/${ID}/${key}`, etag: `etag-${key}`, type: 's3' }, type, md5: `md5-${key}`, ...more });
const manifest = (artifacts: unknown[], more: Record<string, unknown> = {}) => JSON.stringify({ version: '1.0', created: '2024-05-01 10:00:00', artifacts, ...more });
const GOOD = [art('rootfs', MANIFEST_TYPES.rootfs), art('kernel', MANIFEST_TYPES.kernel), art('initrd', MANIFEST_TYPES.initrd)];

/** The ManifestProblem parseManifest throws for `text`. */
function problemOf(text: string): ManifestProblem {
  try {
    parseManifest(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestProblem);
    return err as ManifestProblem;
  }
  throw new Error(`expected the manifest to be refused: ${text}`);
}

describe('parseS3Path', () => {
  it('splits s3://bucket/key, keys with slashes and dots included', () => {
    expect(parseS3Path(`s3://boot-images/${ID}/manifest.json`)).toEqual({ bucket: 'boot-images', key: `${ID}/manifest.json` });
    expect(parseS3Path('s3://ims/recipes/cos-2.6.tar.gz')).toEqual({ bucket: 'ims', key: 'recipes/cos-2.6.tar.gz' });
    expect(parseS3Path('s3://my.bucket-1/.hidden/..dots/a')).toEqual({ bucket: 'my.bucket-1', key: '.hidden/..dots/a' });
    expect(s3Path({ bucket: 'ims', key: 'a/b' })).toBe('s3://ims/a/b');
  });

  it('refuses other schemes and paths without a key', () => {
    for (const p of ['http://ims/a', 'S3://ims/a', 'ims/a', 's3://ims', 's3://ims/', 's3:///a', '']) expect(parseS3Path(p), p).toBeNull();
  });

  it('refuses keys with "." or ".." segments, "//", a leading "/" or control characters', () => {
    for (const p of ['s3://ims/a/../b', 's3://ims/../a', 's3://ims/a/..', 's3://ims/./a', 's3://ims/a//b', 's3://ims//a', 's3://ims/a\nb', 's3://ims/a\u0000', 's3://ims/a\u007f']) {
      expect(parseS3Path(p), JSON.stringify(p)).toBeNull();
    }
  });

  it('refuses bad bucket names', () => {
    for (const b of ['IMS', 'ab', '-ims', 'ims-', 'im_s', 'a'.repeat(64)]) expect(parseS3Path(`s3://${b}/key`), b).toBeNull();
    expect(parseS3Path(`s3://${'a'.repeat(63)}/key`)).toEqual({ bucket: 'a'.repeat(63), key: 'key' });
  });
});

describe('checkKey and checkBucket', () => {
  it('allow ordinary keys, a trailing "/" (a folder marker) and 1024 bytes', () => {
    for (const k of ['a', 'a/b/c.tar.gz', 'dir/', 'x'.repeat(1024), 'ünïcödé/ok']) expect(checkKey(k), k).toBeNull();
  });

  it('refuse empty and over-long keys (bytes, not characters)', () => {
    expect(checkKey('')).toMatch(/1 to 1024 bytes/);
    expect(checkKey('x'.repeat(1025))).toMatch(/1 to 1024 bytes/);
    expect(checkKey('é'.repeat(513))).toMatch(/1 to 1024 bytes/);
  });

  it('refuse control characters and confusing segments', () => {
    expect(checkKey('a\tb')).toMatch(/control characters/);
    for (const k of ['/a', 'a//b', '.', '..', 'a/.', 'a/../b']) expect(checkKey(k), k).toMatch(/segments/);
  });

  it('buckets: 3 to 63 lower-case letters, digits, "." and "-", not starting or ending with a symbol', () => {
    for (const b of ['ims', 'boot-images', 'a.b.c', '123']) expect(checkBucket(b), b).toBeNull();
    for (const b of ['', 'ab', 'Boot', 'boot_images', '.ims', 'ims.']) expect(checkBucket(b), b).not.toBeNull();
  });
});

describe('parseManifest', () => {
  it('reads a manifest IMS writes: entries with bucket/key, type, md5 and etag', () => {
    const m = parseManifest(manifest(GOOD));
    expect(m.created).toBe('2024-05-01 10:00:00');
    expect(m.entries).toEqual([
      { ref: { bucket: 'boot-images', key: `${ID}/rootfs` }, type: MANIFEST_TYPES.rootfs, md5: 'md5-rootfs', etag: 'etag-rootfs' },
      { ref: { bucket: 'boot-images', key: `${ID}/kernel` }, type: MANIFEST_TYPES.kernel, md5: 'md5-kernel', etag: 'etag-kernel' },
      { ref: { bucket: 'boot-images', key: `${ID}/initrd` }, type: MANIFEST_TYPES.initrd, md5: 'md5-initrd', etag: 'etag-initrd' },
    ]);
  });

  it('defaults a missing md5, etag and created to ""', () => {
    const m = parseManifest(JSON.stringify({ version: '1.0', artifacts: [{ link: { path: 's3://boot-images/r', type: 's3' }, type: MANIFEST_TYPES.rootfs }] }));
    expect(m).toEqual({ created: '', entries: [{ ref: { bucket: 'boot-images', key: 'r' }, type: MANIFEST_TYPES.rootfs, md5: '', etag: '' }] });
  });

  it('wants version "1.0" exactly (422)', () => {
    for (const v of ['2.0', '1', 1.0, null, undefined]) {
      const p = problemOf(manifest(GOOD, { version: v }));
      expect(p.status, String(v)).toBe(422);
      expect(p.message).toMatch(/version .* is not supported; want "1.0"/);
    }
  });

  it('wants exactly one rootfs (400 for none and for two)', () => {
    const none = problemOf(manifest([art('kernel', MANIFEST_TYPES.kernel)]));
    expect(none.status).toBe(400);
    expect(none.message).toMatch(/exactly one rootfs.*lists 0/);
    const two = problemOf(manifest([...GOOD, art('rootfs2', MANIFEST_TYPES.rootfs)]));
    expect(two.status).toBe(400);
    expect(two.message).toMatch(/lists 2/);
    expect(problemOf(manifest([])).status).toBe(400);
  });

  it('refuses links that are not s3 or not s3://bucket/key paths (422)', () => {
    const http = problemOf(manifest([{ ...art('rootfs', MANIFEST_TYPES.rootfs), link: { path: 'http://x/rootfs', type: 'http' } }]));
    expect(http.status).toBe(422);
    expect(http.message).toMatch(/artifact 0: its link needs type "s3"/);
    const badPath = problemOf(manifest([art('kernel', MANIFEST_TYPES.kernel), { ...art('rootfs', MANIFEST_TYPES.rootfs), link: { path: 's3://boot-images/a/../b', type: 's3' } }]));
    expect(badPath.status).toBe(422);
    expect(badPath.message).toMatch(/artifact 1: .* is not an s3:\/\/bucket\/key path/);
    expect(problemOf(manifest([{ ...art('rootfs', MANIFEST_TYPES.rootfs), link: { type: 's3' } }])).status).toBe(422);
  });

  it('refuses what is not a manifest (422): not JSON, not an object, artifacts not a list, artifacts without type or link', () => {
    for (const text of ['{', '[]', '"1.0"', 'null', manifest(GOOD, { artifacts: {} }), manifest([null]), manifest([{ type: MANIFEST_TYPES.rootfs }]), manifest([{ link: { path: 's3://ims/a', type: 's3' } }])]) {
      expect(problemOf(text).status, text).toBe(422);
    }
  });
});

describe('manifestEntries: lenient reading for deletes', () => {
  it('reads what it can and skips the rest', () => {
    const text = manifest([...GOOD, null, { type: 'x' }, { link: { path: 'http://elsewhere/a' } }, { link: { path: 's3://boot-images/loose' } }]);
    const entries = manifestEntries(text);
    expect(entries.map((e) => e.ref.key)).toEqual([`${ID}/rootfs`, `${ID}/kernel`, `${ID}/initrd`, 'loose']);
    expect(entries[3]).toEqual({ ref: { bucket: 'boot-images', key: 'loose' }, type: '', md5: '', etag: '' });
  });

  it('takes any version and any rootfs count', () => {
    expect(manifestEntries(manifest([art('kernel', MANIFEST_TYPES.kernel)], { version: '2.0' }))).toHaveLength(1);
  });

  it('gives [] for what is not a manifest', () => {
    for (const text of ['', '{', 'null', '"x"', '[]', '{"artifacts":{}}']) expect(manifestEntries(text), text).toEqual([]);
  });
});

describe('manifestDocument', () => {
  it('writes a manifest parseManifest reads back', () => {
    const entries = parseManifest(manifest(GOOD)).entries;
    const doc = manifestDocument('2024-06-01T00:00:00.000Z', entries);
    expect(JSON.parse(doc)).toMatchObject({ version: '1.0', created: '2024-06-01T00:00:00.000Z' });
    expect(parseManifest(doc)).toEqual({ created: '2024-06-01T00:00:00.000Z', entries });
    expect((JSON.parse(doc) as { artifacts: unknown[] }).artifacts[0]).toEqual({ link: { path: `s3://boot-images/${ID}/rootfs`, etag: 'etag-rootfs', type: 's3' }, type: MANIFEST_TYPES.rootfs, md5: 'md5-rootfs' });
  });
});

describe('deleted keys and types', () => {
  it('moves keys under deleted/ and back', () => {
    expect(deletedKey(`${ID}/rootfs`)).toBe(`deleted/${ID}/rootfs`);
    expect(undeletedKey(`deleted/${ID}/rootfs`)).toBe(`${ID}/rootfs`);
  });

  it('refuses to undelete a key that is not under deleted/ (a conflict)', () => {
    for (const k of [`${ID}/rootfs`, 'deletedx/a', 'Deleted/a']) {
      expect(() => undeletedKey(k), k).toThrow(KilnError);
      try {
        undeletedKey(k);
      } catch (err) {
        expect((err as KilnError).code).toBe('KILN_IMS_CONFLICT');
      }
    }
  });

  it('maps IMS artifact types to Kiln roles and back', () => {
    expect(roleOfType(MANIFEST_TYPES.kernel)).toBe('kernel');
    expect(roleOfType(MANIFEST_TYPES.initrd)).toBe('initrd');
    expect(roleOfType(MANIFEST_TYPES.rootfs)).toBe('rootfs');
    expect(roleOfType(MANIFEST_TYPES.parameters)).toBe('other');
    expect(roleOfType('application/vnd.cray.image.debug.kernel')).toBe('other');
    expect(typeOfRole('kernel')).toBe(MANIFEST_TYPES.kernel);
    expect(typeOfRole('other')).toBeNull();
  });
});
