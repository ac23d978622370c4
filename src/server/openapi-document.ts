// Builds the OpenAPI document without listening or touching disk (in-memory store), for `kiln openapi`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../blobs/fs/fs-blob-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { buildApps } from './build-apps.js';
import { buildServices } from './start-kiln.js';
import { KILN_VERSION } from './version.js';
import { pino } from 'pino';

export async function openapiDocument(): Promise<unknown> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-openapi-'));
  const store = await openSqliteStore({ path: ':memory:' });
  try {
    const log = pino({ level: 'silent' });
    const { services, templates } = buildServices(store, await FsBlobStore.open(dir), log, { flushIntervalMs: 50, enrollUnknown: true });
    const [app] = await buildApps(
      {
        services,
        boot: { templates, publicUrl: null, signer: null, retries: 5, retryDelaySeconds: 5, noPlanDelaySeconds: 30, redirectTtlSeconds: null, filesRoot: null },
        logger: false,
        bodyLimitBytes: 1 << 20,
        apiDocs: false,
        health: () => Promise.resolve(true),
        // The committed document must not change with every release bump.
        version: KILN_VERSION.split('.').slice(0, 2).join('.'),
      },
      false,
    );
    await app!.ready();
    const doc = app!.swagger();
    await app!.close();
    return doc;
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
