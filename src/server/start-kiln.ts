// Composition root: opens the store and blob store, wires core services to the listeners, and owns
// shutdown (stop accepting, finish in-flight requests, flush events, close storage, within a deadline).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { attachUsers } from '../api/auth.js';
import type { LoginProviderConfig } from '../api/login/oidc-login.js';
import type { Services } from '../api/services.js';
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
import { ImageSetupService } from '../core/services/image-setup-service.js';
import { PayloadService } from '../core/services/payload-service.js';
import { RecipeService } from '../core/services/recipe-service.js';
import { UserService, type UserServiceOptions } from '../core/services/user-service.js';
import { JobService } from '../jobs/job-service.js';
import { CustomizeService } from '../jobs/customize/customize-service.js';
import { PublicKeyService } from '../core/services/public-key-service.js';
import { openJobs } from '../jobs/start-jobs.js';
import { buildApps } from './build-apps.js';
import { eventsViaPrimary, linkStoreChanges } from './cluster/cluster-worker.js';
import type { KilnConfig } from './config.js';
import { describeStorage, openBlobStore, openStore } from './open-storage.js';
import { ImsRecordsService } from '../compat/ims/ims-records-service.js';
import { ImsJobsService } from '../compat/ims/ims-jobs-service.js';
import type { RunningPxe } from './start-pxe.js';
import { KILN_VERSION } from './version.js';
import { HotChunks } from '../core/hot-chunks.js';

export interface RunningKiln {
  /** Base URLs of the listeners: [admin (+boot)] or [admin, boot]. */
  urls: string[];
  adminUrl: string;
  bootUrl: string;
  /** Ports of the proxyDHCP and TFTP servers when pxe.enabled. */
  pxe: { dhcp: number; pxe: number; tftp: number } | null;
  /** Admin token secret when this start created it (first start), else null. */
  createdAdminToken: string | null;
  /** Graceful stop; resolves false when the deadline forced connections closed. */
  close(): Promise<boolean>;
}

export const systemClock: Clock = { now: () => new Date() };
export const randomIds: IdSource = { id: () => randomUUID(), secret: () => randomBytes(32).toString('base64url') };

/** Half the budget per artifact: one large image streamed once must not push out the fleet's kernels. */
function hotChunks(mib: number): HotChunks | null {
  const budgetBytes = mib * 1024 * 1024;
  return budgetBytes === 0 ? null : new HotChunks({ budgetBytes, chunkBytes: 1024 * 1024, maxBlobBytes: budgetBytes / 2 });
}

/** Wires services over a store and a blob store; shared by `kiln serve` and in-process tools. */
export function buildServices(
  store: Store,
  blobs: BlobStore,
  log: FastifyBaseLogger,
  opts: {
    flushIntervalMs: number; lastSeenResolutionMs?: number; enrollUnknown: boolean; users?: UserServiceOptions; jobs?: JobService; memoryCacheMiB?: number;
    /** Where boot event batches are written (default: the store). */
    events?: Pick<Store, 'recordBootEvents'>;
  },
  clock = systemClock,
  ids = randomIds,
) {
  const templates = new TemplateRenderer();
  const cache = new BootCache(store);
  const recorder = new BootEventRecorder(opts.events ?? store, {
    flushIntervalMs: opts.flushIntervalMs,
    lastSeenResolutionMs: opts.lastSeenResolutionMs ?? 0,
    maxBatch: 500,
    onError: (err, dropped) => log.error({ err, dropped }, 'could not record boot events'),
  });
  const jobs = opts.jobs ?? JobService.unavailable(ids, clock);
  const services: Services = {
    artifacts: new ArtifactService(store, blobs, clock, hotChunks(opts.memoryCacheMiB ?? 0)),
    images: new ImageService(store, blobs, clock, ids),
    machines: new MachineService(store, clock, ids),
    profiles: new ProfileService(store, clock, (t) => templates.check(t)),
    groups: new GroupService(store, clock),
    tokens: new TokenService(store, clock, ids),
    boot: new BootService(store, cache, recorder, clock, ids, { enrollUnknown: opts.enrollUnknown }),
    payloads: new PayloadService(store, clock),
    users: new UserService(store, clock, ids, opts.users ?? { defaultRole: 'viewer', sessionTtlHours: 8 }),
    setups: new ImageSetupService(store, clock, ids, blobs),
    recipes: new RecipeService(store, blobs, clock, ids),
    jobs,
    publicKeys: new PublicKeyService(store, clock, ids),
    customize: new CustomizeService(store, blobs, clock, ids, jobs),
    clock,
  };
  // Sessions and user-scoped tokens authenticate through the users service on every route.
  attachUsers(services.tokens, services.users);
  return { services, templates, cache, recorder };
}

/**
 * The boot URL signing key lives in the store, so every replica verifies what any replica signed.
 * A key file from an older single-node Kiln is adopted as the first candidate, keeping its URLs valid.
 */
async function bootUrlKey(store: Store, dataDir: string, at: string): Promise<Buffer> {
  const legacy = await readFile(join(dataDir, 'boot-url.key'), 'utf8').then((t) => t.trim(), () => null);
  const stored = await store.ensureSecret('boot-url-key', legacy ?? randomBytes(32).toString('base64url'), at);
  return Buffer.from(stored, 'base64url');
}

const HOUR_MS = 3600_000;

function loginProvider(config: KilnConfig): LoginProviderConfig | null {
  const { provider, issuer, clientId, clientSecret } = config.login;
  if (provider === 'none' || clientId === null || clientSecret === null) return null;
  if (provider === 'github') return { kind: 'github', clientId, clientSecret };
  return { kind: 'oidc', issuer: issuer!, clientId, clientSecret, name: 'oidc' };
}

function urlOf(app: FastifyInstance): string {
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') return String(addr);
  const host = addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address === '::' ? '[::1]' : addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host}:${addr.port}`;
}

export interface StartOptions {
  /**
   * This process is worker N (1..) of `kiln serve --workers`: it relays store changes to its siblings,
   * and only worker 1 runs the singletons (proxyDHCP/TFTP, the in-process job worker, trash sweeps).
   */
  clusterWorker?: number | null;
}

/**
 * What the cluster primary does once before forking: migrate the schema and make the first admin
 * token, so workers start on a ready database and the token is printed once.
 */
export async function prepareStorage(config: KilnConfig, log: FastifyBaseLogger): Promise<{ createdAdminToken: string | null }> {
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(config, dataDir, log, { listen: false });
  try {
    const createdAdminToken = await new TokenService(store, systemClock, randomIds).bootstrapAdmin();
    if (createdAdminToken !== null) await writeFile(join(dataDir, 'admin.token'), `${createdAdminToken}\n`, { mode: 0o600 });
    return { createdAdminToken };
  } finally {
    await store.close();
  }
}

/**
 * The cluster primary's store for writing the workers' boot events, on SQLite only (PostgreSQL
 * takes concurrent writers without the page-cache resets); null otherwise.
 */
export async function openClusterEventWriter(config: KilnConfig, log: FastifyBaseLogger): Promise<Store | null> {
  if (config.database.url !== null) return null;
  return openStore(config, resolve(config.dataDir), log, { listen: false, eventWriter: true });
}

export async function startKiln(config: KilnConfig, log: FastifyBaseLogger, opts: StartOptions = {}): Promise<RunningKiln> {
  const worker = opts.clusterWorker ?? null;
  const singletons = worker === null || worker === 1;
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
    // A cluster's workers hand their events to the primary, which writes them (openClusterEventWriter).
    const store = await openStore(config, dataDir, log, { eventWriter: worker === null });
    closers.push({ name: 'store', close: () => store.close() });
    // PostgreSQL tells every process of every replica through NOTIFY; SQLite workers hear each other here.
    if (worker !== null && store.dialect === 'sqlite') {
      const unlink = linkStoreChanges(store);
      closers.push({ name: 'cluster link', close: async () => unlink() });
    }
    const blobs = await openBlobStore(config, dataDir);
    closers.push({ name: 'blobs', close: () => blobs.close() });
    // Purged artifacts wait in the trash for the retention period; every replica sweeps (idempotent).
    const sweepTrash = () => {
      blobs.emptyTrash(new Date(Date.now() - config.blobs.trashRetentionHours * HOUR_MS)).then(
        (n) => n > 0 && log.info({ deleted: n }, 'emptied the blob trash'),
        (err: unknown) => log.warn({ err }, 'emptying the blob trash failed'),
      );
    };
    if (singletons) {
      sweepTrash();
      const sweeper = setInterval(sweepTrash, HOUR_MS);
      sweeper.unref();
      closers.push({ name: 'trash sweeper', close: async () => clearInterval(sweeper) });
    }
    // One in-process job worker per Kiln, in cluster worker 1; the others only serve the jobs API.
    const jobs = await openJobs(config, dataDir, { store, blobs, clock: systemClock, ids: randomIds, log }, singletons ? {} : { inProcess: false });
    closers.push({ name: 'job queue', close: () => jobs.close() });
    const { services, templates, cache, recorder } = buildServices(store, blobs, log, {
      flushIntervalMs: config.events.flushIntervalMs,
      lastSeenResolutionMs: config.events.lastSeenResolutionMs,
      enrollUnknown: config.boot.enrollUnknown,
      users: { defaultRole: config.login.defaultRole, sessionTtlHours: config.login.sessionTtlHours },
      jobs: jobs.service,
      memoryCacheMiB: config.boot.memoryCacheMiB,
      // SQLite workers hand their boot events to the primary, the file's one event writer.
      ...(worker !== null && store.dialect === 'sqlite' ? { events: eventsViaPrimary() } : {}),
    });
    closers.push({ name: 'boot events', close: () => recorder.close() });
    const warming = cache.warm().then(
      (machines) => log.debug({ machines }, 'boot cache warmed'),
      (err: unknown) => log.warn({ err }, 'could not warm the boot cache; machines are looked up as they boot'),
    );
    closers.push({
      name: 'boot cache',
      close: async () => {
        cache.close();
        await warming;
      },
    });

    const createdAdminToken = await services.tokens.bootstrapAdmin();
    if (createdAdminToken !== null) {
      await writeFile(join(dataDir, 'admin.token'), `${createdAdminToken}\n`, { mode: 0o600 });
    }

    const urlKey = await bootUrlKey(store, dataDir, new Date().toISOString());
    const signer = config.boot.signUrls ? new UrlSigner(urlKey, config.boot.urlTtlSeconds) : null;
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
          redirectTtlSeconds: config.boot.artifactDelivery === 'redirect' ? config.boot.presignTtlSeconds : null,
          filesRoot: config.pxe.enabled ? await realpath(config.pxe.tftpRoot).catch(() => null) : null,
        },
        logger: log,
        bodyLimitBytes: config.bodyLimitBytes,
        apiDocs: config.apiDocs,
        health: async () => !stopping && (await store.ping().then(() => true)),
        bootCacheWarmed: () => cache.warmed,
        trustProxy: config.trustProxy,
        version: KILN_VERSION,
        worker,
        compat: {
          // Compat URLs expire like ncore's presigned ones (900 s), signed with the shared boot URL key.
          links: { signer: new UrlSigner(urlKey, config.boot.presignTtlSeconds), ttlSeconds: config.boot.presignTtlSeconds, presign: config.blobs.url !== null },
          ncore: config.compat.ncore.enabled ? config.compat.ncore : null,
          bucket: config.blobs.url?.bucket ?? 'kiln',
          pixiecore: config.compat.pixiecore.enabled ? config.compat.pixiecore : null,
          baas: config.compat.baas.enabled ? config.compat.baas : null,
          ims: config.compat.ims.enabled ? imsServices(store, blobs, services, config.compat.ims) : null,
          login: {
            provider: loginProvider(config),
            publicUrl: config.publicUrl,
            secureCookie: config.login.secureCookie,
            allowInsecureHttp: config.login.issuer?.startsWith('http:') ?? false,
          },
        },
      },
      config.boot.listen !== null,
    );
    const listens = [config.listen, ...(config.boot.listen !== null ? [config.boot.listen] : [])];
    for (const [i, app] of apps.entries()) {
      closers.push({ name: `listener ${i}`, close: () => app.close() });
      await app.listen({ host: listens[i]!.host, port: listens[i]!.port, backlog: config.backlog });
    }
    const urls = apps.map(urlOf);
    let pxe: RunningPxe | null = null;
    if (config.pxe.enabled && singletons) {
      // Machines reach the boot listener at publicUrl, else at the PXE server address on its port.
      const bootPort = new URL(urls[urls.length - 1]!).port;
      const httpBase = config.publicUrl ?? `http://${config.pxe.serverIp}:${bootPort}`;
      const { startPxe } = await import('./start-pxe.js');
      pxe = await startPxe(config, httpBase, services.boot, log);
      const running = pxe;
      closers.push({ name: 'pxe', close: () => running.close() });
    }
    // Closed first: running jobs may finish while the API still answers, within half the deadline.
    await jobs.start();
    closers.push({ name: 'job worker', close: () => jobs.stop(Math.min(config.jobs.shutdownGraceSeconds * 1000, config.shutdownTimeoutMs / 2)) });
    log.info({ urls, dataDir, ...describeStorage(config, dataDir), artifactDelivery: config.boot.artifactDelivery }, 'kiln is serving');

    return {
      urls,
      adminUrl: urls[0]!,
      bootUrl: urls[urls.length - 1]!,
      createdAdminToken,
      pxe: pxe?.ports ?? null,
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

/** The Cray IMS layer's services (records over the store and blob store, jobs over Kiln's queue). */
function imsServices(store: Store, blobs: BlobStore, services: Services, settings: { prefix: string; recipeBucket: string; imageBucket: string }) {
  const records = new ImsRecordsService({ store, blobs, clock: services.clock, ids: randomIds, recipes: services.recipes }, settings);
  const jobs = new ImsJobsService({ store, jobs: services.jobs, customize: services.customize, recipes: services.recipes, records, now: () => services.clock.now() });
  return { prefix: settings.prefix, records, jobs };
}
