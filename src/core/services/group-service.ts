// Groups: selectors plus a profile. Saving refuses a group that could tie with another for some machine.
import { KilnError } from '../kiln-error.js';
import { parseMac } from '../mac.js';
import type { Clock, ExpectedRevision, Store } from '../ports.js';
import { findAmbiguousGroup, parseCidr } from '../select-group.js';
import { ARCHES, type Group, type Selectors } from '../types.js';
import { normalizeHostname, normalizeSerial, normalizeUuid, validateLabels, validateName } from '../validate.js';

export interface GroupInput {
  name: string;
  description?: string | undefined;
  selectors?: Selectors | undefined;
  profile: string;
}

const PLATFORM = /^[a-z0-9_-]{1,32}$/;

export function normalizeSelectors(s: Selectors): Selectors {
  const code = 'KILN_GROUP_SELECTOR_INVALID';
  const out: Selectors = {};
  try {
    if (s.mac !== undefined) out.mac = parseMac(s.mac);
  } catch {
    throw new KilnError(code, `invalid mac selector ${JSON.stringify(s.mac)}`);
  }
  if (s.uuid !== undefined) out.uuid = normalizeUuid(s.uuid, code);
  if (s.serial !== undefined) out.serial = normalizeSerial(s.serial, code);
  if (s.hostname !== undefined) out.hostname = normalizeHostname(s.hostname, code);
  if (s.arch !== undefined) {
    if (!ARCHES.includes(s.arch)) throw new KilnError(code, `arch must be one of ${ARCHES.join(', ')}`);
    out.arch = s.arch;
  }
  if (s.platform !== undefined) {
    if (!PLATFORM.test(s.platform)) throw new KilnError(code, `invalid platform selector ${JSON.stringify(s.platform)}`);
    out.platform = s.platform;
  }
  if (s.subnet !== undefined) {
    const c = parseCidr(s.subnet);
    if (c === null) throw new KilnError(code, `invalid subnet selector ${JSON.stringify(s.subnet)} (want CIDR such as 10.0.0.0/24)`);
    out.subnet = s.subnet;
  }
  if (s.labels !== undefined && Object.keys(s.labels).length > 0) out.labels = validateLabels(s.labels, code);
  return out;
}

export class GroupService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async get(name: string): Promise<Group> {
    const g = await this.store.getGroup(name);
    if (g === null) throw new KilnError('KILN_GROUP_NOT_FOUND', `no group ${JSON.stringify(name)}`);
    return g;
  }

  async list(): Promise<Group[]> {
    return this.store.listGroups();
  }

  async create(input: GroupInput): Promise<Group> {
    return this.save(input, null, undefined);
  }

  async replace(name: string, input: Omit<GroupInput, 'name'>, expected: ExpectedRevision): Promise<Group> {
    return this.save({ ...input, name }, name, expected);
  }

  private async save(input: GroupInput, existing: string | null, expected: ExpectedRevision): Promise<Group> {
    const name = validateName(input.name, 'group name');
    const selectors = normalizeSelectors(input.selectors ?? {});
    // Check and write in one serialized transaction so two racing saves (on any replica) cannot both pass the ambiguity check.
    return this.store.transaction(async (tx) => {
      const prev = existing === null ? null : await tx.getGroup(existing);
      if (existing !== null && prev === null) throw new KilnError('KILN_GROUP_NOT_FOUND', `no group ${JSON.stringify(existing)}`);
      if ((await tx.getProfile(input.profile)) === null) throw new KilnError('KILN_PROFILE_NOT_FOUND', `no profile ${JSON.stringify(input.profile)}`);
      const at = this.clock.now().toISOString();
      const group: Group = {
        name,
        description: input.description ?? '',
        selectors,
        profile: input.profile,
        createdAt: prev?.createdAt ?? at,
        updatedAt: at,
        revision: (prev?.revision ?? 0) + 1,
      };
      const clash = findAmbiguousGroup(group, await tx.listGroups());
      if (clash !== null) {
        throw new KilnError('KILN_GROUP_AMBIGUOUS', `group ${name} and group ${clash.name} are equally specific and can match the same machine; add a selector to one of them`, { conflictsWith: clash.name });
      }
      return prev === null ? tx.createGroup(group) : tx.replaceGroup(group, expected);
    }, { serialize: 'groups' });
  }

  async delete(name: string, expected: ExpectedRevision): Promise<void> {
    await this.get(name);
    await this.store.deleteGroup(name, expected);
  }
}
