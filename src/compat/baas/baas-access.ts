// Who may use a BAAS route: the original's CheckRole (a role in the route's list, or "UserAllowed" and
// the route's {name} is the caller), on Kiln's credentials (login session, user-scoped or installation
// token), plus machine-scoped tokens for a management OS. The original's `type: system` header, which
// skipped every check, means nothing here.
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { authenticate, checkSameOrigin } from '../../api/auth.js';
import type { Services } from '../../api/services.js';
import { KilnError } from '../../core/kiln-error.js';
import { parseMac } from '../../core/mac.js';
import type { Image, Machine, Role } from '../../core/types.js';
import { BaasError } from './baas-http.js';
import { BAAS_ROLE, LABEL, userNameOf, type BaasRole } from './baas-models.js';

export type BaasActor =
  /** A person (session or user-scoped token), or an installation token (no name). */
  | { kind: 'user'; role: BaasRole; kilnRole: Role; name: string | null; actor: string }
  /** A management OS: a token scoped to one machine. */
  | { kind: 'machine'; machineId: string; actor: string };

declare module 'fastify' {
  interface FastifyRequest {
    baas?: BaasActor;
  }
}

export interface RouteAccess {
  roles: readonly BaasRole[];
  /** The original's UserAllowed: the caller may act on routes under their own {name}. */
  userAllowed: boolean;
  /** Machine-scoped tokens may call this route for their own {mac}; image routes check the image in the handler. */
  machine?: 'own-mac' | 'image';
}

const ALL: readonly BaasRole[] = ['user', 'moderator', 'admin'];
const MOD: readonly BaasRole[] = ['moderator', 'admin'];
const ADMIN: readonly BaasRole[] = ['admin'];
export const access = {
  all: { roles: ALL, userAllowed: true },
  mod: { roles: MOD, userAllowed: true },
  modOnly: { roles: MOD, userAllowed: false },
  admin: { roles: ADMIN, userAllowed: true },
  adminOnly: { roles: ADMIN, userAllowed: false },
} as const satisfies Record<string, RouteAccess>;

async function resolveActor(s: Services, req: FastifyRequest): Promise<BaasActor | null> {
  let who;
  try {
    who = await authenticate(s.tokens, req);
  } catch (err) {
    // An expired session or unknown token carries no role, like a missing session in the original.
    if (err instanceof KilnError && (err.code === 'KILN_AUTH_REQUIRED' || err.code === 'KILN_AUTH_INVALID_TOKEN')) return null;
    throw err;
  }
  if (who === null) return null;
  if (who.kind === 'machine') return { kind: 'machine', machineId: who.machineId, actor: `machine-token:${who.token.name}` };
  if (who.kind === 'session') checkSameOrigin(req);
  const name = who.user?.name ?? null;
  return { kind: 'user', role: BAAS_ROLE[who.role], kilnRole: who.role, name, actor: name ?? who.token.name };
}

/** The original's CheckRole for one route, on Kiln's credentials; sets request.baas. */
export function checkRole(s: Services, rule: RouteAccess): preHandlerAsyncHookHandler {
  return async function baasCheckRole(req) {
    const actor = await resolveActor(s, req);
    if (actor === null) throw new BaasError(404, "User's role not found");
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    if (actor.kind === 'machine') {
      if (rule.machine === undefined) throw new BaasError(403, "User role 'machine' not permitted to access this resource.");
      if (rule.machine === 'own-mac') {
        const machine = await machineOfParam(s, params.mac);
        if (machine?.id !== actor.machineId) throw new BaasError(403, "User role 'machine' not permitted to access this resource.");
      }
    } else {
      const own = rule.userAllowed && actor.name !== null && params.name !== undefined && userNameOf(params.name) === actor.name;
      if (!rule.roles.includes(actor.role) && !own) throw new BaasError(403, `User role '${actor.role}' not permitted to access this resource.`);
    }
    req.baas = actor;
  };
}

async function machineOfParam(s: Services, mac: string | undefined): Promise<Machine | null> {
  try {
    return await s.machines.get(parseMac(mac ?? ''));
  } catch {
    return null;
  }
}

/**
 * The original's image ownership check: the owner may use their image (Kiln admins too, who see it
 * through the native API anyway). A management OS may read the images of the setup its machine took
 * last and its machine image, and send new versions of setup images frozen with Update.
 */
export async function checkImageAccess(s: Services, actor: BaasActor, image: Image, want: 'read' | 'write'): Promise<void> {
  if (actor.kind === 'user') {
    if (actor.kilnRole === 'admin' || (actor.name !== null && image.owner === actor.name)) return;
    throw new BaasError(403, 'user does not own this image');
  }
  const machine = await s.machines.get(actor.machineId).catch(() => null);
  if (want === 'read' && machine !== null && machine.labels[LABEL.machineImage] === image.name) return;
  const granted = await s.setups.machineImageAccess(actor.machineId, image.name);
  if (granted === 'write' || (granted === 'read' && want === 'read')) return;
  throw new BaasError(403, 'user does not own this image');
}

export function actorName(actor: BaasActor): string {
  return actor.actor;
}
