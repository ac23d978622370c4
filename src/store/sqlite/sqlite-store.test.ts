import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeStoreContract } from '../contract/store-contract.js';
import { openSqliteStore } from './sqlite-store.js';

const dirs: string[] = [];

async function freshPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-sqlite-'));
  dirs.push(dir);
  return join(dir, 'kiln.db');
}

// Registered before the contract's hooks: runs after them, once the store is closed.
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describeStoreContract('sqlite', async () => openSqliteStore({ path: await freshPath() }));
// The shared Kysely query code, without the native boot-path statements: both must pass the same suite.
describeStoreContract('sqlite (shared query code only)', async () => openSqliteStore({ path: await freshPath(), fastPaths: false }));

describe('SqliteStore on a file', () => {
  it('keeps its data when reopened; migrations run again without harm', async () => {
    const path = await freshPath();
    const first = await openSqliteStore({ path });
    await first.createImage({ name: 'os', description: 'kept', labels: { a: 'b' }, createdAt: 't1', updatedAt: 't1', deletedAt: null, revision: 1, owner: null });
    await first.putArtifact({ sha256: 'a'.repeat(64), size: 5, mediaType: 'application/octet-stream', createdAt: 't1' });
    await first.close();

    const second = await openSqliteStore({ path });
    try {
      expect(await second.getImage('os')).toEqual({ name: 'os', description: 'kept', labels: { a: 'b' }, createdAt: 't1', updatedAt: 't1', deletedAt: null, revision: 1, owner: null });
      expect((await second.listArtifacts()).map((a) => a.sha256)).toEqual(['a'.repeat(64)]);
      await second.createImage({ name: 'os2', description: '', labels: {}, createdAt: 't2', updatedAt: 't2', deletedAt: null, revision: 1, owner: null });
    } finally {
      await second.close();
    }

    const third = await openSqliteStore({ path });
    try {
      expect((await third.listImages({ deleted: false })).map((i) => i.name)).toEqual(['os', 'os2']);
    } finally {
      await third.close();
    }
  });

  it('refuses to open a path it cannot create', async () => {
    const dir = await freshPath();
    await expect(openSqliteStore({ path: join(dir, 'missing-dir', 'kiln.db') })).rejects.toThrow();
  });
});

// The server's configuration: boot events go through the writer thread on its own connection.
describeStoreContract('sqlite (boot events on the writer thread)', async () => openSqliteStore({ path: await freshPath(), bootEvents: 'thread' }));
