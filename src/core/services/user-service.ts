// Users (people who log in or own images) and their login sessions.
import { createHash } from 'node:crypto';
import { KilnError } from '../kiln-error.js';
import type { Clock, ExpectedRevision, IdSource, Store } from '../ports.js';
import { ROLES, type Role, type Session, type User } from '../types.js';

export interface UserServiceOptions {
  /** Role of a user created by their first login. */
  defaultRole: Role;
  sessionTtlHours: number;
}

export interface UserInput {
  name: string;
  displayName?: string | undefined;
  email?: string | null | undefined;
  role?: Role | undefined;
}

export type UserPatch = Partial<Omit<UserInput, 'name'>>;

/** Who logged in, as an identity provider tells it (the shape of the login module's LoginIdentity). */
export interface ExternalIdentity {
  provider: string;
  subject: string;
  username: string;
  /** Verified addresses only. */
  email: string | null;
  name: string | null;
}

/** GitHub-login-like, lower-cased: safe in URLs and paths (BAAS puts user names in its routes). */
const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const EMAIL = /^[^\s@"<>()[\]\\,;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u001f\u007f]/g;
const SWEEP_EVERY_MS = 10 * 60_000;
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** The lower of two roles: what a user-scoped token may do is capped by its user's current role. */
export function minRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}

/** Session secrets carry 256 random bits, so a fast hash is enough (as for tokens). */
export function hashSessionSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function validateUserName(value: string): string {
  if (typeof value !== 'string' || !USER_NAME.test(value)) {
    throw new KilnError('KILN_USER_INVALID', `invalid user name ${JSON.stringify(String(value).slice(0, 80))}: lower-case letters, digits, ".", "_", "-", at most 63, starting with a letter or digit`);
  }
  return value;
}

function validateEmail(value: string): string {
  if (value.length > 254 || !EMAIL.test(value)) throw new KilnError('KILN_USER_INVALID', `invalid e-mail address ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

function validateDisplayName(value: string): string {
  if (value.length > 256 || CONTROL.test(value)) throw new KilnError('KILN_USER_INVALID', 'a display name has at most 256 characters and no control characters');
  return value;
}

function validateRole(value: Role): Role {
  if (!ROLES.includes(value)) throw new KilnError('KILN_USER_INVALID', `role must be one of ${ROLES.join(', ')}`);
  return value;
}

/** A login name turned into a user name: lower-cased, other characters replaced; never empty. */
function baseNameOf(username: string): string {
  const cleaned = username.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 56);
  return cleaned === '' ? 'user' : cleaned;
}

export class UserService {
  /** Sessions are checked on every cookie request: verified ones stay in memory until a user or session changes. */
  private readonly sessions = new Map<string, { session: Session; user: User } | null>();
  private readonly users = new Map<string, User | null>();
  private lastSweep = 0;

  constructor(
    protected readonly store: Store,
    protected readonly clock: Clock,
    protected readonly ids: IdSource,
    protected readonly opts: UserServiceOptions,
  ) {
    store.onChange((c) => {
      // Session ends and role changes are announced as 'token' / 'user' (see the store).
      if (c.entity === 'token' || c.entity === 'user' || c.entity === 'all') this.sessions.clear();
      if (c.entity === 'user' || c.entity === 'all') this.users.clear();
    });
  }

  async create(input: UserInput): Promise<User> {
    const at = this.clock.now().toISOString();
    return this.store.createUser({
      name: validateUserName(input.name),
      displayName: validateDisplayName(input.displayName ?? input.name),
      email: input.email == null ? null : validateEmail(input.email),
      role: validateRole(input.role ?? this.opts.defaultRole),
      externalId: null,
      createdAt: at,
      updatedAt: at,
      revision: 1,
    });
  }

  async get(name: string): Promise<User> {
    const u = await this.find(name);
    if (u === null) throw new KilnError('KILN_USER_NOT_FOUND', `no user ${JSON.stringify(name.slice(0, 80))}`);
    return u;
  }

  /** The user or null; read through a cache kept exact by change notifications (auth asks on every request). */
  async find(name: string): Promise<User | null> {
    const cached = this.users.get(name);
    if (cached !== undefined) return cached;
    const u = await this.store.getUser(name);
    if (this.users.size > 10_000) this.users.clear();
    this.users.set(name, u);
    return u;
  }

  async list(): Promise<User[]> {
    return this.store.listUsers();
  }

  async update(name: string, patch: UserPatch, expected: ExpectedRevision): Promise<User> {
    const u = await this.get(name);
    const next: User = {
      ...u,
      displayName: patch.displayName !== undefined ? validateDisplayName(patch.displayName) : u.displayName,
      email: patch.email !== undefined ? (patch.email === null ? null : validateEmail(patch.email)) : u.email,
      role: patch.role !== undefined ? validateRole(patch.role) : u.role,
      updatedAt: this.clock.now().toISOString(),
      revision: u.revision + 1,
    };
    return this.store.replaceUser(next, expected ?? u.revision);
  }

  /** Removes the user with their sessions, tokens and image setups; KILN_USER_IN_USE while they own images. */
  async delete(name: string, expected: ExpectedRevision): Promise<void> {
    await this.get(name);
    await this.store.deleteUser(name, expected);
  }

  /**
   * The user an identity logs in as: the one linked to it; else a user an admin created with the
   * identity's (verified) e-mail and no login yet, which gets linked; else a new user with the
   * default role, named after the login (a taken name gets a numeric suffix).
   */
  async loginExternal(identity: ExternalIdentity): Promise<User> {
    if (identity.provider === '' || identity.subject === '') throw new KilnError('KILN_LOGIN_FAILED', 'the identity has no provider or subject');
    const externalId = `${identity.provider}:${identity.subject}`;
    const linked = await this.store.findUserByExternalId(externalId);
    if (linked !== null) return linked;
    const email = identity.email !== null && EMAIL.test(identity.email) && identity.email.length <= 254 ? identity.email : null;
    if (email !== null) {
      const claimed = await this.claimByEmail(email, externalId);
      if (claimed !== null) return claimed;
    }
    const base = baseNameOf(identity.username);
    const displayName = (identity.name ?? identity.username).replace(CONTROL_ALL, ' ').slice(0, 256);
    // Someone else may hold the address (linked to another login): then the new user goes without it.
    const taken = email !== null && (await this.store.listUsers()).some((u) => u.email === email);
    for (let n = 1; n <= 100; n++) {
      const name = n === 1 ? base : `${base}-${n}`;
      if ((await this.store.getUser(name)) !== null) continue;
      const at = this.clock.now().toISOString();
      try {
        return await this.store.createUser({
          name, displayName, email: taken ? null : email, role: this.opts.defaultRole, externalId, createdAt: at, updatedAt: at, revision: 1,
        });
      } catch (err) {
        if (!(err instanceof KilnError) || err.code !== 'KILN_USER_EXISTS') throw err;
        // A concurrent first login of the same identity won the race; or the name went meanwhile.
        const raced = await this.store.findUserByExternalId(externalId);
        if (raced !== null) return raced;
      }
    }
    throw new KilnError('KILN_USER_EXISTS', `no free user name for login ${JSON.stringify(identity.username.slice(0, 80))}`);
  }

  private async claimByEmail(email: string, externalId: string): Promise<User | null> {
    const candidate = (await this.store.listUsers()).find((u) => u.email === email);
    if (candidate === undefined || candidate.externalId !== null) return null;
    try {
      return await this.store.replaceUser({ ...candidate, externalId, updatedAt: this.clock.now().toISOString(), revision: candidate.revision + 1 }, candidate.revision);
    } catch (err) {
      // Changed meanwhile (another login claimed it first): fall back to the other rules.
      if (err instanceof KilnError && (err.code === 'KILN_PRECONDITION_FAILED' || err.code === 'KILN_USER_EXISTS')) return this.store.findUserByExternalId(externalId);
      throw err;
    }
  }

  /** Starts a login session; the secret (for the cookie) is returned once, only its hash is stored. */
  async startSession(user: string): Promise<{ secret: string; session: Session }> {
    const u = await this.get(user);
    const now = this.clock.now();
    const secret = this.ids.secret();
    const session: Session = {
      hash: hashSessionSecret(secret),
      user: u.name,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.opts.sessionTtlHours * 3600_000).toISOString(),
    };
    await this.store.createSession(session);
    await this.sweep(now);
    return { secret, session };
  }

  /** The live session for a cookie's secret and its user (current role), or null. */
  async authenticateSession(secret: string): Promise<{ session: Session; user: User } | null> {
    if (secret === '' || secret.length > 256) return null;
    const hash = hashSessionSecret(secret);
    const now = this.clock.now();
    let found = this.sessions.get(hash);
    if (found === undefined) {
      const session = await this.store.findSession(hash, now.toISOString());
      const user = session === null ? null : await this.store.getUser(session.user);
      found = session === null || user === null ? null : { session, user };
      if (this.sessions.size > 10_000) this.sessions.clear();
      this.sessions.set(hash, found);
    }
    if (found === null || Date.parse(found.session.expiresAt) <= now.getTime()) return null;
    return found;
  }

  /** Logs out: the session is gone on every replica (the store announces it). Unknown secrets are fine. */
  async endSession(secret: string): Promise<void> {
    if (secret === '' || secret.length > 256) return;
    await this.store.deleteSession(hashSessionSecret(secret));
  }

  /** Deletes expired sessions, at most every ten minutes per process (logins trigger it). */
  private async sweep(now: Date): Promise<void> {
    if (now.getTime() - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now.getTime();
    await this.store.deleteExpiredSessions(now.toISOString());
  }

  /**
   * The key that seals a pending login in the browser's cookie; shared through the store so the
   * callback may reach another replica than the one that started the login.
   */
  async loginCookieKey(): Promise<string> {
    return this.store.ensureSecret('login-cookie-key', this.ids.secret(), this.clock.now().toISOString());
  }
}
