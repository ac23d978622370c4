// Domain types shared by the core, the stores and the edges. Plain data: no behaviour, no transport.

export const ARCHES = ['x86_64', 'aarch64'] as const;
export type Arch = (typeof ARCHES)[number];
export const FIRMWARES = ['bios', 'uefi'] as const;
export type Firmware = (typeof FIRMWARES)[number];
export const MACHINE_STATES = ['discovered', 'ready', 'booting', 'booted', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const ARTIFACT_ROLES = ['kernel', 'initrd', 'rootfs', 'other'] as const;
export type ArtifactRole = (typeof ARTIFACT_ROLES)[number];

export type Labels = Record<string, string>;

export interface Artifact {
  sha256: string;
  size: number;
  mediaType: string;
  createdAt: string;
}

export interface Image {
  name: string;
  description: string;
  labels: Labels;
  /** The user who owns the image (BAAS); null for images that belong to the installation. */
  owner: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  revision: number;
}

export interface VersionArtifact {
  /** File name the booted machine sees (`vmlinuz`, `initrd.img`); unique within a version. */
  name: string;
  role: ArtifactRole;
  sha256: string;
  size: number;
  mediaType: string;
}

export interface ImageVersion {
  id: string;
  image: string;
  version: string;
  arch: Arch;
  cmdline: string;
  metadata: Record<string, unknown>;
  /** Kernel first, then initrds in load order, then the rest. */
  artifacts: VersionArtifact[];
  createdAt: string;
}

export interface Channel {
  image: string;
  name: string;
  version: string;
  revision: number;
  updatedAt: string;
}

export type ChannelAction = 'promote' | 'rollback';

export interface ChannelHistoryEntry {
  seq: number;
  action: ChannelAction;
  fromVersion: string | null;
  toVersion: string;
  actor: string;
  at: string;
}

/** How a profile names its image: by channel (moves) or pinned to a version (does not). */
export type ImageRef = { image: string; channel: string; version?: undefined } | { image: string; version: string; channel?: undefined };

export interface Profile {
  name: string;
  description: string;
  image: ImageRef;
  kernelArgs: string[];
  /** A LiquidJS template producing the whole iPXE script; null means Kiln's built-in script. */
  template: string | null;
  /** Payload for machines booting this profile that have none of their own. */
  payload: string | null;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export interface Selectors {
  mac?: string;
  uuid?: string;
  serial?: string;
  hostname?: string;
  arch?: Arch;
  platform?: string;
  /** IPv4 or IPv6 CIDR matched against the client's address. */
  subnet?: string;
  labels?: Labels;
}

export interface Group {
  name: string;
  description: string;
  selectors: Selectors;
  profile: string;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export interface Machine {
  id: string;
  macs: string[];
  uuid: string | null;
  serial: string | null;
  hostname: string | null;
  labels: Labels;
  arch: Arch | null;
  firmware: Firmware | null;
  state: MachineState;
  /** Profile pinned to this machine; overrides groups. */
  profile: string | null;
  /** One-shot profile for the next boot only. */
  nextBoot: string | null;
  /**
   * The last next boot a boot took, and when. Clients that ask several times per boot (pixiecore)
   * get the same answer for a short while after it was taken.
   */
  nextBootTaken: { profile: string; at: string } | null;
  /** The payload this machine fetches after booting (ncore-api); null: its profile's, if any. */
  payload: string | null;
  lastSeenAt: string | null;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export const BOOT_EVENT_KINDS = ['enrolled', 'dhcp', 'script', 'next-boot-consumed', 'artifact', 'callback', 'heartbeat', 'no-plan'] as const;
export type BootEventKind = (typeof BOOT_EVENT_KINDS)[number];

export interface BootEvent {
  id: number;
  machineId: string;
  at: string;
  kind: BootEventKind;
  detail: Record<string, unknown>;
}

export interface Token {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  /** The user the token acts for (login sessions, BAAS); null for installation tokens. */
  user: string | null;
  /** A machine-scoped token (a management OS): it may act only for this machine. */
  machineId: string | null;
}

/** A named bundle of parameters a booted machine fetches (ncore-api payloads). */
export interface Payload {
  name: string;
  description: string;
  /** Where the machine finds the payload's scripts (ncore's PayloadDirectory). */
  directory: string;
  /** The parameter names this payload takes; `parameters` may set only these. */
  schema: string[];
  parameters: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

/** A person who logs in (OIDC / GitHub) or owns images; acts with a Kiln role. */
export interface User {
  name: string;
  displayName: string;
  email: string | null;
  role: Role;
  /** `<provider>:<subject>` of the identity that logs in as this user. */
  externalId: string | null;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export interface Session {
  hash: string;
  user: string;
  createdAt: string;
  expiresAt: string;
}

/** One image version frozen in a setup; `update` asks the machine to send its changes back as a new version. */
export interface SetupImage {
  image: string;
  version: string;
  update: boolean;
}

/** Disk images a machine's management OS writes before a session (BAAS image setups). */
export interface ImageSetup {
  id: string;
  name: string;
  owner: string | null;
  images: SetupImage[];
  createdAt: string;
  updatedAt: string;
  revision: number;
}

/** An entry of a machine's FIFO boot queue; popped (not deleted) so what a machine was given stays known. */
export interface BootQueueEntry {
  seq: number;
  machineId: string;
  setup: string;
  update: boolean;
  actor: string;
  createdAt: string;
  poppedAt: string | null;
}

/** What a booting machine tells about itself (all untrusted input). */
export interface BootFacts {
  mac: string;
  uuid?: string | undefined;
  serial?: string | undefined;
  hostname?: string | undefined;
  arch?: Arch | undefined;
  /** iPXE `${platform}`: `pcbios`, `efi`. */
  platform?: string | undefined;
  /** The client's IP address as seen by the listener. */
  address?: string | undefined;
}

/** An OpenSSH public key registered in Kiln (customize sessions accept it). */
export interface PublicKey {
  id: string;
  name: string;
  /** The user the key belongs to; null for keys of the installation. */
  owner: string | null;
  /** Normalised `<type> <base64>[ <comment>]`, as in authorized_keys (never with options). */
  publicKey: string;
  /** `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`... */
  type: string;
  comment: string;
  /** `SHA256:<base64>`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
  createdAt: string;
  deletedAt: string | null;
}

/** Where a customize session's sshd listens, and the host key clients should see there. */
export interface CustomizeConnection {
  host: string;
  port: number;
  user: string;
  hostKeyFingerprint: string;
}

/** A customize job's session: which key may log in, where, and whether the user said done. */
export interface CustomizeSession {
  jobId: string;
  image: string;
  version: string;
  publicKeyId: string;
  publicKeyFingerprint: string;
  /** Set while sshd listens (the job's stage is then `waiting_on_user`). */
  connection: CustomizeConnection | null;
  doneRequestedAt: string | null;
  doneRequestedBy: string | null;
  createdAt: string;
  updatedAt: string;
}
