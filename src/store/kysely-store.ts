// The Store on Kysely: all query code, shared by every dialect. Dialect differences (connection,
// pragmas, error codes) live in the adapters that construct it (sqlite/, later postgres/).
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { KilnError } from '../core/kiln-error.js';
import type { ErrorCode } from '../core/error-catalogue.js';
import type { BootEventWriteOptions, Change, ExpectedRevision, MachineFilter, NewBootEvent, Store, StoredToken } from '../core/ports.js';
import type { CustomizeConnection, CustomizeSession, PublicKey } from '../core/types.js';
import type {
  Arch, Artifact, ArtifactRole, BootEvent, BootEventKind, BootQueueEntry, Channel, ChannelAction, ChannelHistoryEntry, Firmware, Group, Image,
  ImageSetup, ImageVersion, Machine, MachineState, Payload, Profile, Role, Session, SetupImage, Token, User, VersionArtifact,
} from '../core/types.js';
import type { ImsStore } from '../core/ims/ims-records.js';
import type { Recipe, RecipeKind } from '../core/recipes/recipe.js';
import { KyselyImsStore } from './kysely-ims-store.js';
import type { Database } from './schema.js';

export interface DialectHooks {
  readonly name: string;
  /** True when `err` is a unique / primary key violation. */
  isUniqueViolation(err: unknown): boolean;
  /** Serializes writers that must see each other's effects (no-op where the database already serializes). */
  lock?(tx: Transaction<Database>, key: string): Promise<void>;
  /**
   * Tells other processes sharing the database about a transaction's changes, from inside it so
   * they hear exactly when it commits. With this hook every write runs in a transaction.
   */
  announce?(tx: Transaction<Database>, changes: readonly Change[]): Promise<void>;
  /**
   * Optional native versions of the two boot-path queries (measured: Kysely's driver path costs
   * ~40 µs per query on SQLite, the native statement ~17 µs). Used outside transactions only; they
   * must behave exactly like the shared query code, which the contract suite checks for both.
   */
  fast?: {
    findMachineByMac?: (mac: string) => Promise<Machine | null>;
    recordBootEvents?: (events: readonly NewBootEvent[], opts: BootEventWriteOptions) => Promise<void>;
  };
}

type Listener = (change: Change) => void;

interface Shared {
  listeners: Set<Listener>;
  hooks: DialectHooks;
  closeDb: () => Promise<void>;
}

const json = (v: unknown): string => JSON.stringify(v);

/** The state and last-seen update a batch of boot events implies: per final state, the machines it applies to. */
export function bootEventEffects(
  events: readonly NewBootEvent[],
  opts: BootEventWriteOptions = {},
): { at: string; staleBefore: string; byState: Map<MachineState | null, string[]> } {
  // A handful of statements per batch, not one per machine: machines are grouped by the state the
  // batch leaves them in (the last state-moving event wins), and last seen is the batch's latest time.
  const at = events.reduce((max, e) => (e.at > max ? e.at : max), events[0]!.at);
  const resolution = opts.lastSeenResolutionMs ?? 0;
  const staleBefore = resolution > 0 ? new Date(Date.parse(at) - resolution).toISOString() : at;
  const finalState = new Map<string, MachineState | null>();
  for (const e of events) if (e.state !== null || !finalState.has(e.machineId)) finalState.set(e.machineId, e.state ?? finalState.get(e.machineId) ?? null);
  const byState = new Map<MachineState | null, string[]>();
  for (const [id, state] of finalState) {
    const ids = byState.get(state);
    if (ids === undefined) byState.set(state, [id]);
    else ids.push(id);
  }
  return { at, staleBefore, byState };
}
const parse = <T>(s: string): T => JSON.parse(s) as T;

export class KyselyStore implements Store {
  /** Changes made inside the current transaction, published after it commits. */
  private readonly pending: Change[] | null;

  private constructor(
    private readonly db: Kysely<Database>,
    private readonly shared: Shared,
    inTransaction: boolean,
  ) {
    this.pending = inTransaction ? [] : null;
  }

  static create(db: Kysely<Database>, hooks: DialectHooks, closeDb: () => Promise<void>): KyselyStore {
    return new KyselyStore(db, { listeners: new Set(), hooks, closeDb }, false);
  }

  get dialect(): string {
    return this.shared.hooks.name;
  }

  get ims(): ImsStore {
    // Bound to this store's db, which inside `transaction` is the transaction.
    return new KyselyImsStore(this.db, (err) => this.shared.hooks.isUniqueViolation(err));
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>, opts?: { serialize?: string }): Promise<T> {
    if (this.pending !== null) {
      if (opts?.serialize !== undefined) await this.shared.hooks.lock?.(this.db as Transaction<Database>, opts.serialize);
      return fn(this);
    }
    let tx: KyselyStore | undefined;
    const result = await this.db.transaction().execute(async (trx) => {
      tx = new KyselyStore(trx, this.shared, true);
      if (opts?.serialize !== undefined) await this.shared.hooks.lock?.(trx, opts.serialize);
      const r = await fn(tx);
      if (tx.pending!.length > 0) await this.shared.hooks.announce?.(trx, tx.pending!);
      return r;
    });
    for (const c of tx?.pending ?? []) this.publish(c);
    return result;
  }

  /** Delivers changes made by another process (or 'all' when some may have been missed). */
  publishExternal(changes: readonly Change[] | 'all'): void {
    if (changes === 'all') this.publish({ entity: 'all', key: '' });
    else for (const c of changes) this.publish(c);
  }

  onChange(listener: Listener): () => void {
    this.shared.listeners.add(listener);
    return () => this.shared.listeners.delete(listener);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    this.shared.listeners.clear();
    await this.shared.closeDb();
  }

  private changed(entity: Change['entity'], key: string): void {
    if (this.pending !== null) this.pending.push({ entity, key });
    else this.publish({ entity, key });
  }

  private publish(c: Change): void {
    for (const l of this.shared.listeners) l(c);
  }

  private async unique<T>(code: ErrorCode, message: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (this.shared.hooks.isUniqueViolation(err)) throw new KilnError(code, message);
      throw err;
    }
  }

  /** Runs `fn` atomically: in the caller's transaction, or a new one. */
  private atomic<T>(fn: (tx: KyselyStore) => Promise<T>): Promise<T> {
    return this.transaction((tx) => fn(tx as KyselyStore));
  }

  /**
   * A single-statement write: run as is, unless changes must be announced to other processes,
   * which happens inside a transaction (so a crash cannot commit a change nobody hears of).
   */
  private write<T>(fn: (tx: KyselyStore) => Promise<T>): Promise<T> {
    return this.pending === null && this.shared.hooks.announce !== undefined ? this.atomic(fn) : fn(this);
  }

  /** Throws not-found or precondition-failed after a conditional write that touched no row. */
  private async missed(exists: boolean, notFound: ErrorCode, what: string): Promise<never> {
    if (!exists) throw new KilnError(notFound, `no ${what}`);
    throw new KilnError('KILN_PRECONDITION_FAILED', `${what} was changed by someone else; fetch it again`);
  }

  // ---------------------------------------------------------------- artifacts

  async putArtifact(a: Artifact): Promise<Artifact> {
    return this.write(async (tx) => {
      await tx.db
        .insertInto('artifacts')
        .values({ sha256: a.sha256, size: a.size, media_type: a.mediaType, created_at: a.createdAt })
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
      tx.changed('artifact', a.sha256);
      return (await tx.getArtifact(a.sha256))!;
    });
  }

  async getArtifact(sha256: string): Promise<Artifact | null> {
    const r = await this.db.selectFrom('artifacts').selectAll().where('sha256', '=', sha256).executeTakeFirst();
    return r === undefined ? null : toArtifact(r);
  }

  async listArtifacts(): Promise<Artifact[]> {
    return (await this.db.selectFrom('artifacts').selectAll().orderBy('created_at').orderBy('sha256').execute()).map(toArtifact);
  }

  async unreferencedArtifacts(candidates: readonly string[]): Promise<string[]> {
    if (candidates.length === 0) return [];
    const used = await this.db.selectFrom('version_artifacts').select('sha256').distinct().where('sha256', 'in', candidates).execute();
    // A recipe's file is an artifact too: a purge must not collect it.
    const recipes = await this.db.selectFrom('recipes').select('sha256').distinct().where('sha256', 'in', candidates).execute();
    // An IMS object key names its bytes by artifact: collecting them would break the key.
    const objects = await this.db.selectFrom('ims_objects').select('sha256').distinct().where('sha256', 'in', candidates).execute();
    const usedSet = new Set([...used, ...recipes, ...objects].map((r) => r.sha256));
    return candidates.filter((c) => !usedSet.has(c));
  }

  async deleteArtifact(sha256: string): Promise<void> {
    await this.write(async (tx) => {
      await tx.db.deleteFrom('artifacts').where('sha256', '=', sha256).execute();
      tx.changed('artifact', sha256);
    });
  }

  // ---------------------------------------------------------------- images

  async createImage(image: Image): Promise<Image> {
    await this.write(async (tx) => {
      await tx.unique('KILN_IMAGE_EXISTS', `image ${image.name} exists`, () =>
        tx.db
          .insertInto('images')
          .values({
            name: image.name, description: image.description, labels: json(image.labels), owner: image.owner, created_at: image.createdAt,
            updated_at: image.updatedAt, deleted_at: image.deletedAt, revision: image.revision,
          })
          .execute(),
      );
      tx.changed('image', image.name);
    });
    return image;
  }

  async getImage(name: string): Promise<Image | null> {
    const r = await this.db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toImage(r);
  }

  async listImages(opts: { deleted: boolean }): Promise<Image[]> {
    const q = this.db.selectFrom('images').selectAll().orderBy('name');
    const rows = await (opts.deleted ? q.where('deleted_at', 'is not', null) : q.where('deleted_at', 'is', null)).execute();
    return rows.map(toImage);
  }

  async listImagesByOwner(owner: string): Promise<Image[]> {
    return (await this.db.selectFrom('images').selectAll().where('owner', '=', owner).where('deleted_at', 'is', null).orderBy('name').execute()).map(toImage);
  }

  async updateImage(name: string, patch: Partial<Pick<Image, 'description' | 'labels' | 'deletedAt' | 'owner'>>, at: string, expected: ExpectedRevision): Promise<Image> {
    const set: Partial<Database['images']> = { updated_at: at };
    if (patch.owner !== undefined) set.owner = patch.owner;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.labels !== undefined) set.labels = json(patch.labels);
    if (patch.deletedAt !== undefined) set.deleted_at = patch.deletedAt;
    return this.write(async (tx) => {
      let q = tx.db.updateTable('images').set((eb) => ({ ...set, revision: eb('revision', '+', 1) })).where('name', '=', name);
      if (expected !== undefined) q = q.where('revision', '=', expected);
      const res = await q.executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getImage(name)) !== null, 'KILN_IMAGE_NOT_FOUND', `image ${name}`);
      tx.changed('image', name);
      return (await tx.getImage(name))!;
    });
  }

  async purgeImage(name: string): Promise<void> {
    await this.atomic(async (tx) => {
      // Explicit order instead of relying on cascades, so dialects without FK enforcement behave the same.
      const ids = tx.db.selectFrom('image_versions').select('id').where('image', '=', name);
      await tx.db.deleteFrom('version_artifacts').where('version_id', 'in', ids).execute();
      await tx.db.deleteFrom('image_versions').where('image', '=', name).execute();
      await tx.db.deleteFrom('channel_history').where('image', '=', name).execute();
      await tx.db.deleteFrom('channels').where('image', '=', name).execute();
      await tx.db.deleteFrom('images').where('name', '=', name).execute();
      tx.changed('image', name);
    });
  }

  async createVersion(v: ImageVersion): Promise<ImageVersion> {
    await this.atomic(async (tx) => {
      await tx.unique('KILN_VERSION_EXISTS', `image ${v.image} already has version ${v.version}`, () =>
        tx.db
          .insertInto('image_versions')
          .values({ id: v.id, image: v.image, version: v.version, arch: v.arch, cmdline: v.cmdline, metadata: json(v.metadata), created_at: v.createdAt })
          .execute(),
      );
      if (v.artifacts.length > 0) {
        await tx.db
          .insertInto('version_artifacts')
          .values(v.artifacts.map((a, i) => ({ version_id: v.id, position: i, name: a.name, role: a.role, sha256: a.sha256 })))
          .execute();
      }
      tx.changed('image', v.image);
    });
    return v;
  }

  private async versionsWhere(image: string, version?: string): Promise<ImageVersion[]> {
    let q = this.db.selectFrom('image_versions').selectAll().where('image', '=', image);
    if (version !== undefined) q = q.where('version', '=', version);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    if (rows.length === 0) return [];
    const arts = await this.db
      .selectFrom('version_artifacts')
      .innerJoin('artifacts', 'artifacts.sha256', 'version_artifacts.sha256')
      .select(['version_artifacts.version_id', 'version_artifacts.name', 'version_artifacts.role', 'version_artifacts.sha256', 'version_artifacts.position', 'artifacts.size', 'artifacts.media_type'])
      .where('version_artifacts.version_id', 'in', rows.map((r) => r.id))
      .orderBy('version_artifacts.position')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      image: r.image,
      version: r.version,
      arch: r.arch as Arch,
      cmdline: r.cmdline,
      metadata: parse<Record<string, unknown>>(r.metadata),
      artifacts: arts
        .filter((a) => a.version_id === r.id)
        .map((a) => ({ name: a.name, role: a.role as ArtifactRole, sha256: a.sha256, size: Number(a.size), mediaType: a.media_type })),
      createdAt: r.created_at,
    }));
  }

  async replaceVersionArtifacts(image: string, version: string, artifacts: readonly VersionArtifact[]): Promise<ImageVersion> {
    return this.atomic(async (tx) => {
      const row = await tx.db.selectFrom('image_versions').select('id').where('image', '=', image).where('version', '=', version).executeTakeFirst();
      if (row === undefined) throw new KilnError('KILN_VERSION_NOT_FOUND', `image ${image} has no version ${version}`);
      await tx.db.deleteFrom('version_artifacts').where('version_id', '=', row.id).execute();
      if (artifacts.length > 0) {
        await tx.db
          .insertInto('version_artifacts')
          .values(artifacts.map((a, i) => ({ version_id: row.id, position: i, name: a.name, role: a.role, sha256: a.sha256 })))
          .execute();
      }
      tx.changed('image', image);
      return (await tx.getVersion(image, version))!;
    });
  }

  async getVersion(image: string, version: string): Promise<ImageVersion | null> {
    return (await this.versionsWhere(image, version))[0] ?? null;
  }

  async listVersions(image: string): Promise<ImageVersion[]> {
    return this.versionsWhere(image);
  }

  async countVersions(image: string): Promise<number> {
    const r = await this.db.selectFrom('image_versions').select((eb) => eb.fn.countAll<number>().as('n')).where('image', '=', image).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async getChannel(image: string, name: string): Promise<Channel | null> {
    const r = await this.db.selectFrom('channels').selectAll().where('image', '=', image).where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toChannel(r);
  }

  async listChannels(image: string): Promise<Channel[]> {
    return (await this.db.selectFrom('channels').selectAll().where('image', '=', image).orderBy('name').execute()).map(toChannel);
  }

  async moveChannel(m: { image: string; name: string; toVersion: string; action: ChannelAction; actor: string; at: string }, expected: ExpectedRevision): Promise<Channel> {
    return this.atomic(async (tx) => {
      await tx.shared.hooks.lock?.(tx.db as Transaction<Database>, `channel:${m.image}`);
      const cur = await tx.getChannel(m.image, m.name);
      if (expected !== undefined && (cur === null || cur.revision !== expected)) {
        await tx.missed(cur !== null, 'KILN_CHANNEL_NOT_FOUND', `channel ${m.name} of image ${m.image}`);
      }
      if (cur === null) {
        await tx.db.insertInto('channels').values({ image: m.image, name: m.name, version: m.toVersion, revision: 1, updated_at: m.at }).execute();
      } else {
        const res = await tx.db
          .updateTable('channels')
          .set({ version: m.toVersion, revision: cur.revision + 1, updated_at: m.at })
          .where('image', '=', m.image)
          .where('name', '=', m.name)
          .where('revision', '=', cur.revision)
          .executeTakeFirst();
        if (res.numUpdatedRows === 0n) await tx.missed(true, 'KILN_CHANNEL_NOT_FOUND', `channel ${m.name} of image ${m.image}`);
      }
      await tx.db
        .insertInto('channel_history')
        .values({ image: m.image, channel: m.name, action: m.action, from_version: cur?.version ?? null, to_version: m.toVersion, actor: m.actor, at: m.at })
        .execute();
      tx.changed('channel', m.image);
      return (await tx.getChannel(m.image, m.name))!;
    });
  }

  async channelHistory(image: string, name: string): Promise<ChannelHistoryEntry[]> {
    const rows = await this.db.selectFrom('channel_history').selectAll().where('image', '=', image).where('channel', '=', name).orderBy('seq').execute();
    return rows.map((r) => ({ seq: Number(r.seq), action: r.action as ChannelAction, fromVersion: r.from_version, toVersion: r.to_version, actor: r.actor, at: r.at }));
  }

  async deleteChannel(image: string, name: string): Promise<void> {
    await this.atomic(async (tx) => {
      const res = await tx.db.deleteFrom('channels').where('image', '=', image).where('name', '=', name).executeTakeFirst();
      if (res.numDeletedRows === 0n) throw new KilnError('KILN_CHANNEL_NOT_FOUND', `image ${image} has no channel ${name}`);
      await tx.db.deleteFrom('channel_history').where('image', '=', image).where('channel', '=', name).execute();
      tx.changed('channel', image);
    });
  }

  // ---------------------------------------------------------------- profiles

  private profileRow(p: Profile): Database['profiles'] {
    return {
      name: p.name, description: p.description, image: p.image.image, channel: p.image.channel ?? null, version: p.image.version ?? null,
      kernel_args: json(p.kernelArgs), template: p.template, payload: p.payload, created_at: p.createdAt, updated_at: p.updatedAt, revision: p.revision,
    };
  }

  async createProfile(p: Profile): Promise<Profile> {
    await this.write(async (tx) => {
      await tx.unique('KILN_PROFILE_EXISTS', `profile ${p.name} exists`, () => tx.db.insertInto('profiles').values(tx.profileRow(p)).execute());
      tx.changed('profile', p.name);
    });
    return p;
  }

  async getProfile(name: string): Promise<Profile | null> {
    const r = await this.db.selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toProfile(r);
  }

  async listProfiles(): Promise<Profile[]> {
    return (await this.db.selectFrom('profiles').selectAll().orderBy('name').execute()).map(toProfile);
  }

  async replaceProfile(p: Profile, expected: ExpectedRevision): Promise<Profile> {
    const { name, created_at: _c, ...row } = this.profileRow(p);
    return this.write(async (tx) => {
      // The caller computed p.revision from what it read; the stored row must still be that read.
      const q = tx.db.updateTable('profiles').set({ ...row }).where('name', '=', name).where('revision', '=', expected ?? p.revision - 1);
      const res = await q.executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getProfile(name)) !== null, 'KILN_PROFILE_NOT_FOUND', `profile ${name}`);
      tx.changed('profile', name);
      return (await tx.getProfile(name))!;
    });
  }

  async deleteProfile(name: string, expected: ExpectedRevision): Promise<void> {
    await this.write(async (tx) => {
      let q = tx.db.deleteFrom('profiles').where('name', '=', name);
      if (expected !== undefined) q = q.where('revision', '=', expected);
      const res = await q.executeTakeFirst();
      if (res.numDeletedRows === 0n) await tx.missed((await tx.getProfile(name)) !== null, 'KILN_PROFILE_NOT_FOUND', `profile ${name}`);
      tx.changed('profile', name);
    });
  }

  async profileUsers(name: string): Promise<{ groups: string[]; machines: string[] }> {
    const groups = await this.db.selectFrom('groups').select('name').where('profile', '=', name).orderBy('name').execute();
    const machines = await this.db
      .selectFrom('machines')
      .select('id')
      .where((eb) => eb.or([eb('profile', '=', name), eb('next_boot', '=', name)]))
      .orderBy('id')
      .execute();
    return { groups: groups.map((g) => g.name), machines: machines.map((m) => m.id) };
  }

  async imageUsers(image: string): Promise<string[]> {
    return (await this.db.selectFrom('profiles').select('name').where('image', '=', image).orderBy('name').execute()).map((r) => r.name);
  }

  // ---------------------------------------------------------------- groups

  private groupRow(g: Group): Database['groups'] {
    return { name: g.name, description: g.description, selectors: json(g.selectors), profile: g.profile, created_at: g.createdAt, updated_at: g.updatedAt, revision: g.revision };
  }

  async createGroup(g: Group): Promise<Group> {
    await this.write(async (tx) => {
      await tx.unique('KILN_GROUP_EXISTS', `group ${g.name} exists`, () => tx.db.insertInto('groups').values(tx.groupRow(g)).execute());
      tx.changed('group', g.name);
    });
    return g;
  }

  async getGroup(name: string): Promise<Group | null> {
    const r = await this.db.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toGroup(r);
  }

  async listGroups(): Promise<Group[]> {
    return (await this.db.selectFrom('groups').selectAll().orderBy('name').execute()).map(toGroup);
  }

  async replaceGroup(g: Group, expected: ExpectedRevision): Promise<Group> {
    const { name, created_at: _c, ...row } = this.groupRow(g);
    return this.write(async (tx) => {
      const res = await tx.db
        .updateTable('groups')
        .set(row)
        .where('name', '=', name)
        .where('revision', '=', expected ?? g.revision - 1)
        .executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getGroup(name)) !== null, 'KILN_GROUP_NOT_FOUND', `group ${name}`);
      tx.changed('group', name);
      return (await tx.getGroup(name))!;
    });
  }

  async deleteGroup(name: string, expected: ExpectedRevision): Promise<void> {
    await this.write(async (tx) => {
      let q = tx.db.deleteFrom('groups').where('name', '=', name);
      if (expected !== undefined) q = q.where('revision', '=', expected);
      const res = await q.executeTakeFirst();
      if (res.numDeletedRows === 0n) await tx.missed((await tx.getGroup(name)) !== null, 'KILN_GROUP_NOT_FOUND', `group ${name}`);
      tx.changed('group', name);
    });
  }

  // ---------------------------------------------------------------- machines

  private machineRow(m: Machine): Database['machines'] {
    return {
      id: m.id, uuid: m.uuid, serial: m.serial, hostname: m.hostname, labels: json(sortKeys(m.labels)), arch: m.arch, firmware: m.firmware,
      state: m.state, profile: m.profile, next_boot: m.nextBoot, last_seen_at: m.lastSeenAt, created_at: m.createdAt, updated_at: m.updatedAt,
      revision: m.revision, payload: m.payload, next_boot_taken: m.nextBootTaken?.profile ?? null, next_boot_taken_at: m.nextBootTaken?.at ?? null,
    };
  }

  private async insertMacs(machineId: string, macs: readonly string[]): Promise<void> {
    for (const [i, mac] of macs.entries()) {
      await this.unique('KILN_MACHINE_MAC_TAKEN', `MAC ${mac} belongs to another machine`, () =>
        this.db.insertInto('machine_macs').values({ mac, machine_id: machineId, position: i }).execute(),
      );
    }
  }

  async createMachine(m: Machine): Promise<Machine> {
    await this.atomic(async (tx) => {
      await tx.unique('KILN_MACHINE_UUID_TAKEN', `UUID ${m.uuid} belongs to another machine`, () => tx.db.insertInto('machines').values(tx.machineRow(m)).execute());
      await tx.insertMacs(m.id, m.macs);
      tx.changed('machine', m.id);
    });
    return m;
  }

  private async hydrate(rows: Database['machines'][]): Promise<Machine[]> {
    if (rows.length === 0) return [];
    const macs = await this.db
      .selectFrom('machine_macs')
      .select(['mac', 'machine_id'])
      .where('machine_id', 'in', rows.map((r) => r.id))
      .orderBy('machine_id')
      .orderBy('position')
      .execute();
    const byId = new Map<string, string[]>();
    for (const r of macs) {
      const list = byId.get(r.machine_id);
      if (list === undefined) byId.set(r.machine_id, [r.mac]);
      else list.push(r.mac);
    }
    return rows.map((r) => toMachine(r, byId.get(r.id) ?? []));
  }

  async getMachine(id: string): Promise<Machine | null> {
    const r = await this.db.selectFrom('machines').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : (await this.hydrate([r]))[0]!;
  }

  async findMachineByMac(mac: string): Promise<Machine | null> {
    const fast = this.pending === null ? this.shared.hooks.fast?.findMachineByMac : undefined;
    if (fast !== undefined) return fast(mac);
    const r = await this.db
      .selectFrom('machines')
      .selectAll('machines')
      .where('id', '=', (eb) => eb.selectFrom('machine_macs').select('machine_id').where('mac', '=', mac))
      .executeTakeFirst();
    return r === undefined ? null : (await this.hydrate([r]))[0]!;
  }

  async findMachineByUuid(uuid: string): Promise<Machine | null> {
    const r = await this.db.selectFrom('machines').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    return r === undefined ? null : (await this.hydrate([r]))[0]!;
  }

  async findMachinesByMacSuffix(suffix: string, limit: number): Promise<Machine[]> {
    // MACs are stored in one canonical form, so a suffix of it is a plain LIKE pattern (hex and colons only).
    if (!/^[0-9a-f:]+$/.test(suffix)) return [];
    const ids = this.db.selectFrom('machine_macs').select('machine_id').where('mac', 'like', `%${suffix}`);
    return this.hydrate(await this.db.selectFrom('machines').selectAll().where('id', 'in', ids).orderBy('id').limit(limit).execute());
  }

  async listMachines(f: MachineFilter): Promise<Machine[]> {
    let q = this.db.selectFrom('machines').selectAll('machines');
    if (f.mac !== undefined) {
      const mac = f.mac;
      q = q.where('id', 'in', (eb) => eb.selectFrom('machine_macs').select('machine_id').where('mac', '=', mac));
    }
    if (f.state !== undefined) q = q.where('state', '=', f.state);
    if (f.label !== undefined) {
      // Labels are stored as canonical JSON whose keys and values cannot contain quotes, so this
      // substring identifies exactly one key/value pair; `_` and `%` are escaped for LIKE.
      const needle = JSON.stringify({ [f.label.key]: f.label.value }).slice(1, -1).replace(/[\\%_]/g, (c) => `\\${c}`);
      q = q.where(sql<boolean>`labels like ${`%${needle}%`} escape '\\'`);
    }
    if (f.after !== undefined) q = q.where('id', '>', f.after);
    return this.hydrate(await q.orderBy('id').limit(f.limit).execute());
  }

  async replaceMachine(m: Machine, expected: ExpectedRevision): Promise<Machine> {
    return this.atomic(async (tx) => {
      const cur = await tx.getMachine(m.id);
      if (cur === null || (expected !== undefined && cur.revision !== expected)) await tx.missed(cur !== null, 'KILN_MACHINE_NOT_FOUND', `machine ${m.id}`);
      const { id, created_at: _c, ...row } = tx.machineRow({ ...m, revision: cur!.revision + 1 });
      // State, last seen and the taken next boot belong to the boot path; an edit must not roll them back.
      const { state: _s, last_seen_at: _l, next_boot_taken: _t, next_boot_taken_at: _ta, ...edit } = row;
      const res = await tx.unique('KILN_MACHINE_UUID_TAKEN', `UUID ${m.uuid} belongs to another machine`, () =>
        tx.db.updateTable('machines').set(edit).where('id', '=', id).where('revision', '=', cur!.revision).executeTakeFirst(),
      );
      // Another process changed the row between our read and this write (PostgreSQL, read committed).
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getMachine(id)) !== null, 'KILN_MACHINE_NOT_FOUND', `machine ${id}`);
      if (json(cur!.macs) !== json(m.macs)) {
        await tx.db.deleteFrom('machine_macs').where('machine_id', '=', id).execute();
        await tx.insertMacs(id, m.macs);
      }
      tx.changed('machine', id);
      return (await tx.getMachine(id))!;
    });
  }

  async deleteMachine(id: string, expected: ExpectedRevision): Promise<void> {
    await this.atomic(async (tx) => {
      const cur = await tx.getMachine(id);
      if (cur === null || (expected !== undefined && cur.revision !== expected)) await tx.missed(cur !== null, 'KILN_MACHINE_NOT_FOUND', `machine ${id}`);
      // Lock the row first (a conditional no-op update) so a concurrent edit cannot slip in between.
      const res = await tx.db.updateTable('machines').set({ revision: cur!.revision }).where('id', '=', id).where('revision', '=', cur!.revision).executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getMachine(id)) !== null, 'KILN_MACHINE_NOT_FOUND', `machine ${id}`);
      await tx.db.deleteFrom('boot_events').where('machine_id', '=', id).execute();
      await tx.db.deleteFrom('boot_queue').where('machine_id', '=', id).execute();
      const tokens = await tx.db.deleteFrom('tokens').where('machine_id', '=', id).executeTakeFirst();
      await tx.db.deleteFrom('machine_macs').where('machine_id', '=', id).execute();
      await tx.db.deleteFrom('machines').where('id', '=', id).execute();
      tx.changed('machine', id);
      // Its machine-scoped tokens went with it: cached authentications must go too.
      if (tokens.numDeletedRows > 0n) tx.changed('token', '');
    });
  }

  async consumeNextBoot(id: string, profile: string, at: string): Promise<boolean> {
    // One conditional UPDATE: of any number of concurrent boots, exactly one sees a row change.
    return this.write(async (tx) => {
      const res = await tx.db
        .updateTable('machines')
        .set((eb) => ({ next_boot: null, next_boot_taken: profile, next_boot_taken_at: at, revision: eb('revision', '+', 1) }))
        .where('id', '=', id)
        .where('next_boot', '=', profile)
        .executeTakeFirst();
      const won = res.numUpdatedRows > 0n;
      if (won) tx.changed('machine', id);
      return won;
    });
  }

  async recordBootEvents(events: readonly NewBootEvent[], opts: BootEventWriteOptions = {}): Promise<void> {
    if (events.length === 0) return;
    const fast = this.pending === null ? this.shared.hooks.fast?.recordBootEvents : undefined;
    if (fast !== undefined) return fast(events, opts);
    await this.atomic(async (tx) => {
      for (let i = 0; i < events.length; i += 500) {
        await tx.db
          .insertInto('boot_events')
          .values(events.slice(i, i + 500).map((e) => ({ machine_id: e.machineId, at: e.at, kind: e.kind, detail: json(e.detail) })))
          .execute();
      }
      const { at, staleBefore, byState } = bootEventEffects(events, opts);
      // Rows are rewritten only when something a reader would notice changes (see the port).
      const lastSeen = sql<string>`case when last_seen_at is not null and last_seen_at > ${at} then last_seen_at else ${at} end`;
      for (const [state, ids] of byState) {
        for (let i = 0; i < ids.length; i += 500) {
          await tx.db
            .updateTable('machines')
            .set(state === null ? { last_seen_at: lastSeen } : { last_seen_at: lastSeen, state })
            .where('id', 'in', ids.slice(i, i + 500))
            .where((eb) => {
              const stale = [eb('last_seen_at', 'is', null), eb('last_seen_at', '<', staleBefore)];
              return eb.or(state === null ? stale : [...stale, eb('state', '<>', state)]);
            })
            .execute();
        }
      }
    });
  }

  async listBootEvents(machineId: string, opts: { after?: number | undefined; limit: number }): Promise<BootEvent[]> {
    let q = this.db.selectFrom('boot_events').selectAll().where('machine_id', '=', machineId);
    if (opts.after !== undefined) q = q.where('id', '>', opts.after);
    const rows = await q.orderBy('id').limit(opts.limit).execute();
    return rows.map((r) => ({ id: Number(r.id), machineId: r.machine_id, at: r.at, kind: r.kind as BootEventKind, detail: parse<Record<string, unknown>>(r.detail) }));
  }

  // ---------------------------------------------------------------- tokens

  async createToken(t: StoredToken): Promise<Token> {
    await this.write(async (tx) => {
      await tx.db
        .insertInto('tokens')
        .values({
          id: t.id, name: t.name, role: t.role, hash: t.hash, created_at: t.createdAt, last_used_at: t.lastUsedAt, revoked_at: t.revokedAt,
          user_name: t.user, machine_id: t.machineId,
        })
        .execute();
      tx.changed('token', t.id);
    });
    return toToken(t);
  }

  async findTokenByHash(hash: string): Promise<StoredToken | null> {
    const r = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    return r === undefined ? null : { ...toToken(rowToTokenLike(r)), hash: r.hash };
  }

  async listTokens(): Promise<Token[]> {
    return (await this.db.selectFrom('tokens').selectAll().orderBy('created_at').orderBy('id').execute()).map((r) => toToken(rowToTokenLike(r)));
  }

  async revokeToken(id: string, at: string): Promise<Token> {
    return this.write(async (tx) => {
      const res = await tx.db.updateTable('tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (res.numUpdatedRows > 0n) tx.changed('token', id);
      const r = await tx.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
      if (r === undefined) throw new KilnError('KILN_TOKEN_NOT_FOUND', `no token ${id}`);
      return toToken(rowToTokenLike(r));
    });
  }

  async touchToken(id: string, at: string): Promise<void> {
    // Not a change subscribers care about: no notification, so auth caches stay warm.
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async countTokens(role?: Role): Promise<number> {
    let q = this.db.selectFrom('tokens').select((eb) => eb.fn.countAll<number>().as('n')).where('revoked_at', 'is', null);
    if (role !== undefined) q = q.where('role', '=', role);
    return Number((await q.executeTakeFirstOrThrow()).n);
  }

  // ---------------------------------------------------------------- payloads

  private payloadRow(p: Payload): Database['payloads'] {
    return {
      name: p.name, description: p.description, directory: p.directory, schema: json(p.schema), parameters: json(sortKeys(p.parameters)),
      created_at: p.createdAt, updated_at: p.updatedAt, revision: p.revision,
    };
  }

  async createPayload(p: Payload): Promise<Payload> {
    await this.write(async (tx) => {
      await tx.unique('KILN_PAYLOAD_EXISTS', `payload ${p.name} exists`, () => tx.db.insertInto('payloads').values(tx.payloadRow(p)).execute());
      tx.changed('payload', p.name);
    });
    return p;
  }

  async getPayload(name: string): Promise<Payload | null> {
    const r = await this.db.selectFrom('payloads').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toPayload(r);
  }

  async listPayloads(): Promise<Payload[]> {
    return (await this.db.selectFrom('payloads').selectAll().orderBy('name').execute()).map(toPayload);
  }

  async replacePayload(p: Payload, expected: ExpectedRevision): Promise<Payload> {
    const { name, created_at: _c, ...row } = this.payloadRow(p);
    return this.write(async (tx) => {
      const res = await tx.db.updateTable('payloads').set(row).where('name', '=', name).where('revision', '=', expected ?? p.revision - 1).executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getPayload(name)) !== null, 'KILN_PAYLOAD_NOT_FOUND', `payload ${name}`);
      tx.changed('payload', name);
      return (await tx.getPayload(name))!;
    });
  }

  async deletePayload(name: string, expected: ExpectedRevision): Promise<void> {
    await this.atomic(async (tx) => {
      const users = await tx.db.selectFrom('machines').select('id').where('payload', '=', name).limit(1).execute();
      const profiles = await tx.db.selectFrom('profiles').select('name').where('payload', '=', name).limit(1).execute();
      if (users.length > 0 || profiles.length > 0) throw new KilnError('KILN_PAYLOAD_IN_USE', `machines or profiles refer to payload ${name}`);
      let q = tx.db.deleteFrom('payloads').where('name', '=', name);
      if (expected !== undefined) q = q.where('revision', '=', expected);
      const res = await q.executeTakeFirst();
      if (res.numDeletedRows === 0n) await tx.missed((await tx.getPayload(name)) !== null, 'KILN_PAYLOAD_NOT_FOUND', `payload ${name}`);
      tx.changed('payload', name);
    });
  }

  // ---------------------------------------------------------------- users and sessions

  private userRow(u: User): Database['users'] {
    return {
      name: u.name, display_name: u.displayName, email: u.email, role: u.role, external_id: u.externalId,
      created_at: u.createdAt, updated_at: u.updatedAt, revision: u.revision,
    };
  }

  async createUser(u: User): Promise<User> {
    await this.write(async (tx) => {
      await tx.unique('KILN_USER_EXISTS', `a user named ${u.name}, or with that e-mail or login, exists`, () => tx.db.insertInto('users').values(tx.userRow(u)).execute());
      tx.changed('user', u.name);
    });
    return u;
  }

  async getUser(name: string): Promise<User | null> {
    const r = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : toUser(r);
  }

  async findUserByExternalId(externalId: string): Promise<User | null> {
    const r = await this.db.selectFrom('users').selectAll().where('external_id', '=', externalId).executeTakeFirst();
    return r === undefined ? null : toUser(r);
  }

  async listUsers(): Promise<User[]> {
    return (await this.db.selectFrom('users').selectAll().orderBy('name').execute()).map(toUser);
  }

  async replaceUser(u: User, expected: ExpectedRevision): Promise<User> {
    const { name, created_at: _c, ...row } = this.userRow(u);
    return this.write(async (tx) => {
      const res = await tx.unique('KILN_USER_EXISTS', `another user has that e-mail or login`, () =>
        tx.db.updateTable('users').set(row).where('name', '=', name).where('revision', '=', expected ?? u.revision - 1).executeTakeFirst(),
      );
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getUser(name)) !== null, 'KILN_USER_NOT_FOUND', `user ${name}`);
      // A role change must reach every cached session and token of the user.
      tx.changed('user', name);
      tx.changed('token', '');
      return (await tx.getUser(name))!;
    });
  }

  async deleteUser(name: string, expected: ExpectedRevision): Promise<void> {
    await this.atomic(async (tx) => {
      const owned = await tx.db.selectFrom('images').select('name').where('owner', '=', name).limit(1).execute();
      if (owned.length > 0) throw new KilnError('KILN_USER_IN_USE', `user ${name} still owns image ${owned[0]!.name}`);
      await tx.db.deleteFrom('boot_queue').where('setup_id', 'in', (eb) => eb.selectFrom('image_setups').select('id').where('owner', '=', name)).execute();
      await tx.db.deleteFrom('image_setups').where('owner', '=', name).execute();
      await tx.db.deleteFrom('sessions').where('user_name', '=', name).execute();
      await tx.db.deleteFrom('tokens').where('user_name', '=', name).execute();
      let q = tx.db.deleteFrom('users').where('name', '=', name);
      if (expected !== undefined) q = q.where('revision', '=', expected);
      const res = await q.executeTakeFirst();
      if (res.numDeletedRows === 0n) await tx.missed((await tx.getUser(name)) !== null, 'KILN_USER_NOT_FOUND', `user ${name}`);
      tx.changed('user', name);
      tx.changed('token', '');
    });
  }

  async createSession(s: Session): Promise<void> {
    await this.db.insertInto('sessions').values({ hash: s.hash, user_name: s.user, created_at: s.createdAt, expires_at: s.expiresAt }).execute();
  }

  async findSession(hash: string, now: string): Promise<Session | null> {
    const r = await this.db.selectFrom('sessions').selectAll().where('hash', '=', hash).where('expires_at', '>', now).executeTakeFirst();
    return r === undefined ? null : { hash: r.hash, user: r.user_name, createdAt: r.created_at, expiresAt: r.expires_at };
  }

  async deleteSession(hash: string): Promise<void> {
    await this.write(async (tx) => {
      await tx.db.deleteFrom('sessions').where('hash', '=', hash).execute();
      // Session caches key on the hash; 'token' empties them.
      tx.changed('token', '');
    });
  }

  async deleteExpiredSessions(now: string): Promise<number> {
    const res = await this.db.deleteFrom('sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // ---------------------------------------------------------------- image setups and the boot queue

  private setupRow(s: ImageSetup): Database['image_setups'] {
    return { id: s.id, name: s.name, owner: s.owner, images: json(s.images), created_at: s.createdAt, updated_at: s.updatedAt, revision: s.revision };
  }

  async createImageSetup(s: ImageSetup): Promise<ImageSetup> {
    await this.write(async (tx) => {
      await tx.db.insertInto('image_setups').values(tx.setupRow(s)).execute();
      tx.changed('image-setup', s.id);
    });
    return s;
  }

  async getImageSetup(id: string): Promise<ImageSetup | null> {
    const r = await this.db.selectFrom('image_setups').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : toImageSetup(r);
  }

  async listImageSetups(filter: { owner?: string | undefined }): Promise<ImageSetup[]> {
    let q = this.db.selectFrom('image_setups').selectAll();
    if (filter.owner !== undefined) q = q.where('owner', '=', filter.owner);
    return (await q.orderBy('created_at').orderBy('id').execute()).map(toImageSetup);
  }

  async replaceImageSetup(s: ImageSetup, expected: ExpectedRevision): Promise<ImageSetup> {
    const { id, created_at: _c, ...row } = this.setupRow(s);
    return this.write(async (tx) => {
      const res = await tx.db.updateTable('image_setups').set(row).where('id', '=', id).where('revision', '=', expected ?? s.revision - 1).executeTakeFirst();
      if (res.numUpdatedRows === 0n) await tx.missed((await tx.getImageSetup(id)) !== null, 'KILN_SETUP_NOT_FOUND', `image setup ${id}`);
      tx.changed('image-setup', id);
      return (await tx.getImageSetup(id))!;
    });
  }

  async deleteImageSetup(id: string, expected: ExpectedRevision): Promise<void> {
    await this.atomic(async (tx) => {
      if (expected !== undefined) {
        const cur = await tx.getImageSetup(id);
        if (cur === null || cur.revision !== expected) await tx.missed(cur !== null, 'KILN_SETUP_NOT_FOUND', `image setup ${id}`);
      }
      await tx.db.deleteFrom('boot_queue').where('setup_id', '=', id).execute();
      const res = await tx.db.deleteFrom('image_setups').where('id', '=', id).executeTakeFirst();
      if (res.numDeletedRows === 0n) throw new KilnError('KILN_SETUP_NOT_FOUND', `no image setup ${id}`);
      tx.changed('image-setup', id);
    });
  }

  async enqueueBoot(e: Omit<BootQueueEntry, 'seq' | 'poppedAt'>): Promise<BootQueueEntry> {
    const r = await this.db
      .insertInto('boot_queue')
      .values({ machine_id: e.machineId, setup_id: e.setup, update_images: e.update ? 1 : 0, actor: e.actor, created_at: e.createdAt, popped_at: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toQueueEntry(r);
  }

  async popBoot(machineId: string, at: string): Promise<BootQueueEntry | null> {
    // Claim by a conditional UPDATE of the oldest entry; a concurrent popper that lost the row tries the next.
    for (;;) {
      const head = await this.db
        .selectFrom('boot_queue')
        .select('seq')
        .where('machine_id', '=', machineId)
        .where('popped_at', 'is', null)
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst();
      if (head === undefined) return null;
      const r = await this.db
        .updateTable('boot_queue')
        .set({ popped_at: at })
        .where('seq', '=', head.seq)
        .where('popped_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (r !== undefined) return toQueueEntry(r);
    }
  }

  async listBootQueue(machineId: string, opts: { popped: boolean; limit: number }): Promise<BootQueueEntry[]> {
    let q = this.db.selectFrom('boot_queue').selectAll().where('machine_id', '=', machineId);
    q = opts.popped ? q.where('popped_at', 'is not', null).orderBy('seq', 'desc') : q.where('popped_at', 'is', null).orderBy('seq');
    return (await q.limit(opts.limit).execute()).map(toQueueEntry);
  }

  // ---------------------------------------------------------------- secrets

  async ensureSecret(name: string, candidate: string, at: string): Promise<string> {
    await this.db.insertInto('secrets').values({ name, value: candidate, created_at: at }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const r = await this.db.selectFrom('secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow();
    return r.value;
  }

  // ---------------------------------------------------------------- public keys
  // (and customize sessions; the row mapping is at the end of this file)

  async createPublicKey(k: PublicKey): Promise<PublicKey> {
    await this.unique('KILN_PUBLIC_KEY_EXISTS', `a public key named ${k.name} exists`, () => this.db.insertInto('public_keys').values(publicKeyRow(k)).execute());
    return (await this.getPublicKey(k.id))!;
  }

  async getPublicKey(id: string): Promise<PublicKey | null> {
    const r = await this.db.selectFrom('public_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return r === undefined ? null : toPublicKey(r);
  }

  async findPublicKeyByName(name: string): Promise<PublicKey | null> {
    const r = await this.db.selectFrom('public_keys').selectAll().where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
    return r === undefined ? null : toPublicKey(r);
  }

  async listPublicKeys(filter: { deleted: boolean; owner?: string | undefined }): Promise<PublicKey[]> {
    let q = this.db.selectFrom('public_keys').selectAll().where('deleted_at', filter.deleted ? 'is not' : 'is', null);
    if (filter.owner !== undefined) q = q.where('owner', '=', filter.owner);
    return (await q.orderBy('name').orderBy('id').execute()).map(toPublicKey);
  }

  async setPublicKeyDeleted(id: string, deletedAt: string | null): Promise<PublicKey> {
    const res = await this.unique('KILN_PUBLIC_KEY_EXISTS', `another live public key has the name of ${id}`, () =>
      this.db.updateTable('public_keys').set({ deleted_at: deletedAt }).where('id', '=', id).executeTakeFirst(),
    );
    if (res.numUpdatedRows === 0n) throw new KilnError('KILN_PUBLIC_KEY_NOT_FOUND', `no public key ${id}`);
    return (await this.getPublicKey(id))!;
  }

  async purgePublicKey(id: string): Promise<void> {
    const res = await this.db.deleteFrom('public_keys').where('id', '=', id).executeTakeFirst();
    if (res.numDeletedRows === 0n) throw new KilnError('KILN_PUBLIC_KEY_NOT_FOUND', `no public key ${id}`);
  }

  async saveCustomizeSession(cs: CustomizeSession): Promise<CustomizeSession> {
    const { job_id: _j, created_at: _c, ...rest } = customizeSessionRow(cs);
    await this.db.insertInto('customize_sessions').values(customizeSessionRow(cs)).onConflict((oc) => oc.column('job_id').doUpdateSet(rest)).execute();
    return (await this.getCustomizeSession(cs.jobId))!;
  }

  async getCustomizeSession(jobId: string): Promise<CustomizeSession | null> {
    const r = await this.db.selectFrom('customize_sessions').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    return r === undefined ? null : toCustomizeSession(r);
  }

  async setCustomizeConnection(jobId: string, c: CustomizeConnection | null, at: string): Promise<CustomizeSession> {
    const res = await this.db
      .updateTable('customize_sessions')
      .set({ host: c?.host ?? null, port: c?.port ?? null, user_name: c?.user ?? null, host_key_fingerprint: c?.hostKeyFingerprint ?? null, updated_at: at })
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    if (res.numUpdatedRows === 0n) throw new KilnError('KILN_CUSTOMIZE_NOT_FOUND', `no customize session for job ${jobId}`);
    return (await this.getCustomizeSession(jobId))!;
  }

  async requestCustomizeDone(jobId: string, actor: string, at: string): Promise<CustomizeSession> {
    await this.db
      .updateTable('customize_sessions')
      .set({ done_requested_at: at, done_requested_by: actor, updated_at: at })
      .where('job_id', '=', jobId)
      .where('done_requested_at', 'is', null)
      .execute();
    const s = await this.getCustomizeSession(jobId);
    if (s === null) throw new KilnError('KILN_CUSTOMIZE_NOT_FOUND', `no customize session for job ${jobId}`);
    return s;
  }

  // ---------------------------------------------------------------- recipes (image builds)

  async createRecipe(r: Recipe): Promise<Recipe> {
    await this.unique('KILN_RECIPE_EXISTS', `recipe ${r.name} exists`, () => this.db.insertInto('recipes').values(KyselyStore.recipeRow(r)).execute());
    return (await this.getRecipe(r.name))!;
  }

  async getRecipe(name: string): Promise<Recipe | null> {
    const r = await this.db.selectFrom('recipes').selectAll().where('name', '=', name).executeTakeFirst();
    return r === undefined ? null : KyselyStore.toRecipe(r);
  }

  async listRecipes(): Promise<Recipe[]> {
    return (await this.db.selectFrom('recipes').selectAll().orderBy('name').execute()).map((r) => KyselyStore.toRecipe(r));
  }

  async replaceRecipe(r: Recipe, expected: ExpectedRevision): Promise<Recipe> {
    const res = await this.db
      .updateTable('recipes')
      .set({ description: r.description, sha256: r.sha256, size: r.size, updated_at: r.updatedAt, revision: r.revision })
      .where('name', '=', r.name)
      .where('revision', '=', expected ?? r.revision - 1)
      .executeTakeFirst();
    if (res.numUpdatedRows === 0n) await this.missed((await this.getRecipe(r.name)) !== null, 'KILN_RECIPE_NOT_FOUND', `recipe ${r.name}`);
    return (await this.getRecipe(r.name))!;
  }

  async deleteRecipe(name: string, expected: ExpectedRevision): Promise<void> {
    let q = this.db.deleteFrom('recipes').where('name', '=', name);
    if (expected !== undefined) q = q.where('revision', '=', expected);
    const res = await q.executeTakeFirst();
    if (res.numDeletedRows === 0n) await this.missed((await this.getRecipe(name)) !== null, 'KILN_RECIPE_NOT_FOUND', `recipe ${name}`);
  }

  private static recipeRow(r: Recipe): Database['recipes'] {
    return {
      id: r.id, name: r.name, kind: r.kind, arch: r.arch, description: r.description, sha256: r.sha256, size: r.size,
      created_at: r.createdAt, updated_at: r.updatedAt, revision: r.revision,
    };
  }

  private static toRecipe(r: Database['recipes']): Recipe {
    return {
      id: r.id, name: r.name, kind: r.kind as RecipeKind, arch: r.arch as Arch, description: r.description, sha256: r.sha256, size: Number(r.size),
      createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision),
    };
  }
}

// ---------------------------------------------------------------- row mapping

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function toArtifact(r: Database['artifacts']): Artifact {
  return { sha256: r.sha256, size: Number(r.size), mediaType: r.media_type, createdAt: r.created_at };
}

function toImage(r: Database['images']): Image {
  return { name: r.name, description: r.description, labels: parse(r.labels), owner: r.owner, createdAt: r.created_at, updatedAt: r.updated_at, deletedAt: r.deleted_at, revision: Number(r.revision) };
}

function toChannel(r: Database['channels']): Channel {
  return { image: r.image, name: r.name, version: r.version, revision: Number(r.revision), updatedAt: r.updated_at };
}

function toProfile(r: Database['profiles']): Profile {
  return {
    name: r.name,
    description: r.description,
    image: r.channel !== null ? { image: r.image, channel: r.channel } : { image: r.image, version: r.version ?? '' },
    kernelArgs: parse(r.kernel_args),
    template: r.template,
    payload: r.payload,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    revision: Number(r.revision),
  };
}

function toGroup(r: Database['groups']): Group {
  return { name: r.name, description: r.description, selectors: parse(r.selectors), profile: r.profile, createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision) };
}

export function toMachine(r: Database['machines'], macs: string[]): Machine {
  return {
    id: r.id, macs, uuid: r.uuid, serial: r.serial, hostname: r.hostname, labels: parse(r.labels), arch: r.arch as Arch | null,
    firmware: r.firmware as Firmware | null, state: r.state as MachineState, profile: r.profile, nextBoot: r.next_boot,
    lastSeenAt: r.last_seen_at, createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision), payload: r.payload,
    nextBootTaken: r.next_boot_taken !== null && r.next_boot_taken_at !== null ? { profile: r.next_boot_taken, at: r.next_boot_taken_at } : null,
  };
}

function toPayload(r: Database['payloads']): Payload {
  return {
    name: r.name, description: r.description, directory: r.directory, schema: parse(r.schema), parameters: parse(r.parameters),
    createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision),
  };
}

function toUser(r: Database['users']): User {
  return {
    name: r.name, displayName: r.display_name, email: r.email, role: r.role as Role, externalId: r.external_id,
    createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision),
  };
}

function toImageSetup(r: Database['image_setups']): ImageSetup {
  return { id: r.id, name: r.name, owner: r.owner, images: parse<SetupImage[]>(r.images), createdAt: r.created_at, updatedAt: r.updated_at, revision: Number(r.revision) };
}

function toQueueEntry(r: Selectable<Database['boot_queue']>): BootQueueEntry {
  return {
    seq: Number(r.seq), machineId: r.machine_id, setup: r.setup_id, update: Number(r.update_images) === 1, actor: r.actor,
    createdAt: r.created_at, poppedAt: r.popped_at,
  };
}

function rowToTokenLike(r: Database['tokens']): Token {
  return {
    id: r.id, name: r.name, role: r.role as Role, createdAt: r.created_at, lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
    user: r.user_name, machineId: r.machine_id,
  };
}

function toToken(t: Token): Token {
  return { id: t.id, name: t.name, role: t.role, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt, user: t.user, machineId: t.machineId };
}

// ---------------------------------------------------------------- public keys and customize sessions: rows

function publicKeyRow(k: PublicKey): Database['public_keys'] {
  return {
    id: k.id, name: k.name, owner: k.owner, public_key: k.publicKey, key_type: k.type, comment: k.comment, fingerprint: k.fingerprint,
    created_at: k.createdAt, deleted_at: k.deletedAt,
  };
}

function toPublicKey(r: Database['public_keys']): PublicKey {
  return {
    id: r.id, name: r.name, owner: r.owner, publicKey: r.public_key, type: r.key_type, comment: r.comment, fingerprint: r.fingerprint,
    createdAt: r.created_at, deletedAt: r.deleted_at,
  };
}

function customizeSessionRow(s: CustomizeSession): Database['customize_sessions'] {
  return {
    job_id: s.jobId, image: s.image, version: s.version, public_key_id: s.publicKeyId, public_key_fingerprint: s.publicKeyFingerprint,
    host: s.connection?.host ?? null, port: s.connection?.port ?? null, user_name: s.connection?.user ?? null, host_key_fingerprint: s.connection?.hostKeyFingerprint ?? null,
    done_requested_at: s.doneRequestedAt, done_requested_by: s.doneRequestedBy, created_at: s.createdAt, updated_at: s.updatedAt,
  };
}

function toCustomizeSession(r: Database['customize_sessions']): CustomizeSession {
  const connection = r.host !== null && r.port !== null && r.user_name !== null && r.host_key_fingerprint !== null
    ? { host: r.host, port: Number(r.port), user: r.user_name, hostKeyFingerprint: r.host_key_fingerprint }
    : null;
  return {
    jobId: r.job_id, image: r.image, version: r.version, publicKeyId: r.public_key_id, publicKeyFingerprint: r.public_key_fingerprint, connection,
    doneRequestedAt: r.done_requested_at, doneRequestedBy: r.done_requested_by, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}
