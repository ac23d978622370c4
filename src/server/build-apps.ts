// Builds the Fastify listeners: the admin API (/api/v1, OpenAPI, docs) and the boot endpoints,
// on one app or two, as configured.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { installProblemHandlers, problemOf, sendProblem } from '../api/problem.js';
import { artifactRoutes } from '../api/routes/artifact-routes.js';
import { imageRoutes } from '../api/routes/image-routes.js';
import { machineRoutes } from '../api/routes/machine-routes.js';
import { profileRoutes } from '../api/routes/profile-routes.js';
import { tokenRoutes } from '../api/routes/token-routes.js';
import { Problem } from '../api/schemas.js';
import type { Services } from '../api/services.js';
import { bootRoutes, type BootHttpOptions } from '../boot/http/boot-routes.js';
import { ArtifactLinks, type ArtifactLinkOptions } from '../boot/http/artifact-links.js';
import { loginRoutes, type LoginRouteOptions } from '../api/login/login-routes.js';
import { imageSetupRoutes } from '../api/routes/image-setup-routes.js';
import { jobRoutes } from '../api/routes/job-routes.js';
import { recipeRoutes } from '../api/routes/recipe-routes.js';
import { customizeRoutes } from '../api/routes/customize-routes.js';
import { publicKeyRoutes } from '../api/routes/public-key-routes.js';
import { payloadRoutes } from '../api/routes/payload-routes.js';
import { userRoutes } from '../api/routes/user-routes.js';
import { baasRoutes } from '../compat/baas/baas-routes.js';
import { ncoreRoutes, type NcoreSettings } from '../compat/ncore/ncore-routes.js';
import { pixiecoreRoutes, type PixiecoreSettings } from '../compat/pixiecore/pixiecore-routes.js';
import { imsRoutes } from '../compat/ims/ims-routes.js';
import type { ImsRecordsService } from '../compat/ims/ims-records-service.js';
import type { ImsJobsService } from '../compat/ims/ims-jobs-service.js';

export interface AppOptions {
  services: Services;
  boot: Omit<BootHttpOptions, 'services'>;
  logger: FastifyBaseLogger | false;
  bodyLimitBytes: number;
  apiDocs: boolean;
  /** Liveness and readiness: false while shutting down or when the store does not answer. */
  health: () => Promise<boolean>;
  version: string;
  /** Addresses or CIDRs of load balancers whose X-Forwarded-For Kiln believes (empty: none). */
  trustProxy?: readonly string[];
  /**
   * Machines this process loaded into its boot cache at start, once that is done (null: still
   * loading); reported by /healthz, since script requests are slower until then.
   */
  bootCacheWarmed?: () => number | null;
  /** Index of this cluster worker (`kiln serve --workers N`), reported by /healthz; null: one process. */
  worker?: number | null;
  /** Compatibility layers and browser login; absent: all off. */
  compat?: CompatOptions;
}

export interface CompatOptions {
  links: ArtifactLinkOptions;
  ncore: NcoreSettings | null;
  /** Reported as ncore's ImageBucket: the S3 bucket Kiln keeps artifacts in, or `kiln`. */
  bucket: string;
  pixiecore: PixiecoreSettings | null;
  baas: { prefix: string } | null;
  /** Cray IMS: its services are built by the composition root (they need the store and blob store). */
  ims: { prefix: string; records: ImsRecordsService; jobs: ImsJobsService } | null;
  login: Omit<LoginRouteOptions, 'services'>;
}

function baseApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger === false ? undefined : opts.logger,
    logger: opts.logger === false ? false : undefined,
    bodyLimit: opts.bodyLimitBytes,
    // Multi-GB uploads take longer than Node's default 5 min request timeout.
    requestTimeout: 0,
    // Request ids in logs; iPXE sends none, so generate them.
    genReqId: (() => { let n = 0; return () => (++n).toString(36); })(),
    // Boot requests come by the thousand in a storm; their events are in the machine timeline instead.
    logController: new LogController({ disableRequestLogging: (req) => req.url.startsWith('/boot') || req.url === '/healthz' }),
    routerOptions: { maxParamLength: 256 },
    // Behind a load balancer the client address (subnet selectors, boot events) comes from
    // X-Forwarded-For, but only when the direct peer is one of the configured proxies.
    trustProxy: opts.trustProxy !== undefined && opts.trustProxy.length > 0 ? [...opts.trustProxy] : false,
    // Unknown fields are an error, not silently dropped (Fastify's default strips them).
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;
  installProblemHandlers(app);
  app.get('/healthz', { schema: { hide: true } }, async (_req, reply) => {
    if (await opts.health().catch(() => false)) return reply.send({ status: 'ok', version: opts.version, worker: opts.worker ?? null, pid: process.pid, bootCacheWarmed: opts.bootCacheWarmed?.() ?? null });
    return sendProblem(reply, problemOf('KILN_UNAVAILABLE', 'not ready (shutting down or storage unavailable)'));
  });
  return app;
}

export async function registerAdmin(app: FastifyInstance, opts: AppOptions): Promise<void> {
  app.addSchema({ ...Problem, $id: 'Problem' });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Kiln API', version: opts.version, description: 'Kiln admin API. Every request needs `Authorization: Bearer <token>`; writes need role operator or admin. Errors are application/problem+json with a stable `code` (docs/errors.md).' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(async (api) => {
    // JSON only: a text/plain body is refused with 415 rather than half-parsed.
    api.removeContentTypeParser('text/plain');
    for (const routes of [imageRoutes, machineRoutes, profileRoutes, tokenRoutes, payloadRoutes, userRoutes, imageSetupRoutes, jobRoutes, publicKeyRoutes, customizeRoutes, recipeRoutes]) await api.register(routes, { services: opts.services });
    // Own scope: uploads replace the JSON body parser with a raw stream.
    await api.register(artifactRoutes, { services: opts.services });
    api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  }, { prefix: '/api/v1' });
  if (opts.apiDocs) await app.register(swaggerUi, { routePrefix: '/api/docs' });
  const compat = opts.compat;
  if (compat !== undefined) {
    const hidden = async (scope: FastifyInstance) => {
      // Compat APIs are documented by their originals, not in Kiln's OpenAPI document.
      scope.addHook('onRoute', (route) => {
        route.schema = { ...(route.schema ?? {}), hide: true };
      });
    };
    const login = { ...compat.login, services: opts.services };
    await app.register(async (scope) => {
      await hidden(scope);
      await scope.register(loginRoutes, { ...login, prefix: '/auth' });
      if (compat.baas !== null) await scope.register(baasRoutes, { services: opts.services, login, prefix: compat.baas.prefix });
      if (compat.ims !== null) {
        await scope.register(imsRoutes, { services: opts.services, records: compat.ims.records, jobs: compat.ims.jobs, health: opts.health, version: opts.version, prefix: compat.ims.prefix });
      }
    });
  }
}

export async function registerBoot(app: FastifyInstance, opts: AppOptions): Promise<void> {
  await app.register(async (boot) => {
    // Boot endpoints are not part of the admin API document.
    boot.addHook('onRoute', (route) => {
      route.schema = { ...(route.schema ?? {}), hide: true };
    });
    await boot.register(bootRoutes, { ...opts.boot, services: opts.services });
    const compat = opts.compat;
    if (compat !== undefined) {
      const links = new ArtifactLinks(opts.services, compat.links);
      if (compat.ncore !== null) await boot.register(ncoreRoutes, { services: opts.services, links, settings: compat.ncore, publicUrl: opts.boot.publicUrl, bucket: compat.bucket });
      if (compat.pixiecore !== null) await boot.register(pixiecoreRoutes, { services: opts.services, links, settings: compat.pixiecore, publicUrl: opts.boot.publicUrl });
    }
  });
}

/** One app for both, or [admin, boot] when the boot path has its own listener. */
export async function buildApps(opts: AppOptions, split: boolean): Promise<FastifyInstance[]> {
  const main = baseApp(opts);
  await registerAdmin(main, opts);
  if (!split) {
    await registerBoot(main, opts);
    return [main];
  }
  const boot = baseApp({ ...opts, apiDocs: false });
  await registerBoot(boot, opts);
  return [main, boot];
}
