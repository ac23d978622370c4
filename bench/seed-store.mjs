// Seeds a Kiln store through Kiln's own code: an image with kernel and initrd, four profiles,
// 52 groups (racks, a storage sub-group, the default) and N machines. SQLite in the data directory,
// or the PostgreSQL database at `databaseUrl`.
import { mkdir, link } from 'node:fs/promises';
import { join } from 'node:path';
import { openSqliteStore } from '../dist/store/sqlite/sqlite-store.js';
import { openPostgresStore } from '../dist/store/postgres/postgres-store.js';
import { macOf } from './mac-of.mjs';

// Machines per transaction: commits stay few, and no single transaction grows without bound.
// Measured: 100,000 machines in ~9 s on the 2-core VM, nearly all of it Kysely's per-statement cost.
const BATCH = 5000;

/**
 * Writes the fleet into <dataDir>/kiln.db. `kernel` and `initrd` are { sha256, size } of blobs
 * that `linkBlob` places (or not, for the render case, which never fetches them).
 */
export async function seedStore(dataDir, { machines, kernel, initrd, databaseUrl = null }) {
  const store = databaseUrl === null ? await openSqliteStore({ path: join(dataDir, 'kiln.db') }) : await openPostgresStore({ url: databaseUrl });
  try {
    const at = new Date().toISOString();
    await store.transaction(async (tx) => {
      for (const a of [kernel, initrd]) await tx.putArtifact({ sha256: a.sha256, size: a.size, mediaType: 'application/octet-stream', createdAt: at });
      await tx.createImage({ name: 'debian', description: 'bench', labels: {}, createdAt: at, updatedAt: at, deletedAt: null, revision: 1 });
      await tx.createVersion({ id: 'v1', image: 'debian', version: '12', arch: 'x86_64', cmdline: 'console=ttyS0,115200n8 quiet', metadata: {}, createdAt: at, artifacts: [
        { name: 'vmlinuz', role: 'kernel', sha256: kernel.sha256, size: kernel.size, mediaType: 'application/octet-stream' },
        { name: 'initrd.img', role: 'initrd', sha256: initrd.sha256, size: initrd.size, mediaType: 'application/octet-stream' },
      ] });
      await tx.moveChannel({ image: 'debian', name: 'stable', toVersion: '12', action: 'promote', actor: 'bench', at }, undefined);
      for (const p of ['worker', 'storage', 'gpu', 'default']) {
        await tx.createProfile({ name: p, description: '', image: { image: 'debian', channel: 'stable' }, kernelArgs: Array.from({ length: 10 }, (_, i) => `arg${i}=${p}`), template: null, createdAt: at, updatedAt: at, revision: 1 });
      }
      await tx.createGroup({ name: 'default', description: '', selectors: {}, profile: 'default', createdAt: at, updatedAt: at, revision: 1 });
      for (let r = 0; r < 50; r++) await tx.createGroup({ name: `rack-${r}`, description: '', selectors: { labels: { rack: `r${r}` } }, profile: r % 3 === 0 ? 'gpu' : 'worker', createdAt: at, updatedAt: at, revision: 1 });
      await tx.createGroup({ name: 'rack-0-storage', description: '', selectors: { labels: { rack: 'r0', role: 'storage' } }, profile: 'storage', createdAt: at, updatedAt: at, revision: 1 });
    });
    for (let from = 0; from < machines; from += BATCH) {
      await store.transaction(async (tx) => {
        for (let i = from; i < Math.min(machines, from + BATCH); i++) {
          await tx.createMachine({
            id: `m-${i}`, macs: [macOf(i)], uuid: null, serial: `SN${String(i).padStart(8, '0')}`, hostname: `node-${i}`,
            labels: { rack: `r${i % 50}`, ...(i % 7 === 0 ? { role: 'storage' } : {}) }, arch: 'x86_64', firmware: 'uefi', state: 'ready',
            profile: i % 10 === 0 ? 'worker' : null, nextBoot: null, lastSeenAt: null, createdAt: at, updatedAt: at, revision: 1,
          });
        }
      });
    }
  } finally {
    await store.close();
  }
}

/** Places a file as a blob of Kiln's fs blob store (<dataDir>/blobs/sha256/<ab>/<sha>): a hard link, no copy. */
export async function linkBlob(dataDir, file, sha256) {
  const dir = join(dataDir, 'blobs', 'sha256', sha256.slice(0, 2));
  await mkdir(dir, { recursive: true });
  await link(file, join(dir, sha256));
}
