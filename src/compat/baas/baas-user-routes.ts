// BAAS users: /users, /user, /user/me, /user/{name} and user-scoped tokens, onto Kiln's users.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../api/services.js';
import type { User } from '../../core/types.js';
import { roleAllows } from '../../core/services/token-service.js';
import { access, checkRole, type BaasActor } from './baas-access.js';
import { as, BaasError, readJson, sendText, str } from './baas-http.js';
import { parseRole, toBaasUser, userNameOf } from './baas-models.js';

export function nameParam(req: FastifyRequest): string {
  return userNameOf((req.params as { name: string }).name);
}

/** Tightens the original, where a moderator could edit an admin and anyone could raise their own role. */
function mayManage(actor: BaasActor, target: User): void {
  if (actor.kind !== 'user') throw new BaasError(403, 'User role not permitted to access this resource.');
  if (!roleAllows(actor.kilnRole, target.role)) throw new BaasError(403, `User role '${actor.role}' may not change a user with a higher role.`);
}

async function getUser(s: Services, name: string): Promise<User> {
  return as(['KILN_USER_NOT_FOUND'], 404, `Cannot find user: ${name}`, () => s.users.get(name));
}

export function registerUserRoutes(app: FastifyInstance, s: Services): void {
  const actor = (req: FastifyRequest) => req.baas!;

  app.get('/users', { preHandler: checkRole(s, access.modOnly) }, async () => (await s.users.list()).map(toBaasUser));

  app.post('/user', { preHandler: checkRole(s, access.adminOnly) }, async (req, reply) => {
    const bad = 'invalid user given';
    const body = await readJson(req, bad);
    const [username, name, email, role] = ['Username', 'Name', 'Email', 'Role'].map((k) => str(body, k, bad)) as [string, string, string, string];
    if (username === '') throw new BaasError(400, 'No username given');
    if (name === '') throw new BaasError(400, 'No name given');
    if (email === '') throw new BaasError(400, 'No email given');
    if (role === '') throw new BaasError(400, 'No role given');
    await s.users.create({ name: userNameOf(username), displayName: name, email, role: parseRole(role, bad) });
    return sendText(reply, 200, 'Successfully created user');
  });

  app.get('/user/me', { preHandler: checkRole(s, access.all) }, async (req) => {
    const a = actor(req);
    if (a.kind !== 'user' || a.name === null) throw new BaasError(400, 'Cannot find username');
    return toBaasUser(await getUser(s, a.name));
  });

  app.get('/user/:name', { preHandler: checkRole(s, access.mod) }, async (req) => toBaasUser(await getUser(s, nameParam(req))));

  app.put('/user/:name', { preHandler: checkRole(s, access.mod) }, async (req) => {
    const bad = 'Cannot decode the request body.';
    const target = await getUser(s, nameParam(req));
    const a = actor(req);
    mayManage(a, target);
    const body = await readJson(req, bad);
    // Go decodes into a fresh model and gorm skips zero values: empty fields stay as they are.
    const [name, email, role] = ['Name', 'Email', 'Role'].map((k) => str(body, k, bad)) as [string, string, string];
    const newRole = role === '' ? undefined : parseRole(role, bad);
    if (newRole !== undefined && newRole !== target.role && (a.kind !== 'user' || a.kilnRole !== 'admin')) throw new BaasError(403, 'Only an admin may change roles.');
    const updated = await s.users.update(target.name, {
      displayName: name === '' ? undefined : name,
      email: email === '' ? undefined : email,
      role: newRole,
    }, undefined);
    return toBaasUser(updated);
  });

  app.delete('/user/:name', { preHandler: checkRole(s, access.mod) }, async (req, reply) => {
    const target = await getUser(s, nameParam(req));
    mayManage(actor(req), target);
    await s.users.delete(target.name, undefined);
    return sendText(reply, 200, 'Successfully deleted user');
  });

  // Kiln addition: a token that acts for the user (capped by their role), for clients without a browser.
  app.post('/user/:name/token', { preHandler: checkRole(s, access.admin) }, async (req, reply) => {
    const target = await getUser(s, nameParam(req));
    const { token, secret } = await s.tokens.create(`baas.${target.name.slice(0, 50).replace(/[^a-z0-9]+$/, '')}.token`, target.role, { user: target.name });
    return reply.code(201).send({ Token: secret, ID: token.id, Name: token.name, Username: target.name });
  });
}
