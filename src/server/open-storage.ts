// Chooses and opens the store and the blob store the configuration names: SQLite and the data
// directory by default, PostgreSQL and S3 to scale out. The only place that knows all four adapters.
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { FsBlobStore } from '../blobs/fs/fs-blob-store.js';
import type { BlobStore } from '../core/ports.js';
import type { KyselyStore } from '../store/kysely-store.js';
import type { KilnConfig } from './config.js';

/**
 * `eventWriter`: this process writes the server's boot events (a single process, or a cluster's
 * primary); on SQLite a thread with its own connection writes them and checkpoints the file.
 */
export async function openStore(
  config: KilnConfig,
  dataDir: string,
  log: FastifyBaseLogger,
  opts: { listen?: boolean; migrate?: boolean; eventWriter?: boolean } = {},
): Promise<KyselyStore> {
  const db = config.database;
  if (db.url !== null) {
    const { openPostgresStore } = await import('../store/postgres/postgres-store.js');
    return openPostgresStore({
      url: db.url,
      poolMax: db.poolMax,
      statementTimeoutMs: db.statementTimeoutMs,
      connectTimeoutMs: db.connectTimeoutMs,
      migrate: opts.migrate ?? db.migrate,
      listen: opts.listen ?? true,
      log,
    });
  }
  const { openSqliteStore } = await import('../store/sqlite/sqlite-store.js');
  return openSqliteStore({
    path: join(dataDir, 'kiln.db'),
    cacheMiB: config.sqliteCacheMiB,
    migrate: opts.migrate ?? db.migrate,
    bootEvents: opts.eventWriter === true ? 'thread' : 'inline',
    onCheckpointError: (message) => log.warn({ message }, 'SQLite checkpoint failed; the next one retries'),
  });
}

export async function openBlobStore(config: KilnConfig, dataDir: string): Promise<BlobStore> {
  const b = config.blobs;
  if (b.url === null) return FsBlobStore.open(join(dataDir, 'blobs'));
  // Loaded only when used: the AWS SDK is large, and most single-node installs never need it.
  const { S3BlobStore } = await import('../blobs/s3/s3-blob-store.js');
  return S3BlobStore.open({
    bucket: b.url.bucket,
    prefix: b.url.prefix,
    endpoint: b.s3.endpoint ?? undefined,
    region: b.s3.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: b.s3.forcePathStyle,
    credentials: b.s3.accessKeyId !== null && b.s3.secretAccessKey !== null ? { accessKeyId: b.s3.accessKeyId, secretAccessKey: b.s3.secretAccessKey } : undefined,
  });
}

/** What `kiln serve` logs about where its state lives (never credentials). */
export function describeStorage(config: KilnConfig, dataDir: string): { store: string; blobs: string } {
  let store = `sqlite:${join(dataDir, 'kiln.db')}`;
  if (config.database.url !== null) {
    const u = new URL(config.database.url);
    store = `postgres://${u.host}${u.pathname}`;
  }
  const blobs = config.blobs.url === null ? join(dataDir, 'blobs') : `s3://${config.blobs.url.bucket}/${config.blobs.url.prefix}`;
  return { store, blobs };
}
