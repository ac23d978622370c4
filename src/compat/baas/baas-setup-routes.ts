// BAAS image setups under /user/{name}: named sets of frozen image versions, onto Kiln image setups.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../api/services.js';
import type { ImageSetup } from '../../core/types.js';
import { access, checkImageAccess, checkRole } from './baas-access.js';
import { findImage, frozenImagesOf } from './baas-disks.js';
import { as, BaasError, bool, field, readJson, sendText, str, uint } from './baas-http.js';
import { toBaasSetup } from './baas-models.js';
import { nameParam } from './baas-user-routes.js';

/** The setup in the path, which must belong to the user in the path (the original answers 401 otherwise). */
async function setupOf(s: Services, req: FastifyRequest): Promise<ImageSetup> {
  const id = (req.params as { setup_uuid: string }).setup_uuid;
  const setup = await as(['KILN_SETUP_NOT_FOUND'], 400, 'Failed to find image setup', () => s.setups.get(id));
  if (setup.owner !== nameParam(req)) throw new BaasError(401, 'Image not owned by this user');
  return setup;
}

export function registerSetupRoutes(app: FastifyInstance, s: Services): void {
  const all = { preHandler: checkRole(s, access.all) };
  const view = async (setup: ImageSetup) => toBaasSetup(setup, await frozenImagesOf(s, setup));

  app.post('/user/:name/image_setup', all, async (req) => {
    const body = await readJson(req, 'Did not set image setup name').catch(() => ({}));
    const name = str(body, 'Name', 'Did not set image setup name');
    if (name === '') throw new BaasError(400, 'Did not set image setup name');
    const setup = await as(['KILN_USER_NOT_FOUND', 'KILN_SETUP_INVALID'], 400, 'Failed to create image setup', () => s.setups.create({ name, owner: nameParam(req) }));
    return view(setup);
  });

  const list = async (req: FastifyRequest) => Promise.all((await s.setups.list({ owner: nameParam(req) })).map(view));
  app.get('/user/:name/image_setup', all, list);
  app.get('/user/:name/image_setups', all, list);

  app.get('/user/:name/image_setup/:setup_uuid', all, async (req) => view(await setupOf(s, req)));

  // Metadata only: the name.
  app.put('/user/:name/image_setup/:setup_uuid', all, async (req) => {
    const setup = await setupOf(s, req);
    const name = str(await readJson(req, 'Did not set image setup name'), 'Name', 'Did not set image setup name');
    if (name === '') throw new BaasError(400, 'Did not set image setup name');
    return view(await s.setups.rename(setup.id, name, undefined));
  });

  app.delete('/user/:name/image_setup/:setup_uuid', all, async (req, reply) => {
    const setup = await setupOf(s, req);
    await s.setups.delete(setup.id, undefined);
    return sendText(reply, 200, 'Successfully deleted image setup');
  });

  app.get('/user/:name/image_setup/:setup_uuid/images', all, async (req) => frozenImagesOf(s, await setupOf(s, req)));

  // ImageSetupMessage {UUID, Version, Update}; Go matches keys case-insensitively (docs write "Uuid").
  app.post('/user/:name/image_setup/:setup_uuid/images', all, async (req) => {
    const setup = await setupOf(s, req);
    const bad = 'Cannot find image UUID in JSON message.';
    const body = await readJson(req, bad);
    const uuid = str(body, 'UUID', bad);
    const version = uint(body, 'Version', bad);
    const update = bool(body, 'Update', bad);
    const image = await findImage(s, uuid, new BaasError(400, 'Failed to add image to image setups'));
    // Tightens the original: only images the caller may use go into a setup (a machine reads them all).
    await checkImageAccess(s, req.baas!, image, 'read');
    const updated = await as(['KILN_SETUP_INVALID'], 400, 'Failed to add image to image setups: no such version', () =>
      s.setups.addImage(setup.id, { image: image.name, version: String(version), update }));
    return view(updated);
  });

  app.delete('/user/:name/image_setup/:setup_uuid/images', all, async (req, reply) => {
    const setup = await setupOf(s, req);
    const bad = 'Cannot find image UUID in JSON message.';
    const body = await readJson(req, bad);
    const uuid = str(body, 'UUID', bad);
    const version = field(body, 'Version') === undefined ? undefined : String(uint(body, 'Version', bad));
    await as(['KILN_SETUP_INVALID'], 400, 'Failed to delete image from setup', () => s.setups.removeImage(setup.id, uuid, version));
    return sendText(reply, 200, 'Successfully deleted image from setup');
  });
}
