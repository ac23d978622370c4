// Profiles: how to boot (image by channel or pinned version, kernel args, optional boot template).
import { KilnError } from '../kiln-error.js';
import type { Clock, ExpectedRevision, Store } from '../ports.js';
import type { ImageRef, Profile } from '../types.js';
import { validateKernelArg, validateName, validateVersion } from '../validate.js';

export interface ProfileInput {
  name: string;
  description?: string | undefined;
  image: { image: string; channel?: string | undefined; version?: string | undefined };
  kernelArgs?: string[] | undefined;
  template?: string | null | undefined;
  /** Payload for machines booting this profile that have none of their own. */
  payload?: string | null | undefined;
}

/** Checks a template when a profile is saved, so a broken one never reaches a booting machine. */
export type TemplateChecker = (template: string) => void;

export class ProfileService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly checkTemplate: TemplateChecker,
  ) {}

  private build(input: ProfileInput, prev: Profile | null): Profile {
    const name = validateName(input.name, 'profile name');
    const { image, channel, version } = input.image;
    validateName(image, 'image name');
    let ref: ImageRef;
    if (channel !== undefined && version === undefined) ref = { image, channel: validateName(channel, 'channel name') };
    else if (version !== undefined && channel === undefined) ref = { image, version: validateVersion(version) };
    else throw new KilnError('KILN_PROFILE_INVALID', 'a profile names its image by exactly one of channel or version');
    const template = input.template ?? null;
    if (template !== null) this.checkTemplate(template);
    const at = this.clock.now().toISOString();
    return {
      name,
      description: input.description ?? '',
      image: ref,
      kernelArgs: (input.kernelArgs ?? []).map((a) => validateKernelArg(a)),
      template,
      payload: input.payload == null ? null : validateName(input.payload, 'payload name'),
      createdAt: prev?.createdAt ?? at,
      updatedAt: at,
      revision: (prev?.revision ?? 0) + 1,
    };
  }

  async create(input: ProfileInput): Promise<Profile> {
    const p = this.build(input, null);
    await this.checkPayload(p);
    return this.store.createProfile(p);
  }

  private async checkPayload(p: Profile): Promise<void> {
    if (p.payload !== null && (await this.store.getPayload(p.payload)) === null) throw new KilnError('KILN_PAYLOAD_NOT_FOUND', `no payload ${p.payload}`);
  }

  async get(name: string): Promise<Profile> {
    const p = await this.store.getProfile(name);
    if (p === null) throw new KilnError('KILN_PROFILE_NOT_FOUND', `no profile ${JSON.stringify(name)}`);
    return p;
  }

  async list(): Promise<Profile[]> {
    return this.store.listProfiles();
  }

  async replace(name: string, input: Omit<ProfileInput, 'name'>, expected: ExpectedRevision): Promise<Profile> {
    const prev = await this.get(name);
    const p = this.build({ ...input, name }, prev);
    await this.checkPayload(p);
    return this.store.replaceProfile(p, expected);
  }

  async delete(name: string, expected: ExpectedRevision): Promise<void> {
    await this.store.transaction(async (tx) => {
      if ((await tx.getProfile(name)) === null) throw new KilnError('KILN_PROFILE_NOT_FOUND', `no profile ${JSON.stringify(name)}`);
      const users = await tx.profileUsers(name);
      if (users.groups.length + users.machines.length > 0) {
        throw new KilnError('KILN_PROFILE_IN_USE', `profile ${name} is used by ${users.groups.length} group(s) and ${users.machines.length} machine(s)`, users);
      }
      await tx.deleteProfile(name, expected);
    });
  }
}
