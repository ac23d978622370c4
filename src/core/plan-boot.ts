// Decides what a machine boots: next boot, else its assignment, else the most specific group; then
// resolves the profile's image reference to one immutable version. Reads only; explains itself.
import { indexGroups, selectIndexedGroup, type GroupIndex, type SelectionFacts } from './select-group.js';
import type { Store } from './ports.js';
import type { Arch, Group, Image, Channel, ImageVersion, Machine, Profile } from './types.js';

export type PlanSource = { kind: 'next-boot' } | { kind: 'assignment' } | { kind: 'group'; group: string };

export interface BootPlan {
  source: PlanSource;
  profile: Profile;
  image: string;
  channel: string | null;
  version: ImageVersion;
}

export type PlanOutcome = { plan: BootPlan; reason: string } | { plan: null; reason: string };

/** What planning reads; the boot path passes the cache, the explain endpoint the same. */
export interface PlanReader {
  groupIndex(): Promise<GroupIndex<Group>>;
  getProfile(name: string): Promise<Profile | null>;
  getImage(name: string): Promise<Image | null>;
  getChannel(image: string, name: string): Promise<Channel | null>;
  getVersion(image: string, version: string): Promise<ImageVersion | null>;
}

/** Plans straight from the store (uncached), for explanations that must show the stored truth. */
export function storeReader(store: Store): PlanReader {
  return {
    groupIndex: async () => indexGroups(await store.listGroups()),
    getProfile: (n) => store.getProfile(n),
    getImage: (n) => store.getImage(n),
    getChannel: (i, n) => store.getChannel(i, n),
    getVersion: (i, v) => store.getVersion(i, v),
  };
}

export function selectionFacts(machine: Machine, reported: Partial<SelectionFacts>): SelectionFacts {
  return {
    mac: reported.mac ?? machine.macs[0] ?? null,
    uuid: machine.uuid ?? reported.uuid,
    serial: machine.serial ?? reported.serial,
    hostname: machine.hostname ?? reported.hostname,
    arch: machine.arch ?? reported.arch,
    platform: reported.platform ?? (machine.firmware === 'uefi' ? 'efi' : machine.firmware === 'bios' ? 'pcbios' : undefined),
    address: reported.address,
    labels: machine.labels,
  };
}

/** Which profile applies and why; `useNextBoot` false when the next boot is not (or no longer) ours to take. */
export async function chooseProfile(
  reader: PlanReader,
  machine: Machine,
  facts: SelectionFacts,
  useNextBoot: boolean,
): Promise<{ profile: string; source: PlanSource } | null> {
  if (useNextBoot && machine.nextBoot !== null) return { profile: machine.nextBoot, source: { kind: 'next-boot' } };
  if (machine.profile !== null) return { profile: machine.profile, source: { kind: 'assignment' } };
  const group = selectIndexedGroup(await reader.groupIndex(), facts);
  return group === null ? null : { profile: group.profile, source: { kind: 'group', group: group.name } };
}

/** `arch`: the machine's architecture when known; a version built for another one is never served. */
export async function resolvePlan(reader: PlanReader, choice: { profile: string; source: PlanSource } | null, arch?: Arch | null): Promise<PlanOutcome> {
  if (choice === null) return { plan: null, reason: 'no assignment, no next boot, and no group matches (and there is no default group)' };
  const why = describeSource(choice.source, choice.profile);
  const profile = await reader.getProfile(choice.profile);
  if (profile === null) return { plan: null, reason: `${why}, but profile ${choice.profile} does not exist` };
  const ref = profile.image;
  const image = await reader.getImage(ref.image);
  if (image === null) return { plan: null, reason: `${why}; its image ${ref.image} does not exist` };
  if (image.deletedAt !== null) return { plan: null, reason: `${why}; its image ${ref.image} is deleted` };
  let versionName: string;
  if (ref.channel !== undefined) {
    const channel = await reader.getChannel(ref.image, ref.channel);
    if (channel === null) return { plan: null, reason: `${why}; image ${ref.image} has no channel ${ref.channel}` };
    versionName = channel.version;
  } else {
    versionName = ref.version;
  }
  const version = await reader.getVersion(ref.image, versionName);
  if (version === null) return { plan: null, reason: `${why}; image ${ref.image} has no version ${versionName}` };
  if (arch != null && version.arch !== arch) {
    return { plan: null, reason: `${why}; version ${versionName} of image ${ref.image} is built for ${version.arch}, this machine is ${arch}` };
  }
  const via = ref.channel !== undefined ? `channel ${ref.channel} resolved to version ${versionName}` : `pinned version ${versionName}`;
  return {
    plan: { source: choice.source, profile, image: ref.image, channel: ref.channel ?? null, version },
    reason: `${why}; image ${ref.image}: ${via}`,
  };
}

function describeSource(source: PlanSource, profile: string): string {
  switch (source.kind) {
    case 'next-boot':
      return `one-shot next boot with profile ${profile}`;
    case 'assignment':
      return `machine is assigned profile ${profile}`;
    case 'group':
      return `group ${source.group} matched (most specific), profile ${profile}`;
  }
}
