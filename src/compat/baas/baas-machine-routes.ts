// BAAS machines: inventory, the per-machine disk image, the boot queue (enqueue / the management OS's
// pop) and machine-scoped tokens, onto Kiln's machines, images and image setups.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../api/services.js';
import { KilnError } from '../../core/kiln-error.js';
import { parseMac, tryParseMac } from '../../core/mac.js';
import type { Labels, Machine } from '../../core/types.js';
import { access, checkRole, type RouteAccess } from './baas-access.js';
import { baasImageOf, createDiskImage, findImage, frozenImagesOf, receiveDisk, sendDisk } from './baas-disks.js';
import { as, BaasError, bool, readJson, sendText, str } from './baas-http.js';
import { dashedMac, LABEL, parseMachine, toBaasBootSetup, toBaasFrozen, toBaasMachine, toBaasSetup, type MachineFields } from './baas-models.js';

function macParam(req: FastifyRequest, bad: string): string {
  const mac = tryParseMac((req.params as { mac: string }).mac);
  if (mac === null) throw new BaasError(400, bad);
  return mac;
}

async function machineByMac(s: Services, mac: string, status: number, notFound: string): Promise<Machine> {
  return as(['KILN_MACHINE_NOT_FOUND'], status, notFound, () => s.machines.get(mac));
}

function machineLabels(current: Labels, f: MachineFields, image: string | null): Labels {
  const labels: Labels = { ...current, [LABEL.managed]: String(f.managed) };
  if (image !== null) labels[LABEL.machineImage] = image;
  return labels;
}

/** The machine's disk image UUID; a machine made through Kiln's own API gets one on first use. */
async function machineImageOf(s: Services, m: Machine): Promise<string> {
  const uuid = m.labels[LABEL.machineImage];
  if (uuid !== undefined) return uuid;
  const mac = m.macs[0]!;
  const image = await createDiskImage(s, {
    description: mac,
    labels: { [LABEL.type]: 'machine', [LABEL.machine]: dashedMac(mac), [LABEL.filesystem]: 'ext4', [LABEL.compression]: 'none', [LABEL.fileType]: 'raw' },
    owner: null,
  });
  await s.machines.update(m.id, { labels: { ...m.labels, [LABEL.machineImage]: image.name } }, undefined);
  return image.name;
}

async function createMachine(s: Services, f: MachineFields): Promise<Machine> {
  const m = await s.machines.create({ macs: [f.mac], hostname: f.hostname, arch: f.arch, labels: machineLabels({}, f, null) });
  try {
    await machineImageOf(s, m);
  } catch (err) {
    // Without its disk image the machine cannot take a boot setup: undo rather than keep half of it.
    await s.machines.delete(m.id, undefined).catch(() => undefined);
    throw err;
  }
  return s.machines.get(m.id);
}

/** Machine fields from a MachineModel body, the MAC and Name checked as Kiln stores them. */
async function readMachine(req: FastifyRequest): Promise<MachineFields> {
  const bad = 'invalid machine given';
  const f = parseMachine(await readJson(req, bad), bad);
  const mac = tryParseMac(f.mac);
  if (mac === null) throw new BaasError(400, 'invalid mac address');
  return { ...f, mac };
}

export function registerMachineRoutes(app: FastifyInstance, s: Services): void {
  const own = (rule: RouteAccess): RouteAccess => ({ ...rule, machine: 'own-mac' });

  app.get('/machine/:mac', { preHandler: checkRole(s, access.all) }, async (req) => {
    const mac = macParam(req, 'invalid mac address');
    // The original answers an unknown MAC with 500.
    return toBaasMachine(await machineByMac(s, mac, 500, "couldn't get machine"));
  });

  app.get('/machines', { preHandler: checkRole(s, access.all) }, async () => {
    const out: Machine[] = [];
    for (let after: string | undefined; ;) {
      const page = await s.machines.list({ after, limit: 1000 });
      out.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    return out.map(toBaasMachine);
  });

  app.post('/machine', { preHandler: checkRole(s, access.admin) }, async (req, reply) => {
    const f = await readMachine(req);
    return reply.code(201).send(toBaasMachine(await createMachine(s, f)));
  });

  // gorm's Save: update the machine with this MAC, or create it.
  app.put('/machine', { preHandler: checkRole(s, access.admin) }, async (req) => {
    const f = await readMachine(req);
    const existing = await s.machines.get(f.mac).catch((err: unknown) => {
      if (err instanceof KilnError && err.code === 'KILN_MACHINE_NOT_FOUND') return null;
      throw err;
    });
    if (existing === null) return toBaasMachine(await createMachine(s, f));
    const updated = await s.machines.update(existing.id, { hostname: f.hostname, arch: f.arch, labels: machineLabels(existing.labels, f, null) }, undefined);
    return toBaasMachine(updated);
  });

  app.delete('/machine/:mac', { preHandler: checkRole(s, access.adminOnly) }, async (req, reply) => {
    const m = await machineByMac(s, macParam(req, 'Invalid mac'), 500, 'Failed to delete machine');
    const image = m.labels[LABEL.machineImage];
    await s.machines.delete(m.id, undefined);
    if (image !== undefined) {
      // The original removes the machine's disk directory: here the image is purged and its blob collected.
      await s.images.delete(image, undefined).catch((err: unknown) => {
        if (!(err instanceof KilnError && err.code === 'KILN_IMAGE_NOT_FOUND')) throw err;
      });
      await s.images.purge(image).catch((err: unknown) => {
        if (!(err instanceof KilnError && err.code === 'KILN_IMAGE_NOT_FOUND')) throw err;
      });
    }
    return sendText(reply, 200, 'Successfully deleted the machine');
  });

  // The machine's own disk, raw body, overwritten in place (the original: temp file + rename).
  app.post('/machine/:mac/disk/:uuid', { preHandler: checkRole(s, own(access.mod)) }, async (req, reply) => {
    const m = await machineByMac(s, macParam(req, 'Invalid mac address'), 400, 'Cannot find the machine in the database');
    const uuid = (req.params as { uuid: string }).uuid;
    if (uuid !== (await machineImageOf(s, m))) throw new BaasError(404, '404 page not found');
    const artifact = await receiveDisk(s, req, false);
    await s.setups.disks.replaceLatest(uuid, artifact);
    return reply.code(200).send();
  });

  app.get('/machine/:mac/disk/:uuid', { preHandler: checkRole(s, own(access.mod)) }, async (req, reply) => {
    const m = await machineByMac(s, macParam(req, 'Invalid mac address'), 400, 'Cannot find the machine in the database');
    const uuid = (req.params as { uuid: string }).uuid;
    if (uuid !== (await machineImageOf(s, m))) throw new BaasError(404, '404 page not found');
    const image = await findImage(s, uuid, new BaasError(404, '404 page not found'));
    await sendDisk(s, req, reply, image, await s.setups.disks.latest(uuid), 'application/octet-stream');
  });

  app.get('/machine/:mac/image', { preHandler: checkRole(s, own(access.mod)) }, async (req, reply) => {
    const m = await machineByMac(s, macParam(req, 'Invalid mac address'), 400, 'Cannot find the machine in the database');
    const uuid = await machineImageOf(s, m);
    const image = await findImage(s, uuid, new BaasError(404, 'Cannot download the image'));
    await sendDisk(s, req, reply, image, await s.setups.disks.latest(uuid));
  });

  // The management OS asks what to write: the oldest queued setup, its frozen versions, and the machine image.
  app.get('/machine/:mac/boot', { preHandler: checkRole(s, own(access.modOnly)) }, async (req) => {
    const m = await machineByMac(s, macParam(req, 'mac address is not found'), 400, 'Cannot find the machine in the database');
    const machineImage = await machineImageOf(s, m);
    const next = await s.setups.pop(m.id);
    if (next === null) throw new BaasError(404, 'No boot setup found');
    const images = await frozenImagesOf(s, next.setup);
    const own = await findImage(s, machineImage, new BaasError(500, 'Failed to get the next boot setup'));
    images.push(toBaasFrozen(await baasImageOf(s, own), '0', false));
    return toBaasSetup(next.setup, images);
  });

  app.post('/machine/:mac/boot', { preHandler: checkRole(s, access.all) }, async (req) => {
    const m = await machineByMac(s, macParam(req, 'mac address is not found'), 400, 'Cannot find the machine in the database');
    const bad = 'Invalid machine given';
    const body = await readJson(req, bad);
    const setupId = str(body, 'SetupUUID', bad);
    const update = bool(body, 'Update', bad);
    const setup = await as(['KILN_SETUP_NOT_FOUND'], 400, 'cannot add the bootsetup to the machine', () => s.setups.get(setupId));
    const a = req.baas!;
    // A plain user queues only their own setups: the machine then reads every image the setup holds.
    if (a.kind === 'user' && a.role === 'user' && setup.owner !== a.name) throw new BaasError(403, 'user does not own this image setup');
    await as(['KILN_SETUP_NOT_FOUND'], 400, 'cannot add the bootsetup to the machine', () => s.setups.enqueue({ machineId: m.id, setup: setup.id, update, actor: a.actor }));
    return toBaasBootSetup(m.macs[0]!, setup.id, update);
  });

  // Kiln addition: the token a machine's management OS uses (it replaces the original's `type: system` header).
  app.post('/machine/:mac/token', { preHandler: checkRole(s, access.adminOnly) }, async (req, reply) => {
    const m = await machineByMac(s, parseMac((req.params as { mac: string }).mac), 400, 'Cannot find the machine in the database');
    const { token, secret } = await s.tokens.create(`baas.machine.${m.macs[0]!.replaceAll(':', '')}`, 'operator', { machineId: m.id });
    return reply.code(201).send({ Token: secret, ID: token.id, Name: token.name, MacAddress: m.macs[0] });
  });
}
