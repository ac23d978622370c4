// ncore-api v2 (CoreWeave) translated onto Kiln's services: the same paths, JSON field names, status
// codes and `{"errors": [...]}` bodies. Reads are open like Kiln's boot endpoints (booting machines
// call them); writes need a Kiln token with role operator, which ncore did not ask for.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { requireRole } from '../../api/auth.js';
import { toProblem } from '../../api/problem.js';
import type { Services } from '../../api/services.js';
import type { ArtifactLinks } from '../../boot/http/artifact-links.js';
import { requestBaseUrl } from '../../boot/http/request-base-url.js';
import { renderNoPlanScript } from '../../boot/ipxe/render-ipxe-script.js';
import type { Machine, Payload } from '../../core/types.js';
import { bareMac, ncoreHostname, parseNcoreNode, type NcoreNode } from './ncore-mac.js';
import { NcoreError, NcoreImages, checkKey, type IpxeConfig, type IpxeDbConfig, type NcoreImage, type NcoreKey } from './ncore-images.js';
import { renderNcoreMenu, type NcoreMenuImage } from './ncore-menu.js';

export interface NcoreSettings {
  defaultImageType: string;
  defaultImageTag: string;
  defaultPayload: string;
}

export interface NcoreRouteOptions {
  services: Services;
  links: ArtifactLinks;
  settings: NcoreSettings;
  publicUrl: string | null;
  bucket: string;
}

interface NodePayload {
  PayloadId: string;
  PayloadDirectory: string;
  MacAddress: string;
}

const INVALID_MAC = 'Invalid mac_address';

/** Go's encoding/json matches object keys case-insensitively; ncore clients rely on it. */
function field(body: unknown, name: string): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const o = body as Record<string, unknown>;
  if (name in o) return o[name];
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : o[key];
}

/** Required non-empty string fields, all missing ones reported together as ncore does. */
function strings<K extends string>(body: unknown, names: readonly K[]): Record<K, string> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new NcoreError(400, ['request body must be a JSON object']);
  const out = {} as Record<K, string>;
  const missing: string[] = [];
  for (const n of names) {
    const v = field(body, n);
    if (typeof v === 'string' && v !== '') out[n] = v;
    else missing.push(`missing field: ${n}`);
  }
  if (missing.length > 0) throw new NcoreError(400, missing);
  return out;
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  // ncore pretty-prints with tabs.
  return reply.code(status).type('application/json').send(`${JSON.stringify(body, null, '\t')}\n`);
}

export const ncoreRoutes: FastifyPluginAsync<NcoreRouteOptions> = async (app, opts) => {
  const { services: s, settings } = opts;
  const images = new NcoreImages(s, opts.links, opts.bucket);
  const operator = { preHandler: requireRole(s.tokens, 'operator') };
  const base = (req: FastifyRequest) => requestBaseUrl(req, opts.publicUrl);
  const defaultKey: NcoreKey = { type: settings.defaultImageType, tag: settings.defaultImageTag };

  // Every body arrives as text; handlers check the media type themselves (ncore's exact-match rule).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof NcoreError) return json(reply, err.status, { errors: err.errors });
    const p = toProblem(err);
    if (p.status >= 500) req.log.error({ err }, 'ncore-api request failed');
    return json(reply, p.status, { errors: [p.detail !== '' ? p.detail : p.title] });
  });

  /** ncore's PUT handlers take exactly `application/json`; anything else is 415. */
  function jsonBody(req: FastifyRequest): unknown {
    if (req.headers['content-type'] !== 'application/json') throw new NcoreError(415, ['Content-Type header is not application/json']);
    try {
      return JSON.parse(typeof req.body === 'string' ? req.body : '');
    } catch (err) {
      throw new NcoreError(400, [`request body is not valid JSON: ${(err as Error).message}`]);
    }
  }

  function node(raw: string, hostname: boolean): NcoreNode {
    const n = parseNcoreNode(raw, { hostname });
    if (n === null) throw new NcoreError(400, [INVALID_MAC]);
    return n;
  }

  function nodePayload(p: Payload | null, name: string, mac: string): NodePayload {
    return { PayloadId: p?.name ?? name, PayloadDirectory: p?.directory ?? name, MacAddress: bareMac(mac) };
  }

  async function availablePayloads(): Promise<string> {
    return `Available Payloads: [${(await s.payloads.list()).map((p) => p.name).join(' ')}]`;
  }

  /** The machine a write names: a MAC (created when unknown), or a host name matching exactly one machine. */
  async function machineFor(n: NcoreNode, create: boolean): Promise<Machine | null> {
    if (n.kind === 'hostname') {
      const found = await s.machines.findByMacSuffix(n.suffix, 2);
      return found.length === 1 ? found[0]! : null;
    }
    const m = await s.machines.get(n.mac).catch(() => null);
    if (m !== null || !create) return m;
    return s.machines.create({ macs: [n.mac] });
  }

  app.get('/', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ncore-api'));

  // ---------------------------------------------------------------- payloads

  app.get('/api/v2/payload/:mac', async (req, reply) => {
    const raw = (req.params as { mac: string }).mac;
    const n = node(raw, true);
    if (n.kind === 'hostname') {
      for (const m of await s.machines.findByMacSuffix(n.suffix, 16)) {
        if (m.payload === null) continue;
        const p = await s.payloads.find(m.payload);
        return json(reply, 200, nodePayload(p, m.payload, m.macs.find((x) => x.endsWith(n.suffix)) ?? m.macs[0]!));
      }
      throw new NcoreError(400, [`payload not found for hostname: ${raw}`]);
    }
    const { machine } = await s.boot.identify({ mac: n.mac, address: req.ip });
    if (machine !== null && machine.payload !== null) {
      return json(reply, 200, nodePayload(await s.payloads.find(machine.payload), machine.payload, n.mac));
    }
    // Auto-enrolment: the payload of the profile the machine's groups (subnet defaults) give it, else the default.
    const planned = machine !== null ? (await s.boot.explain(machine, req.ip)).plan?.profile.payload ?? null : null;
    const name = planned ?? settings.defaultPayload;
    const p = await s.payloads.find(name);
    if (machine !== null && p !== null) await s.payloads.assign(machine, p.name, undefined);
    return json(reply, 200, { PayloadId: name, PayloadDirectory: p?.directory ?? name, MacAddress: n.bare } satisfies NodePayload);
  });

  app.put('/api/v2/payload/:mac/:payloadId', operator, async (req, reply) => {
    const { mac, payloadId } = req.params as { mac: string; payloadId: string };
    const n = node(mac, true);
    const p = await s.payloads.find(payloadId).catch(() => null);
    if (p === null) throw new NcoreError(400, ["PayloadId doesn't exist", await availablePayloads()]);
    const m = await machineFor(n, true);
    if (m === null) throw new NcoreError(400, [INVALID_MAC]);
    // One payload per machine (ncore's policy): assigning replaces the previous one.
    const after = await s.payloads.assign(m, p.name, undefined);
    return json(reply, 200, [nodePayload(p, p.name, n.kind === 'mac' ? n.mac : after.macs[0]!)]);
  });

  app.delete('/api/v2/payload/:mac/:payloadId', operator, async (req, reply) => {
    const { mac, payloadId } = req.params as { mac: string; payloadId: string };
    const n = node(mac, true);
    const m = await machineFor(n, false);
    if (m === null || m.payload !== payloadId) throw new NcoreError(404, [`payload ${payloadId} is not assigned to ${mac}`]);
    await s.payloads.assign(m, null, undefined);
    // What remains assigned: nothing (ncore answers a nil list).
    return json(reply, 200, null);
  });

  app.get('/api/v2/payload/config/:payloadId', async (req, reply) => {
    const p = await s.payloads.find((req.params as { payloadId: string }).payloadId).catch(() => null);
    if (p === null || Object.keys(p.parameters).length === 0) return json(reply, 404, { errors: [] });
    return json(reply, 200, p.parameters);
  });

  // ---------------------------------------------------------------- iPXE

  async function configFor(req: FastifyRequest, m: Machine | null, mac: string): Promise<IpxeConfig> {
    let found: NcoreImage | null = null;
    if (m !== null) {
      found = await images.ofMachine(m);
      if (found === null) {
        const plan = (await s.boot.explain(m, req.ip)).plan;
        if (plan?.channel != null) found = await images.find({ type: plan.image, tag: plan.channel });
      }
    }
    found ??= await images.find(defaultKey);
    const config: IpxeConfig = found !== null
      ? await images.config(base(req), found, mac)
      : {
          ImageName: '', ImageBucket: opts.bucket, ImageTag: defaultKey.tag, ImageType: defaultKey.type, ImageInitrdUrlHttp: '', ImageInitrdUrlHttps: '',
          ImageKernelUrlHttp: '', ImageKernelUrlHttps: '', ImageRootFsUrlHttp: '', ImageRootFsUrlHttps: '', ImageCmdline: '',
        };
    return { ...config, Hostname: ncoreHostname(mac) };
  }

  app.get('/api/v2/ipxe/config/:mac', async (req, reply) => {
    const n = node((req.params as { mac: string }).mac, true);
    const m = n.kind === 'mac' ? await s.machines.get(n.mac).catch(() => null) : ((await s.machines.findByMacSuffix(n.suffix, 1))[0] ?? null);
    const mac = n.kind === 'mac' ? n.mac : (m?.macs.find((x) => x.endsWith(n.suffix)) ?? `00:00:00:${n.suffix}`);
    // Unlike the template, the config endpoint does not enroll (as ncore).
    return json(reply, 200, await configFor(req, m, mac));
  });

  app.get('/api/v2/ipxe/template/:mac', async (req, reply) => {
    const n = node((req.params as { mac: string }).mac, false);
    if (n.kind !== 'mac') throw new NcoreError(400, [INVALID_MAC]);
    const b = base(req);
    const { machine, outcome } = await s.boot.decide({ mac: n.mac, address: req.ip });
    let menu: NcoreMenuImage | null = null;
    if (outcome.plan !== null) {
      menu = await images.menuImage(b, outcome.plan.version, outcome.plan.profile, n.mac);
      // ncore enrolls a node at its first menu: the subnet default becomes the node's own image.
      if (machine !== null && machine.profile === null && outcome.plan.source.kind === 'group' && outcome.plan.channel !== null) {
        await s.machines.assign(machine.id, outcome.plan.profile.name, undefined).catch((err: unknown) => req.log.warn({ err }, 'ncore: could not record the node image'));
      }
    } else {
      const fallback = await images.find(defaultKey);
      if (fallback !== null) {
        menu = await images.menuImage(b, fallback.version, fallback.profile, n.mac);
        if (machine !== null && fallback.profile !== null && machine.profile === null) {
          await s.machines.assign(machine.id, fallback.profile.name, undefined).catch((err: unknown) => req.log.warn({ err }, 'ncore: could not record the node image'));
        }
      }
    }
    reply.type('text/plain; charset=utf-8').header('Cache-Control', 'no-store');
    if (menu === null) return reply.send(renderNoPlanScript({ baseUrl: b, mac: n.mac, reason: `${outcome.reason}; and the default ncore image ${defaultKey.tag}/${defaultKey.type} does not exist`, delaySeconds: 30 }));
    return reply.send(renderNcoreMenu([menu]));
  });

  app.put('/api/v2/ipxe/', operator, async (req, reply) => {
    const body = strings(jsonBody(req), ['ImageTag', 'ImageType', 'MacAddress'] as const);
    const n = node(body.MacAddress, false);
    if (n.kind !== 'mac') throw new NcoreError(400, [INVALID_MAC]);
    const key = checkKey({ tag: body.ImageTag, type: body.ImageType });
    const found = await images.find(key);
    if (found === null || found.profile === null) throw new NcoreError(400, ["Image doesn't exist", await images.available()]);
    const m = await s.machines.get(n.mac).catch(() => null);
    // ncore updates an existing node_images row only, and answers 500 when there is none.
    if (m === null) throw new NcoreError(500, ['mac_address not in database']);
    await s.machines.assign(m.id, found.profile.name, undefined);
    return json(reply, 200, { ImageTag: key.tag, ImageType: key.type, MacAddress: n.bare });
  });

  app.get('/api/v2/ipxe/images/', async (_req, reply) => reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n'));

  const register = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = jsonBody(req);
    const named = (req.params as { imageName?: string }).imageName;
    const withName = named !== undefined && field(raw, 'ImageName') === undefined && raw !== null && typeof raw === 'object' ? { ...raw, ImageName: named } : raw;
    const db: IpxeDbConfig = strings(withName, ['ImageName', 'ImageCmdline', 'ImageBucket', 'ImageTag', 'ImageType'] as const);
    const registered = await images.register(db, `ncore:${req.token?.name ?? 'unknown'}`);
    return json(reply, 200, await images.config(base(req), registered, null));
  };
  app.put('/api/v2/ipxe/images/', operator, register);
  app.put('/api/v2/ipxe/images/:imageName', operator, register);

  app.delete('/api/v2/ipxe/images/', operator, async (req, reply) => {
    const body = strings(jsonBody(req), ['ImageTag', 'ImageType'] as const);
    return json(reply, 200, await images.remove(checkKey({ tag: body.ImageTag, type: body.ImageType })));
  });

  app.get('/api/v2/ipxe/s3/', async (_req, reply) => json(reply, 404, { errors: ['image name required'] }));
  app.get('/api/v2/ipxe/s3/:imageName', async (req, reply) => {
    const name = (req.params as { imageName: string }).imageName;
    if (name === '' || name.includes('/')) return json(reply, 404, { errors: ['image name required'] });
    const v = await images.versionNamed(name);
    const u = v === null ? null : await images.urls(base(req), v, null);
    if (u?.initrd == null || u.kernel === null || u.rootfs === null) throw new NcoreError(400, [`no initrd, kernel and rootfs for image ${name}`]);
    return reply
      .type('application/text')
      .send(`imageInitrdUrlHttps: ${u.initrd.https}\nimageKernelUrlHttps: ${u.kernel.https}\nimageRootFsUrlHttps: ${u.rootfs.https}\n`);
  });

  // ---------------------------------------------------------------- nodes

  // A booted node reports itself, like Kiln's own /boot/heartbeat: no token.
  app.put('/api/v2/nodes/:mac/heartbeat', async (req, reply) => {
    if (req.headers['content-type'] !== 'application/json') return reply.code(415).type('text/plain; charset=utf-8').send('Content-Type header is not application/json\n');
    const n = node((req.params as { mac: string }).mac, false);
    if (n.kind !== 'mac') throw new NcoreError(400, [INVALID_MAC]);
    const body = jsonBody(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new NcoreError(400, ['request body must be a JSON object']);
    const hostname = field(body, 'hostname');
    const ip = field(body, 'ip_address');
    if ((hostname !== undefined && typeof hostname !== 'string') || (ip !== undefined && typeof ip !== 'string')) {
      throw new NcoreError(400, ['hostname and ip_address must be strings']);
    }
    const { machine } = await s.boot.identify({ mac: n.mac, address: req.ip });
    if (machine === null) throw new NcoreError(404, ['unknown machine, and enrollment of unknown machines is off']);
    await s.boot.heartbeat(n.mac, { hostname: (hostname ?? '').slice(0, 253), ip_address: (ip ?? '').slice(0, 64), address: req.ip });
    return json(reply, 200, { mac_address: n.bare, hostname: hostname ?? '', ip_address: ip ?? '' });
  });
};
