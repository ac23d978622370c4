// TypeBox schemas of the admin API: request validation and the OpenAPI document come from these.
import { Type, type TSchema } from 'typebox';


export const Name = Type.String({ minLength: 1, maxLength: 63, description: 'lower-case letters, digits, ".", "_", "-"' });
export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const Labels = Type.Record(Type.String({ maxLength: 63 }), Type.String({ maxLength: 63 }), { maxProperties: 64 });
export const Arch = Type.Union([Type.Literal('x86_64'), Type.Literal('aarch64')]);
export const Firmware = Type.Union([Type.Literal('bios'), Type.Literal('uefi')]);
export const Role = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]);
export const ArtifactRole = Type.Union([Type.Literal('kernel'), Type.Literal('initrd'), Type.Literal('rootfs'), Type.Literal('other')]);
export const Timestamp = Type.String({ format: 'date-time' });

export const Problem = Type.Object(
  { type: Type.String(), title: Type.String(), status: Type.Integer(), code: Type.String(), detail: Type.String(), instance: Type.Optional(Type.String()) },
  { additionalProperties: true, description: 'application/problem+json; `code` is stable (see docs/errors.md)' },
);

export const Artifact = Type.Object({ sha256: Sha256, size: Type.Integer(), mediaType: Type.String(), createdAt: Timestamp });

export const Image = Type.Object({
  name: Name, description: Type.String(), labels: Labels, owner: Type.Union([Type.Null(), Type.String()], { description: 'the user who owns the image (BAAS); null: the installation' }),
  createdAt: Timestamp, updatedAt: Timestamp,
  deletedAt: Type.Union([Timestamp, Type.Null()]), revision: Type.Integer(),
});
export const ImageCreate = Type.Object({ name: Name, description: Type.Optional(Type.String({ maxLength: 1024 })), labels: Type.Optional(Labels) }, { additionalProperties: false });
export const ImagePatch = Type.Object({ description: Type.Optional(Type.String({ maxLength: 1024 })), labels: Type.Optional(Labels) }, { additionalProperties: false });

export const VersionArtifact = Type.Object({ name: Type.String(), role: ArtifactRole, sha256: Sha256, size: Type.Integer(), mediaType: Type.String() });
export const ImageVersion = Type.Object({
  id: Type.String(), image: Name, version: Type.String(), arch: Arch, cmdline: Type.String(),
  metadata: Type.Record(Type.String(), Type.Unknown()), artifacts: Type.Array(VersionArtifact), createdAt: Timestamp,
});
export const VersionCreate = Type.Object(
  {
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    arch: Type.Optional(Arch),
    cmdline: Type.Optional(Type.String({ maxLength: 4096 })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { maxProperties: 256 })),
    artifacts: Type.Array(
      Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), role: ArtifactRole, sha256: Sha256 }, { additionalProperties: false }),
      { minItems: 1, maxItems: 64 },
    ),
  },
  { additionalProperties: false },
);

export const Channel = Type.Object({ image: Name, name: Name, version: Type.String(), revision: Type.Integer(), updatedAt: Timestamp });
export const ChannelHistoryEntry = Type.Object({
  seq: Type.Integer(), action: Type.Union([Type.Literal('promote'), Type.Literal('rollback')]), fromVersion: Type.Union([Type.String(), Type.Null()]),
  toVersion: Type.String(), actor: Type.String(), at: Timestamp,
});
export const ChannelWithHistory = Type.Object({ ...Channel.properties, history: Type.Array(ChannelHistoryEntry) });
export const Promote = Type.Object({ version: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

const ImageRef = Type.Object(
  { image: Name, channel: Type.Optional(Name), version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  { additionalProperties: false, description: 'exactly one of channel or version' },
);
export const Profile = Type.Object({
  name: Name, description: Type.String(), image: ImageRef, kernelArgs: Type.Array(Type.String()),
  template: Type.Union([Type.String(), Type.Null()]),
  payload: Type.Union([Type.Null(), Name], { description: 'payload for machines booting this profile that have none of their own' }),
  createdAt: Timestamp, updatedAt: Timestamp, revision: Type.Integer(),
});
const profileBody = {
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  image: ImageRef,
  kernelArgs: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { maxItems: 256 })),
  template: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 65536 })])),
  payload: Type.Optional(Type.Union([Type.Null(), Name])),
};
export const ProfileCreate = Type.Object({ name: Name, ...profileBody }, { additionalProperties: false });
export const ProfileReplace = Type.Object(profileBody, { additionalProperties: false });

export const Selectors = Type.Object(
  {
    mac: Type.Optional(Type.String({ maxLength: 64 })), uuid: Type.Optional(Type.String({ maxLength: 64 })),
    serial: Type.Optional(Type.String({ maxLength: 64 })), hostname: Type.Optional(Type.String({ maxLength: 253 })),
    arch: Type.Optional(Arch), platform: Type.Optional(Type.String({ maxLength: 32 })),
    subnet: Type.Optional(Type.String({ maxLength: 64 })), labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
export const Group = Type.Object({
  name: Name, description: Type.String(), selectors: Selectors, profile: Name, createdAt: Timestamp, updatedAt: Timestamp, revision: Type.Integer(),
});
const groupBody = { description: Type.Optional(Type.String({ maxLength: 1024 })), selectors: Type.Optional(Selectors), profile: Name };
export const GroupCreate = Type.Object({ name: Name, ...groupBody }, { additionalProperties: false });
export const GroupReplace = Type.Object(groupBody, { additionalProperties: false });

// Null first: Ajv's type coercion would otherwise turn a JSON null into "" for the string branch.
const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);
export const Machine = Type.Object({
  id: Type.String(), macs: Type.Array(Type.String()), uuid: Nullable(Type.String()), serial: Nullable(Type.String()),
  hostname: Nullable(Type.String()), labels: Labels, arch: Nullable(Arch), firmware: Nullable(Firmware),
  state: Type.Union([Type.Literal('discovered'), Type.Literal('ready'), Type.Literal('booting'), Type.Literal('booted'), Type.Literal('failed')]), profile: Nullable(Name), nextBoot: Nullable(Name), lastSeenAt: Nullable(Timestamp),
  nextBootTaken: Nullable(Type.Object({ profile: Name, at: Timestamp }, { description: 'the last next boot a boot took, and when' })),
  payload: Nullable(Name),
  createdAt: Timestamp, updatedAt: Timestamp, revision: Type.Integer(),
});
const machineFields = {
  uuid: Type.Optional(Nullable(Type.String({ maxLength: 64 }))), serial: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
  hostname: Type.Optional(Nullable(Type.String({ maxLength: 253 }))), labels: Type.Optional(Labels),
  arch: Type.Optional(Nullable(Arch)), firmware: Type.Optional(Nullable(Firmware)),
};
const Macs = Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 32 });
export const MachineCreate = Type.Object({ macs: Macs, ...machineFields }, { additionalProperties: false });
export const MachinePatch = Type.Object({ macs: Type.Optional(Macs), ...machineFields }, { additionalProperties: false });
export const ProfileChoice = Type.Object({ profile: Name }, { additionalProperties: false });
export const PayloadChoice = Type.Object({ payload: Name }, { additionalProperties: false });

const ParameterName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$' });
export const Payload = Type.Object({
  name: Name, description: Type.String(), directory: Type.String({ description: "where the machine finds the payload's scripts (ncore PayloadDirectory)" }),
  schema: Type.Array(Type.String(), { description: 'parameter names the payload takes' }),
  parameters: Type.Record(Type.String(), Type.String(), { description: 'values, only for names in the schema' }),
  createdAt: Timestamp, updatedAt: Timestamp, revision: Type.Integer(),
});
const payloadBody = {
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  directory: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  schema: Type.Optional(Type.Array(ParameterName, { maxItems: 256 })),
  parameters: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 16384 }))),
};
export const PayloadCreate = Type.Object({ name: Name, ...payloadBody }, { additionalProperties: false });
export const PayloadPatch = Type.Object(payloadBody, { additionalProperties: false });
export const BootEvent = Type.Object({
  id: Type.Integer(), machineId: Type.String(), at: Timestamp, kind: Type.String(), detail: Type.Record(Type.String(), Type.Unknown()),
});
export const BootPlanView = Type.Object({
  machine: Type.String(),
  bootable: Type.Boolean(),
  reason: Type.String(),
  source: Type.Optional(Type.Object({ kind: Type.String(), group: Type.Optional(Type.String()) })),
  profile: Type.Optional(Type.String()),
  image: Type.Optional(Type.String()),
  channel: Type.Optional(Nullable(Type.String())),
  version: Type.Optional(ImageVersion),
});

export const Token = Type.Object({
  id: Type.String(), name: Type.String(), role: Role, createdAt: Timestamp, lastUsedAt: Nullable(Timestamp), revokedAt: Nullable(Timestamp),
  user: Nullable(Type.String({ description: 'the user this token acts for' })),
  machineId: Nullable(Type.String({ description: 'a machine-scoped token (a management OS) acts for this machine only' })),
});
export const TokenCreate = Type.Object({
  name: Name, role: Role,
  user: Type.Optional(Type.String({ maxLength: 64, description: "act for this user: the user's current role caps the token's" })),
  machine: Type.Optional(Type.String({ maxLength: 128, description: "scope the token to one machine (id or MAC): its management OS's BAAS routes, nothing else" })),
}, { additionalProperties: false });
export const TokenCreated = Type.Object({ ...Token.properties, secret: Type.String({ description: 'shown once' }) });

export const itemsOf = <T extends TSchema>(t: T) => Type.Object({ items: Type.Array(t) });
export const NameParam = Type.Object({ name: Type.String({ maxLength: 128 }) });
