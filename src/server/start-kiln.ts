// Composition root: opens the store and blob store, wires core services to the listeners, and owns
// shutdown (stop accepting, finish in-flight requests, flush events, close storage, within a deadline).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Services } from '../api/services.js';
import { FsBlobStore } from '../blobs/fs/fs-blob-store.js';
import { TemplateRenderer } from '../boot/ipxe/template-renderer.js';
import { UrlSigner } from '../boot/url-signer.js';
import { BootCache } from '../core/boot-cache.js';
import { BootEventRecorder } from '../core/boot-event-recorder.js';
import type { BlobStore, Clock, IdSource, Store } from '../core/ports.js';
import { ArtifactService } from '../core/services/artifact-service.js';
import { BootService } from '../core/services/boot-service.js';
import { GroupService } from '../core/services/group-service.js';
import { ImageService } from '../core/services/image-service.js';
import { MachineService } from '../core/services/machine-service.js';
import { ProfileService } from '../core/services/profile-service.js';
import { TokenService } from '../core/services/token-service.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { buildApps } from './build-apps.js';
import type { KilnConfig } from './config.js';
import { KILN_VERSION } from './version.js';

export interface RunningKiln {
  /** Base URLs of the listeners: [admin (+boot)] or [admin, boot]. */
  urls: string[];
  adminUrl: string;
  bootUrl: string;
  /** Admin token secret when this start created it (first start), else null. */
  createdAdminToken: string | null;
  /** Graceful stop; resolves false when the deadline forced connections closed. */
  close(): Promise<boolean>;
}

export const systemClock: Clock = { now: () => new Date() };
export const randomIds: IdSource = { id: () => randomUUID(), secret: () => randomBytes(32).toString('base64url') };

/** Wires services over a store and a blob store; shared by `kiln serve` and in-process tools. */
export function buildServices(store: Store, blobs: BlobStore, log: FastifyBaseLogger, opts: { flushIntervalMs: number; enrollUnknown: boolean }, clock = systemClock, ids = randomIds) {
  const templates = new TemplateRenderer();
  const cache = new BootCache(store);
  const recorder = new BootEventRecorder(store, {
    flushIntervalMs: opts.flushIntervalMs,
    maxBatch: 500,
    onError: (err, dropped) => log.error({ err, dropped }, 'could not record boot events'),
  });
  const services: Services = {
    artifacts: new ArtifactService(store, blobs, clock),
    images: new ImageService(store, blobs, clock, ids),
    machines: new MachineService(store, clock, ids),
    profiles: new ProfileService(store, clock, (t) => templates.check(t)),
    groups: new GroupService(store, clock),
    tokens: new TokenService(store, clock, ids),
    boot: new BootService(store, cache, recorder, clock, ids, { enrollUnknown: opts.enrollUnknown }),
    clock,
  };
  return { services, templates, cache, recorder };
}

async function loadOrCreateKey(path: string): Promise<Buffer> {
  try {
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'base64url');
  } catch {
    const key = randomBytes(32);
    await writeFile(path, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'base64url');
  }
}

function urlOf(app: FastifyInstance): string {
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') return String(addr);
  const host = addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '[::1]' : addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

export async function startKiln(config: KilnConfig, log: FastifyBaseLogger): Promise<RunningKiln> {
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const closers: { name: string; close: () => Promise<unknown> }[] = [];
  const runClosers = async () => {
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (err) {
        log.error({ err }, `closing ${c.name} failed`);
      }
    }
  };
  try {
    const store = await openSqliteStore({ path: join(dataDir, 'kiln.db'), cacheMiB: config.sqliteCacheMiB });
    closers.push({ name: 'store', close: () => store.close() });
    const blobs = await FsBlobStore.open(join(dataDir, 'blobs'));
    closers.push({ name: 'blobs', close: () => blobs.close() });
    const { services, templates, cache, recorder } = buildServices(store, blobs, log, { flushIntervalMs: config.events.flushIntervalMs, enrollUnknown: config.boot.enrollUnknown });
    closers.push({ name: 'boot events', close: () => recorder.close() });
    closers.push({ name: 'boot cache', close: () => Promise.resolve(cache.close()) });

    const createdAdminToken = await services.tokens.bootstrapAdmin();
    if (createdAdminToken !== null) {
      await writeFile(join(dataDir, 'admin.token'), `${createdAdminToken}\n`, { mode: 0o600 });
    }

    const signer = config.boot.signUrls ? new UrlSigner(await loadOrCreateKey(join(dataDir, 'boot-url.key')), config.boot.urlTtlSeconds) : null;
    let stopping = false;
    const apps = await buildApps(
      {
        services,
        boot: {
          templates,
          publicUrl: config.publicUrl,
          signer,
          retries: config.boot.retries,
          retryDelaySeconds: config.boot.retryDelaySeconds,
          noPlanDelaySeconds: config.boot.noPlanDelaySeconds,
        },
        logger: log,
        bodyLimitBytes: config.bodyLimitBytes,
        apiDocs: config.apiDocs,
        health: async () => !stopping && (await store.ping().then(() => true)),
        version: KILN_VERSION,
      },
      config.boot.listen !== null,
    );
    const listens = [config.listen, ...(config.boot.listen !== null ? [config.boot.listen] : [])];
    for (const [i, app] of apps.entries()) {
      closers.push({ name: `listener ${i}`, close: () => app.close() });
      await app.listen({ host: listens[i]!.host, port: listens[i]!.port, backlog: config.backlog });
    }
    const urls = apps.map(urlOf);
    log.info({ urls, dataDir, store: store.dialect }, 'kiln is serving');

    return {
      urls,
      adminUrl: urls[0]!,
      bootUrl: urls[urls.length - 1]!,
      createdAdminToken,
      async close() {
        stopping = true;
        let forced = false;
        const deadline = setTimeout(() => {
          forced = true;
          log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown deadline reached; cutting open connections');
          for (const app of apps) app.server.closeAllConnections();
        }, config.shutdownTimeoutMs);
        // Keep-alive connections that finish their last response after close() began are idle
        // only from then on: keep closing idle ones so the deadline is not spent waiting on them.
        const reaper = setInterval(() => {
          for (const app of apps) app.server.closeIdleConnections();
        }, 50);
        await runClosers();
        clearInterval(reaper);
        clearTimeout(deadline);
        log.info({ forced }, 'kiln stopped');
        return !forced;
      },
    };
  } catch (err) {
    await runClosers();
    throw err;
  }
}
