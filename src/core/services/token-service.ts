// API tokens: random secrets shown once, stored as sha256 hashes, with a role each.
import { createHash } from 'node:crypto';
import { KilnError } from '../kiln-error.js';
import type { Clock, IdSource, Store } from '../ports.js';
import { ROLES, type Role, type Token } from '../types.js';
import { validateName } from '../validate.js';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function roleAllows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

/** Tokens carry 256 random bits, so a fast hash is enough; a slow KDF would only slow every request. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export class TokenService {
  /** Authentication is on every API request: keep verified tokens in memory, dropped on any token change. */
  private readonly cache = new Map<string, Token | null>();
  /** When each token's use was last written: at most once a minute per token. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {
    store.onChange((c) => {
      if (c.entity === 'token' || c.entity === 'all') this.cache.clear();
    });
  }

  /** `scope`: a token acting for a user (their role caps it) or for one machine only. */
  async create(name: string, role: Role, scope: { user?: string | null; machineId?: string | null } = {}): Promise<{ token: Token; secret: string }> {
    validateName(name, 'token name');
    if (!ROLES.includes(role)) throw new KilnError('KILN_REQUEST_INVALID', `role must be one of ${ROLES.join(', ')}`);
    const secret = `kiln_${this.ids.secret()}`;
    const token = await this.store.createToken({
      id: this.ids.id(),
      name,
      role,
      hash: hashToken(secret),
      createdAt: this.clock.now().toISOString(),
      lastUsedAt: null,
      revokedAt: null,
      user: scope.user ?? null,
      machineId: scope.machineId ?? null,
    });
    return { token, secret };
  }

  async list(): Promise<Token[]> {
    return this.store.listTokens();
  }

  /** Unknown ids are KILN_TOKEN_NOT_FOUND (from the store). */
  async revoke(id: string): Promise<Token> {
    return this.store.revokeToken(id, this.clock.now().toISOString());
  }

  /** The live token for a presented secret, or null. */
  async authenticate(secret: string): Promise<Token | null> {
    const token = await this.lookup(hashToken(secret));
    if (token !== null) {
      const now = this.clock.now();
      if (now.getTime() - (this.touched.get(token.id) ?? 0) >= 60_000) {
        this.touched.set(token.id, now.getTime());
        void this.store.touchToken(token.id, now.toISOString()).catch(() => undefined);
      }
    }
    return token;
  }

  private async lookup(hash: string): Promise<Token | null> {
    const cached = this.cache.get(hash);
    if (cached !== undefined) return cached;
    const stored = await this.store.findTokenByHash(hash);
    const token = stored === null || stored.revokedAt !== null ? null : strip(stored);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, token);
    return token;
  }

  /** First start: when no admin token exists, make one. Returns its secret once, or null. */
  /** Creates the first admin token when there is no live one; replicas starting together make one. */
  async bootstrapAdmin(): Promise<string | null> {
    return this.store.transaction(async (tx) => {
      if ((await tx.countTokens('admin')) > 0) return null;
      const secret = `kiln_${this.ids.secret()}`;
      await tx.createToken({
        id: this.ids.id(), name: 'admin', role: 'admin', hash: hashToken(secret), createdAt: this.clock.now().toISOString(), lastUsedAt: null, revokedAt: null,
        user: null, machineId: null,
      });
      return secret;
    }, { serialize: 'bootstrap-admin' });
  }
}

function strip(t: Token & { hash?: string }): Token {
  return { id: t.id, name: t.name, role: t.role, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt, user: t.user, machineId: t.machineId };
}
