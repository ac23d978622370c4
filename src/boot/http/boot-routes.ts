// The boot listener: read-only, no token. /boot.ipxe chains to /boot/ipxe (this machine's script);
// artifacts under /boot/artifacts with Range support; callbacks and heartbeats record boot events.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../../core/kiln-error.js';
import { tryParseMac } from '../../core/mac.js';
import { CALLBACK_STATES, type CallbackState } from '../../core/services/boot-service.js';
import type { BootFacts } from '../../core/types.js';
import { tryNormalizeArch, tryNormalizeHostname, tryNormalizeSerial, tryNormalizeUuid } from '../../core/validate.js';
import type { Services } from '../../api/services.js';
import { problemOf, sendProblem } from '../../api/problem.js';
import { buildScriptModel, renderBootScript, renderChainScript, renderNoPlanScript } from '../ipxe/render-ipxe-script.js';
import type { TemplateRenderer } from '../ipxe/template-renderer.js';
import { PlanScripts } from '../ipxe/plan-scripts.js';
import type { UrlSigner } from '../url-signer.js';
import { requestBaseUrl } from './request-base-url.js';
import { ScriptCache } from './script-cache.js';
import { sendArtifact, storedArtifact } from './send-artifact.js';
import { resolveTftpPath } from '../../pxe/tftp/resolve-tftp-path.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

export interface BootHttpOptions {
  services: Services;
  templates: TemplateRenderer;
  /** Absolute URL machines use to reach this listener; when null, taken from each request's Host. */
  publicUrl: string | null;
  signer: UrlSigner | null;
  retries: number;
  retryDelaySeconds: number;
  noPlanDelaySeconds: number;
  /** Redirect artifact fetches to presigned blob-store URLs valid this long; null streams them through Kiln. */
  redirectTtlSeconds: number | null;
  /** Real path of the boot binaries directory served at /boot/files/ (UEFI HTTP boot); null: not served. */
  filesRoot: string | null;
}

const SHA256 = /^[0-9a-f]{64}$/;
const BOOT_FILE = /^[A-Za-z0-9._-]{1,128}$/;
const PLATFORM = /^[a-z0-9_-]{1,32}$/;

type Query = Record<string, string | string[] | undefined>;

function one(q: Query, key: string): string | undefined {
  const v = q[key];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/** Facts a machine reports are untrusted: keep what validates, drop the rest (a bad serial must not stop a boot). */
export function parseBootFacts(q: Query, address: string | undefined): { facts: BootFacts; otherMacs: string[] } | null {
  const bootmac = tryParseMac(one(q, 'bootmac') ?? '');
  const mac = tryParseMac(one(q, 'mac') ?? '');
  const primary = bootmac ?? mac;
  if (primary === null) return null;
  const opt = <T>(v: string | undefined, f: (s: string) => T | null): T | undefined => (v === undefined ? undefined : (f(v) ?? undefined));
  const platform = one(q, 'platform');
  return {
    facts: {
      mac: primary,
      uuid: opt(one(q, 'uuid'), tryNormalizeUuid),
      serial: opt(one(q, 'serial'), tryNormalizeSerial),
      hostname: opt(one(q, 'hostname'), tryNormalizeHostname),
      arch: opt(one(q, 'buildarch') ?? one(q, 'arch'), tryNormalizeArch),
      platform: platform !== undefined && PLATFORM.test(platform) ? platform : undefined,
      address,
    },
    otherMacs: mac !== null && mac !== primary ? [mac] : [],
  };
}

export const bootRoutes: FastifyPluginAsync<BootHttpOptions> = async (app, opts) => {
  const { services: s, signer } = opts;

  // Callbacks come from iPXE, shell scripts and wget: accept any small body and ignore it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, _body, done) => done(null, undefined));

  const baseUrl = (req: FastifyRequest): string => requestBaseUrl(req, opts.publicUrl);
  const scripts = new ScriptCache();
  const plans = new PlanScripts();
  const artifactPath = (a: { sha256: string; name: string }) => `/boot/artifacts/${a.sha256}/${encodeURIComponent(a.name)}`;

  function text(reply: FastifyReply, body: string): FastifyReply {
    return reply.type('text/plain; charset=utf-8').header('Cache-Control', 'no-store').send(body);
  }

  app.get('/boot.ipxe', async (req, reply) => text(reply, renderChainScript(baseUrl(req))));

  app.get('/boot/ipxe', async (req, reply) => {
    const parsed = parseBootFacts(req.query as Query, req.ip);
    if (parsed === null) {
      // iPXE prints the body of a failed fetch: say what is wrong in plain words.
      return reply.code(400).type('text/plain; charset=utf-8').send('Kiln: /boot/ipxe needs ?mac=<MAC address> (use /boot.ipxe to chain here)\n');
    }
    const { facts, otherMacs } = parsed;
    const base = baseUrl(req);
    const { machine, outcome } = await s.boot.decide(facts, otherMacs);
    if (machine === null || outcome.plan === null) {
      return text(reply, renderNoPlanScript({ baseUrl: base, mac: facts.mac, reason: outcome.reason, delaySeconds: opts.noPlanDelaySeconds }));
    }
    const template = outcome.plan.profile.template;
    if (template === null && signer === null) {
      return text(reply, plans.render(machine, outcome.plan, facts.mac, {
        baseUrl: base,
        retries: opts.retries,
        retryDelaySeconds: opts.retryDelaySeconds,
        artifactUrl: (a, mac) => `${base}${artifactPath(a)}?mac=${mac}`,
      }));
    }
    // Templates may show anything of the machine: reuse a script only for the same machine revision.
    // Signed URLs expire, so only unsigned scripts can be reused.
    const cacheKey = signer === null ? ScriptCache.keyOf(machine, outcome.plan, base, facts.mac) : null;
    const cached = cacheKey !== null ? scripts.get(machine.id, cacheKey) : undefined;
    if (cached !== undefined) return text(reply, cached);
    const now = s.clock.now().getTime();
    const model = buildScriptModel(machine, outcome.plan, {
      baseUrl: base,
      mac: facts.mac,
      retries: opts.retries,
      retryDelaySeconds: opts.retryDelaySeconds,
      artifactUrl: (a) => {
        const path = artifactPath(a);
        const q = `mac=${facts.mac}`;
        return `${base}${path}?${q}${signer !== null ? `&${signer.sign(`${path}?${q}`, now)}` : ''}`;
      },
    });
    const script = template === null ? renderBootScript(model) : await opts.templates.render(template, model);
    if (cacheKey !== null) scripts.set(machine.id, cacheKey, script);
    return text(reply, script);
  });

  async function artifact(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { sha256, name } = req.params as { sha256: string; name: string };
    const q = req.query as Query;
    const mac = tryParseMac(one(q, 'mac') ?? '');
    if (signer !== null) {
      const signed = `/boot/artifacts/${sha256}/${encodeURIComponent(name)}?mac=${one(q, 'mac') ?? ''}`;
      if (!signer.verify(signed, one(q, 'exp'), one(q, 'sig'), s.clock.now().getTime())) {
        throw new KilnError('KILN_BOOT_URL_INVALID_SIGNATURE');
      }
    }
    if (!SHA256.test(sha256)) throw new KilnError('KILN_ARTIFACT_NOT_FOUND', 'no such artifact');
    const a = await s.artifacts.get(sha256);
    if (opts.redirectTtlSeconds !== null) {
      const location = await s.artifacts.presignedUrl(a.sha256, opts.redirectTtlSeconds);
      if (mac !== null && req.method === 'GET') s.boot.artifactServed(mac, { name, sha256, status: 302, bytes: 0, ranges: null, complete: true });
      return reply.code(302).header('location', location).header('cache-control', 'no-store').send();
    }
    reply.hijack();
    const result = await sendArtifact(req.raw, reply.raw, storedArtifact(s.artifacts, a));
    if (mac !== null && req.method === 'GET' && result.status !== 304) {
      s.boot.artifactServed(mac, { name, sha256, status: result.status, bytes: result.bytes, ranges: result.ranges, complete: result.complete });
    }
  }
  // HEAD comes from Fastify's automatic HEAD route over this GET.
  app.get('/boot/artifacts/:sha256/:name', artifact);

  // Boot binaries (iPXE) for UEFI HTTP boot clients, read-only from the same directory TFTP serves.
  const filesRoot = opts.filesRoot;
  if (filesRoot !== null) {
    app.get('/boot/files/:name', async (req, reply) => {
      const { name } = req.params as { name: string };
      const found = BOOT_FILE.test(name) ? await resolveTftpPath(filesRoot, name) : { kind: 'not-found' as const };
      if (found.kind !== 'file') return sendProblem(reply, problemOf('KILN_ROUTE_NOT_FOUND', `no boot file ${JSON.stringify(name.slice(0, 80))}`));
      const info = await stat(found.path);
      if (!info.isFile()) return sendProblem(reply, problemOf('KILN_ROUTE_NOT_FOUND', `no boot file ${JSON.stringify(name)}`));
      return reply.type(name.endsWith('.efi') ? 'application/efi' : 'application/octet-stream').header('content-length', info.size).send(createReadStream(found.path));
    });
  }

  async function report(req: FastifyRequest, reply: FastifyReply, kind: 'callback' | 'heartbeat'): Promise<FastifyReply> {
    const q = req.query as Query;
    const mac = tryParseMac(one(q, 'mac') ?? '');
    if (mac === null) return sendProblem(reply, problemOf('KILN_MAC_INVALID', 'pass ?mac=<MAC address>'));
    const detail = { address: req.ip };
    if (kind === 'heartbeat') {
      const m = await s.boot.heartbeat(mac, detail);
      return reply.send({ machine: m.id, recorded: 'heartbeat' });
    }
    const state = one(q, 'state') ?? 'booted';
    if (!CALLBACK_STATES.includes(state as CallbackState)) {
      return sendProblem(reply, problemOf('KILN_REQUEST_INVALID', `state must be one of ${CALLBACK_STATES.join(', ')}`));
    }
    const m = await s.boot.callback(mac, state as CallbackState, detail);
    return reply.send({ machine: m.id, recorded: 'callback', state });
  }
  for (const method of ['GET', 'POST'] as const) {
    app.route({ method, url: '/boot/callback', handler: (req, reply) => report(req, reply, 'callback') });
    app.route({ method, url: '/boot/heartbeat', handler: (req, reply) => report(req, reply, 'heartbeat') });
  }
};
