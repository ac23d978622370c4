// BAAS images: create (with an empty version 0), metadata, delete, streamed multipart uploads (new
// version or overwrite of the latest) and downloads, onto Kiln images named by the BAAS UUID.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../api/services.js';
import { KilnError } from '../../core/kiln-error.js';
import type { Image } from '../../core/types.js';
import { access, checkImageAccess, checkRole, type BaasActor } from './baas-access.js';
import { baasImageOf, createDiskImage, findImage, receiveDisk, sendDisk } from './baas-disks.js';
import { as, BaasError, readJson, sendText } from './baas-http.js';
import { parseImage, userNameOf, withBaasLabels } from './baas-models.js';
import { nameParam } from './baas-user-routes.js';

const NOT_FOUND = new BaasError(404, 'cannot get image');

function uuidParam(req: FastifyRequest): string {
  return (req.params as { uuid: string }).uuid;
}

async function ownedImage(s: Services, req: FastifyRequest, want: 'read' | 'write'): Promise<Image> {
  const image = await findImage(s, uuidParam(req), NOT_FOUND);
  await checkImageAccess(s, req.baas!, image, want);
  return image;
}

/** `owner`: the user the image is for; a plain user creates images for themselves only. */
async function createImage(s: Services, req: FastifyRequest, reply: FastifyReply, pathUser: string | null) {
  const fields = parseImage(await readJson(req, "couldn't decode image model"), "couldn't decode image model");
  if (fields.name === '') throw new BaasError(400, 'Name is not allowed to be empty');
  const bodyUser = fields.username === '' ? null : userNameOf(fields.username);
  if (pathUser !== null && bodyUser !== null && bodyUser !== pathUser) throw new BaasError(400, 'Username does not match the user in the URI');
  const owner = bodyUser ?? pathUser;
  if (owner === null) throw new BaasError(400, 'Username is not allowed to be empty');
  if (fields.hasVersions) throw new BaasError(400, "There shouldn't be a version");
  const a: BaasActor = req.baas!;
  if (a.kind === 'user' && a.role === 'user' && a.name !== owner) throw new BaasError(403, 'user does not own this image');
  const image = await as(['KILN_USER_NOT_FOUND'], 400, `Cannot find user: ${owner}`, () => createDiskImage(s, { description: fields.name, labels: fields.labels, owner }));
  return reply.code(201).send(await baasImageOf(s, image));
}

export function registerImageRoutes(app: FastifyInstance, s: Services): void {
  const machineToo = { ...access.all, machine: 'image' as const };

  app.post('/image', { preHandler: checkRole(s, access.all) }, async (req, reply) => createImage(s, req, reply, null));
  app.post('/user/:name/image', { preHandler: checkRole(s, access.mod) }, async (req, reply) => createImage(s, req, reply, nameParam(req)));

  app.get('/user/:name/images', { preHandler: checkRole(s, access.mod) }, async (req) =>
    Promise.all((await s.setups.disks.ownedBy(nameParam(req))).map((i) => baasImageOf(s, i))));

  // Names are not unique: every image of the user with this name.
  app.get('/user/:name/images/:image_name', { preHandler: checkRole(s, access.mod) }, async (req) => {
    const wanted = (req.params as { image_name: string }).image_name;
    const images = (await s.setups.disks.ownedBy(nameParam(req))).filter((i) => i.description === wanted);
    return Promise.all(images.map((i) => baasImageOf(s, i)));
  });

  app.get('/image/:uuid', { preHandler: checkRole(s, access.all) }, async (req) => baasImageOf(s, await ownedImage(s, req, 'read')));

  app.put('/image/:uuid', { preHandler: checkRole(s, access.all) }, async (req) => {
    const image = await ownedImage(s, req, 'write');
    const fields = parseImage(await readJson(req, 'invalid machine given'), 'invalid machine given');
    if (fields.uuid !== image.name) throw new BaasError(400, 'invalid machine given');
    // Versions and the owner are not changed here (the original saved whatever came).
    const updated = await s.images.update(image.name, { description: fields.name, labels: withBaasLabels(image.labels, fields.labels) }, undefined);
    return baasImageOf(s, updated);
  });

  app.delete('/image/:uuid', { preHandler: checkRole(s, access.all) }, async (req, reply) => {
    const image = await ownedImage(s, req, 'write');
    await s.images.delete(image.name, undefined);
    await s.images.purge(image.name);
    await s.setups.forgetImage(image.name);
    return sendText(reply, 200, 'Successfully deleted image');
  });

  // multipart, first part = the disk; X-BAAS-NewVersion: true adds version last+1, false overwrites the latest.
  app.post('/image/:uuid', { preHandler: checkRole(s, machineToo) }, async (req, reply) => {
    const image = await ownedImage(s, req, 'write');
    const mode = req.headers['x-baas-newversion'];
    if (mode !== 'true' && mode !== 'false') throw new BaasError(404, 'cannot fetch the image from the database');
    // A management OS sends changes back as new versions only.
    if (mode === 'false' && req.baas!.kind === 'machine') throw new BaasError(403, 'user does not own this image');
    const artifact = await receiveDisk(s, req, true);
    const version = mode === 'true'
      ? await s.setups.disks.addVersion(image.name, artifact)
      : (await s.setups.disks.replaceLatest(image.name, artifact)).version;
    return sendText(reply, 200, `Successfully uploaded image: ${version.version}`);
  });

  const latest = async (req: FastifyRequest, reply: FastifyReply) => {
    const image = await ownedImage(s, req, 'read');
    const v = await as(['KILN_VERSION_NOT_FOUND'], 404, 'Cannot download the image', () => s.setups.disks.latest(image.name));
    await sendDisk(s, req, reply, image, v);
  };
  // POST is what the original registers; GET is what its documentation says.
  app.post('/image/:uuid/latest', { preHandler: checkRole(s, machineToo) }, latest);
  app.get('/image/:uuid/latest', { preHandler: checkRole(s, machineToo) }, latest);

  app.get('/image/:uuid/:version', { preHandler: checkRole(s, machineToo) }, async (req, reply) => {
    const image = await ownedImage(s, req, 'read');
    const v = await s.setups.disks.version(image.name, (req.params as { version: string }).version).catch((err: unknown) => {
      if (err instanceof KilnError && (err.code === 'KILN_VERSION_NOT_FOUND' || err.code === 'KILN_VERSION_INVALID')) throw new BaasError(404, 'Cannot download the image');
      throw err;
    });
    await sendDisk(s, req, reply, image, v);
  });
}
