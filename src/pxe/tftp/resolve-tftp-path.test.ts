import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeTftpPath, resolveTftpPath } from './resolve-tftp-path.js';

describe('normalizeTftpPath', () => {
  it.each([
    ['undionly.kpxe', 'undionly.kpxe'],
    ['/undionly.kpxe', 'undionly.kpxe'],
    ['//efi//./snponly.efi', 'efi/snponly.efi'],
    ['boot\\x64\\wdsnbp.com', 'boot/x64/wdsnbp.com'],
    ['\\pxelinux.cfg\\01-52-54-00-12-34-56', 'pxelinux.cfg/01-52-54-00-12-34-56'],
    ['a..b/c...', 'a..b/c...'],
  ])('%s → %s', (input, out) => {
    expect(normalizeTftpPath(input)).toBe(out);
  });

  it.each(['../etc/passwd', '/../etc/passwd', 'efi/../../x', 'efi/..', '..\\..\\windows', '/', '.', '', 'a\nb', 'a\x7fb'])('refuses %j', (input) => {
    expect(normalizeTftpPath(input)).toBeNull();
  });
});

describe('resolveTftpPath', () => {
  let dir: string;
  let root: string;

  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'kiln-tftp-path-')));
    root = path.join(dir, 'root');
    await mkdir(path.join(root, 'efi'), { recursive: true });
    await writeFile(path.join(root, 'efi', 'snponly.efi'), 'x');
    await writeFile(path.join(dir, 'secret'), 's');
    await symlink(path.join(dir, 'secret'), path.join(root, 'escape'));
    await symlink('efi/snponly.efi', path.join(root, 'inside'));
    await symlink(dir, path.join(root, 'updir'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a file, and follows a symlink that stays inside', async () => {
    expect(await resolveTftpPath(root, 'efi/snponly.efi')).toEqual({ kind: 'file', path: path.join(root, 'efi', 'snponly.efi') });
    expect(await resolveTftpPath(root, 'inside')).toEqual({ kind: 'file', path: path.join(root, 'efi', 'snponly.efi') });
  });

  it('refuses symlinks out of the root, to a file or through a directory', async () => {
    expect(await resolveTftpPath(root, 'escape')).toMatchObject({ kind: 'denied' });
    expect(await resolveTftpPath(root, 'updir/secret')).toMatchObject({ kind: 'denied' });
  });

  it('reports missing files as not found', async () => {
    expect(await resolveTftpPath(root, 'nope.efi')).toEqual({ kind: 'not-found' });
    expect(await resolveTftpPath(root, 'efi/snponly.efi/x')).toEqual({ kind: 'not-found' });
  });

  it('does not treat a sibling directory sharing the prefix as inside', async () => {
    await mkdir(`${root}-sibling`, { recursive: true });
    await writeFile(path.join(`${root}-sibling`, 'f'), 'f');
    await symlink(path.join(`${root}-sibling`, 'f'), path.join(root, 'sib'));
    expect(await resolveTftpPath(root, 'sib')).toMatchObject({ kind: 'denied' });
  });
});
