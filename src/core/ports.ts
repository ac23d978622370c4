// Ports: what the core needs from the world. Adapters (src/store, src/blobs) implement them;
// each port has one contract suite that every adapter must pass.
import type { Readable } from 'node:stream';
import type {
  Artifact, BootEvent, BootEventKind, BootQueueEntry, Channel, ChannelAction, ChannelHistoryEntry, Group, Image, ImageSetup, ImageVersion,
  CustomizeConnection, CustomizeSession, Machine, MachineState, Payload, Profile, PublicKey, Role, Session, Token, User, VersionArtifact,
} from './types.js';
import type { ImsStore } from './ims/ims-records.js';
import type { Recipe } from './recipes/recipe.js';

export type EntityKind =
  | 'artifact' | 'image' | 'channel' | 'profile' | 'group' | 'machine' | 'token' | 'payload' | 'user' | 'image-setup' | 'all';

/**
 * Emitted after a write commits (here or, on a shared database, in another replica); caches listen
 * to stay exact without polling. `all` (key '') means changes may have been missed: drop everything.
 */
export interface Change {
  entity: EntityKind;
  key: string;
}

export interface MachineFilter {
  mac?: string | undefined;
  state?: MachineState | undefined;
  label?: { key: string; value: string } | undefined;
  /** Opaque cursor: return machines whose id sorts after this one. */
  after?: string | undefined;
  limit: number;
}

export interface BootEventWriteOptions {
  /** How stale a machine's stored last seen may be before a stateless event rewrites it. */
  lastSeenResolutionMs?: number;
}

export interface NewBootEvent {
  machineId: string;
  at: string;
  kind: BootEventKind;
  detail: Record<string, unknown>;
  /** Moves the machine's state with the event (null: keep the state, only touch last seen). */
  state: MachineState | null;
}

export interface StoredToken extends Token {
  hash: string;
}

/** Optimistic concurrency: when given, the write applies only if the stored revision still equals it. */
export type ExpectedRevision = number | undefined;

export interface Store {
  readonly dialect: string;

  /**
   * Runs `fn` atomically. Transactions given the same `serialize` key run one after another, across
   * every process sharing the database (check-then-write rules such as "no two groups may tie").
   */
  transaction<T>(fn: (tx: Store) => Promise<T>, opts?: { serialize?: string }): Promise<T>;
  onChange(listener: (change: Change) => void): () => void;
  /** Cheap round trip proving the store answers (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Cray IMS records; inside a transaction they take part in it. */
  readonly ims: ImsStore;

  // artifacts: records of blobs that completed an upload
  putArtifact(a: Artifact): Promise<Artifact>;
  getArtifact(sha256: string): Promise<Artifact | null>;
  listArtifacts(): Promise<Artifact[]>;
  /** Those of `candidates` that no image version, recipe or IMS object refers to any more. */
  unreferencedArtifacts(candidates: readonly string[]): Promise<string[]>;
  deleteArtifact(sha256: string): Promise<void>;

  // images, versions, channels
  createImage(image: Image): Promise<Image>;
  getImage(name: string): Promise<Image | null>;
  listImages(opts: { deleted: boolean }): Promise<Image[]>;
  updateImage(name: string, patch: Partial<Pick<Image, 'description' | 'labels' | 'deletedAt' | 'owner'>>, at: string, expected: ExpectedRevision): Promise<Image>;
  /** Images owned by `owner` (live ones), by name. */
  listImagesByOwner(owner: string): Promise<Image[]>;
  purgeImage(name: string): Promise<void>;
  createVersion(v: ImageVersion): Promise<ImageVersion>;
  getVersion(image: string, version: string): Promise<ImageVersion | null>;
  listVersions(image: string): Promise<ImageVersion[]>;
  /**
   * Swaps a version's artifacts in place (BAAS "overwrite the latest version"); the only mutation of
   * a version, kept for that compat contract. KILN_VERSION_NOT_FOUND when there is no such version.
   */
  replaceVersionArtifacts(image: string, version: string, artifacts: readonly VersionArtifact[]): Promise<ImageVersion>;
  countVersions(image: string): Promise<number>;
  getChannel(image: string, name: string): Promise<Channel | null>;
  listChannels(image: string): Promise<Channel[]>;
  /** Points the channel at `toVersion` (creating it) and appends to its history, in one step. */
  moveChannel(move: { image: string; name: string; toVersion: string; action: ChannelAction; actor: string; at: string }, expected: ExpectedRevision): Promise<Channel>;
  channelHistory(image: string, name: string): Promise<ChannelHistoryEntry[]>;
  /** Removes a channel and its history; KILN_CHANNEL_NOT_FOUND when absent. */
  deleteChannel(image: string, name: string): Promise<void>;

  // profiles and groups
  createProfile(p: Profile): Promise<Profile>;
  getProfile(name: string): Promise<Profile | null>;
  listProfiles(): Promise<Profile[]>;
  replaceProfile(p: Profile, expected: ExpectedRevision): Promise<Profile>;
  deleteProfile(name: string, expected: ExpectedRevision): Promise<void>;
  profileUsers(name: string): Promise<{ groups: string[]; machines: string[] }>;
  imageUsers(image: string): Promise<string[]>;
  createGroup(g: Group): Promise<Group>;
  getGroup(name: string): Promise<Group | null>;
  listGroups(): Promise<Group[]>;
  replaceGroup(g: Group, expected: ExpectedRevision): Promise<Group>;
  deleteGroup(name: string, expected: ExpectedRevision): Promise<void>;

  // machines and their boot timeline
  createMachine(m: Machine): Promise<Machine>;
  getMachine(id: string): Promise<Machine | null>;
  findMachineByMac(mac: string): Promise<Machine | null>;
  findMachineByUuid(uuid: string): Promise<Machine | null>;
  /** Machines with a MAC ending in `suffix` (lower-case hex, colon form); ncore's `gXXXXXX` host names. */
  findMachinesByMacSuffix(suffix: string, limit: number): Promise<Machine[]>;
  listMachines(filter: MachineFilter): Promise<Machine[]>;
  replaceMachine(m: Machine, expected: ExpectedRevision): Promise<Machine>;
  deleteMachine(id: string, expected: ExpectedRevision): Promise<void>;
  /** Clears the machine's next boot if it is still `profile` (noting it as taken at `at`); true for exactly one caller. */
  consumeNextBoot(id: string, profile: string, at: string): Promise<boolean>;
  /**
   * Appends events and moves state / last seen, in one transaction for the whole batch. A machine's row
   * is written only when its state changes or its last seen would move forward by more than
   * `lastSeenResolutionMs` (default 0); last seen never moves backward.
   */
  recordBootEvents(events: readonly NewBootEvent[], opts?: BootEventWriteOptions): Promise<void>;
  listBootEvents(machineId: string, opts: { after?: number | undefined; limit: number }): Promise<BootEvent[]>;

  // tokens
  createToken(t: StoredToken): Promise<Token>;
  findTokenByHash(hash: string): Promise<StoredToken | null>;
  listTokens(): Promise<Token[]>;
  revokeToken(id: string, at: string): Promise<Token>;
  /** Records use of a token (callers throttle this; it is not on every request). */
  touchToken(id: string, at: string): Promise<void>;
  countTokens(role?: Role): Promise<number>;

  // payloads
  createPayload(p: Payload): Promise<Payload>;
  getPayload(name: string): Promise<Payload | null>;
  listPayloads(): Promise<Payload[]>;
  replacePayload(p: Payload, expected: ExpectedRevision): Promise<Payload>;
  /** KILN_PAYLOAD_IN_USE while machines or profiles refer to it. */
  deletePayload(name: string, expected: ExpectedRevision): Promise<void>;

  // users and their login sessions
  createUser(u: User): Promise<User>;
  getUser(name: string): Promise<User | null>;
  findUserByExternalId(externalId: string): Promise<User | null>;
  listUsers(): Promise<User[]>;
  replaceUser(u: User, expected: ExpectedRevision): Promise<User>;
  /** Deletes the user with their sessions, tokens and image setups; KILN_USER_IN_USE while they own images. */
  deleteUser(name: string, expected: ExpectedRevision): Promise<void>;
  createSession(s: Session): Promise<void>;
  /** The session with this hash unless it expired before `now`. */
  findSession(hash: string, now: string): Promise<Session | null>;
  deleteSession(hash: string): Promise<void>;
  deleteExpiredSessions(now: string): Promise<number>;

  // image setups and the per-machine boot queue
  createImageSetup(s: ImageSetup): Promise<ImageSetup>;
  getImageSetup(id: string): Promise<ImageSetup | null>;
  listImageSetups(filter: { owner?: string | undefined }): Promise<ImageSetup[]>;
  replaceImageSetup(s: ImageSetup, expected: ExpectedRevision): Promise<ImageSetup>;
  deleteImageSetup(id: string, expected: ExpectedRevision): Promise<void>;
  enqueueBoot(e: Omit<BootQueueEntry, 'seq' | 'poppedAt'>): Promise<BootQueueEntry>;
  /** Takes the oldest unpopped entry of the machine's queue; of concurrent callers each gets a different one. */
  popBoot(machineId: string, at: string): Promise<BootQueueEntry | null>;
  listBootQueue(machineId: string, opts: { popped: boolean; limit: number }): Promise<BootQueueEntry[]>;

  /** The stored secret `name`; stores `candidate` first when there is none (the first caller wins). */
  ensureSecret(name: string, candidate: string, at: string): Promise<string>;

  // ---------------------------------------------------------------- recipes (image builds)
  /** KILN_RECIPE_EXISTS when the name is taken. */
  createRecipe(r: Recipe): Promise<Recipe>;
  getRecipe(name: string): Promise<Recipe | null>;
  listRecipes(): Promise<Recipe[]>;
  /** Replaces description, content (sha256, size) and updatedAt; kind, arch and id stay. */
  replaceRecipe(r: Recipe, expected: ExpectedRevision): Promise<Recipe>;
  deleteRecipe(name: string, expected: ExpectedRevision): Promise<void>;

  // ---------------------------------------------------------------- public keys
  // (and the customize sessions they open; records in the section at the end of this file)
  /** KILN_PUBLIC_KEY_EXISTS when a live key has the name. */
  createPublicKey(k: PublicKey): Promise<PublicKey>;
  getPublicKey(id: string): Promise<PublicKey | null>;
  /** The live key of that name. */
  findPublicKeyByName(name: string): Promise<PublicKey | null>;
  /** Live keys (or, with `deleted`, soft-deleted ones), by name then id. */
  listPublicKeys(filter: { deleted: boolean; owner?: string | undefined }): Promise<PublicKey[]>;
  /**
   * Soft-deletes (`deletedAt` a time) or restores (null) a key. KILN_PUBLIC_KEY_NOT_FOUND; restoring
   * while a live key has taken its name: KILN_PUBLIC_KEY_EXISTS.
   */
  setPublicKeyDeleted(id: string, deletedAt: string | null): Promise<PublicKey>;
  /** Removes a key for good; KILN_PUBLIC_KEY_NOT_FOUND. */
  purgePublicKey(id: string): Promise<void>;
  /** Stores the session of a customize job, replacing what an earlier attempt of the job left. */
  saveCustomizeSession(s: CustomizeSession): Promise<CustomizeSession>;
  getCustomizeSession(jobId: string): Promise<CustomizeSession | null>;
  /** Publishes (or with null withdraws) where the session's sshd listens; KILN_CUSTOMIZE_NOT_FOUND. */
  setCustomizeConnection(jobId: string, connection: CustomizeConnection | null, at: string): Promise<CustomizeSession>;
  /** Records that the user is done; the first request is kept (idempotent). KILN_CUSTOMIZE_NOT_FOUND. */
  requestCustomizeDone(jobId: string, actor: string, at: string): Promise<CustomizeSession>;
}

export interface BlobInfo {
  sha256: string;
  size: number;
}

export interface PutBlobOptions {
  expectedSha256?: string | undefined;
  expectedSize?: number | undefined;
}

export interface ByteRange {
  /** Inclusive first and last byte. */
  start: number;
  end: number;
}

export interface BlobReader {
  readonly size: number;
  /** Reads up to `length` bytes at `position` into the start of `buffer`; 0 only at the end. */
  read(buffer: Buffer, length: number, position: number): Promise<number>;
  /** Must be called once; the reader is unusable afterwards. */
  release(): void;
}

export interface BlobStore {
  /**
   * Streams `body` into the store, hashing as it goes. Nothing becomes visible unless every byte
   * arrived and matched the expectations; on any failure no trace is left.
   */
  put(body: Readable, opts: PutBlobOptions): Promise<BlobInfo>;
  stat(sha256: string): Promise<BlobInfo | null>;
  /** A stream of the blob (or one range of it) sized for throughput. */
  read(sha256: string, range?: ByteRange): Promise<Readable>;
  /**
   * Random access for stores that hold blobs in local files: the caller reads into buffers it owns
   * and reuses, so serving costs no allocation per chunk. Absent on remote stores.
   */
  openReader?(sha256: string): Promise<BlobReader>;
  delete(sha256: string): Promise<void>;
  /** Every live blob's sha256 (not the trash, not unfinished uploads). */
  list(): AsyncIterable<string>;
  /**
   * Moves a blob out of sight: stat, read and list no longer see it, but its bytes stay until the
   * trash is emptied. Idempotent; a blob that is not there is not an error.
   */
  trash(sha256: string): Promise<void>;
  /** Moves a trashed blob back into sight; false when the trash does not hold it. Idempotent. */
  restore(sha256: string): Promise<boolean>;
  /** Deletes blobs trashed before `before` for good; returns how many. */
  emptyTrash(before: Date): Promise<number>;
  /**
   * A URL that lets anyone holding it GET the blob (Range included) straight from the store for
   * `ttlSeconds`; absent on stores that cannot hand out such URLs (the filesystem store).
   */
  presignedUrl?(sha256: string, ttlSeconds: number): Promise<string>;
  close(): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export interface IdSource {
  id(): string;
  secret(): string;
}
