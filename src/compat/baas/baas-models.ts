// BAAS's JSON models (PascalCase, Go zero values) and how they map onto Kiln's: users and roles,
// machines (hostname, arch, labels), images named by their UUID with integer versions, image setups.
import type { Arch, Image, ImageSetup, ImageVersion, Labels, Machine, Role, User } from '../../core/types.js';
import { BaasError, bool, field, str } from './baas-http.js';

export type BaasRole = 'user' | 'moderator' | 'admin';
export const BAAS_ROLE: Record<Role, BaasRole> = { viewer: 'user', operator: 'moderator', admin: 'admin' };
export const KILN_ROLE: Record<BaasRole, Role> = { user: 'viewer', moderator: 'operator', admin: 'admin' };

/** Labels Kiln keeps BAAS's fields in. */
export const LABEL = {
  managed: 'baas/managed',
  /** On a machine: the UUID of its machine image. */
  machineImage: 'baas/image',
  /** On a machine image: its machine's MAC, dashed (label values have no colons). */
  machine: 'baas/machine',
  type: 'baas/type',
  compression: 'baas/compression',
  fileType: 'baas/file-type',
  filesystem: 'baas/filesystem',
  checksum: 'baas/checksum',
} as const;

const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;

export interface BaasUser {
  Username: string;
  Name: string;
  Email: string;
  Role: BaasRole;
}

export function toBaasUser(u: User): BaasUser {
  return { Username: u.name, Name: u.displayName, Email: u.email ?? '', Role: BAAS_ROLE[u.role] };
}

export function parseRole(value: string, bad: string): Role {
  if (value !== 'user' && value !== 'moderator' && value !== 'admin') throw new BaasError(400, bad);
  return KILN_ROLE[value];
}

/** BAAS user names are GitHub logins; Kiln's are their lower-case form. */
export function userNameOf(value: string): string {
  return value.toLowerCase();
}

// ------------------------------------------------------------------ machines

export interface BaasMachine {
  Name: string;
  Architecture: 'x86_64' | 'Arm64' | 'unknown';
  Managed: boolean;
  MacAddress: { Address: string };
  ImageUUID: string;
}

export function toBaasMachine(m: Machine): BaasMachine {
  return {
    Name: m.hostname ?? '',
    Architecture: m.arch === 'x86_64' ? 'x86_64' : m.arch === 'aarch64' ? 'Arm64' : 'unknown',
    Managed: m.labels[LABEL.managed] === 'true',
    MacAddress: { Address: m.macs[0] ?? '' },
    ImageUUID: m.labels[LABEL.machineImage] ?? '',
  };
}

export interface MachineFields {
  mac: string;
  hostname: string | null;
  arch: Arch | null;
  managed: boolean;
}

/** A MachineModel body; the MAC is checked by the caller (parseMac). */
export function parseMachine(body: Record<string, unknown>, bad: string): MachineFields {
  const name = str(body, 'Name', bad);
  const archText = str(body, 'Architecture', bad).toLowerCase();
  const arch: Arch | null | undefined = archText === 'x86_64' ? 'x86_64' : archText === 'arm64' || archText === 'aarch64' ? 'aarch64' : archText === '' || archText === 'unknown' ? null : undefined;
  if (arch === undefined) throw new BaasError(400, bad);
  const addr = field(body, 'MacAddress');
  if (typeof addr !== 'object' || addr === null || Array.isArray(addr)) throw new BaasError(400, bad);
  return { mac: str(addr as Record<string, unknown>, 'Address', bad), hostname: name === '' ? null : name, arch, managed: bool(body, 'Managed', bad) };
}

/** Label values have no colons. */
export function dashedMac(mac: string): string {
  return mac.replaceAll(':', '-');
}

// ------------------------------------------------------------------ images

export interface BaasVersion {
  Version: number;
  ImageModelUUID: string;
}

export interface BaasImage {
  Name: string;
  Versions: BaasVersion[];
  UUID: string;
  Username: string;
  DiskCompressionStrategy: string;
  ImageFileType: string;
  Type: string;
  Checksum: string;
  Filesystem: string;
}

/** `versions` are the image's integer (disk) versions, ascending. */
export function toBaasImage(image: Image, versions: readonly ImageVersion[]): BaasImage {
  const l = image.labels;
  return {
    Name: image.description,
    Versions: versions.map((v) => ({ Version: Number(v.version), ImageModelUUID: image.name })),
    UUID: image.name,
    // The original's machine images belong to "System"; Kiln's belong to nobody.
    Username: image.owner ?? 'System',
    DiskCompressionStrategy: l[LABEL.compression] ?? 'none',
    ImageFileType: l[LABEL.fileType] ?? 'raw',
    Type: l[LABEL.type] ?? 'base',
    Checksum: l[LABEL.checksum] ?? '',
    Filesystem: l[LABEL.filesystem] ?? '',
  };
}

export interface ImageFields {
  name: string;
  username: string;
  uuid: string;
  hasVersions: boolean;
  /** The baas/* labels to store (empty values left out). */
  labels: Labels;
}

/**
 * An ImageModel body. Fields kept as labels must fit label values (letters, digits, ".", "_", "-",
 * at most 63); the original's own values all do.
 */
export function parseImage(body: Record<string, unknown>, bad: string): ImageFields {
  const versions = field(body, 'Versions');
  const labels: Labels = {};
  const keep = (key: string, json: string, fallback: string) => {
    const v = str(body, json, bad) || fallback;
    if (!LABEL_VALUE.test(v)) throw new BaasError(400, `invalid ${json}: letters, digits, ".", "_", "-" only, at most 63`);
    if (v !== '') labels[key] = v;
  };
  keep(LABEL.compression, 'DiskCompressionStrategy', 'none');
  // Go maps an unknown ImageFileType to its zero value, raw.
  const fileType = str(body, 'ImageFileType', bad);
  labels[LABEL.fileType] = fileType === 'qcow2' ? 'qcow2' : 'raw';
  keep(LABEL.type, 'Type', 'base');
  keep(LABEL.checksum, 'Checksum', '');
  keep(LABEL.filesystem, 'Filesystem', '');
  const name = str(body, 'Name', bad);
  if (name.length > 1024) throw new BaasError(400, 'Name is longer than 1024 characters');
  return {
    name,
    username: str(body, 'Username', bad),
    uuid: str(body, 'UUID', bad),
    hasVersions: Array.isArray(versions) && versions.length > 0,
    labels,
  };
}

/** Replaces an image's baas/* labels, keeping labels set through Kiln's own API. */
export function withBaasLabels(current: Labels, baas: Labels): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(current)) if (!k.startsWith('baas/') || k === LABEL.machine) out[k] = v;
  return { ...out, ...baas };
}

// ------------------------------------------------------------------ image setups

export interface BaasFrozen {
  Image: BaasImage;
  UUIDImage: string;
  Version: BaasVersion;
  Update: boolean;
}

export interface BaasSetup {
  Name: string;
  Images: BaasFrozen[];
  Username: string;
  UUID: string;
}

export function toBaasFrozen(image: BaasImage, version: string, update: boolean): BaasFrozen {
  return { Image: image, UUIDImage: image.UUID, Version: { Version: Number(version), ImageModelUUID: image.UUID }, Update: update };
}

export function toBaasSetup(s: ImageSetup, images: BaasFrozen[]): BaasSetup {
  return { Name: s.name, Images: images, Username: s.owner ?? '', UUID: s.id };
}

/** The BootSetup echo: Go serialises the empty nested Machine and Setup too. */
export function toBaasBootSetup(mac: string, setup: string, update: boolean) {
  return {
    Machine: { Name: '', Architecture: '', Managed: false, MacAddress: { Address: '' }, ImageUUID: '' },
    MachineMAC: mac,
    Setup: { Name: '', Images: null, Username: '', UUID: '' },
    SetupUUID: setup,
    Update: update,
  };
}
