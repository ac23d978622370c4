// Machines: identity (MACs, UUID, serial, hostname), labels, assignment, next boot, and the boot timeline.
import { KilnError } from '../kiln-error.js';
import { parseMac, tryParseMac } from '../mac.js';
import type { Clock, ExpectedRevision, IdSource, MachineFilter, Store } from '../ports.js';
import { ARCHES, FIRMWARES, type Arch, type BootEvent, type Firmware, type Labels, type Machine } from '../types.js';
import { normalizeHostname, normalizeSerial, normalizeUuid, validateLabels } from '../validate.js';

export interface MachineInput {
  macs: string[];
  uuid?: string | null | undefined;
  serial?: string | null | undefined;
  hostname?: string | null | undefined;
  labels?: Labels | undefined;
  arch?: Arch | null | undefined;
  firmware?: Firmware | null | undefined;
}

export type MachinePatch = Partial<MachineInput>;

export class MachineService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {}

  private normalize(input: MachineInput): Pick<Machine, 'macs' | 'uuid' | 'serial' | 'hostname' | 'labels' | 'arch' | 'firmware'> {
    if (input.macs.length === 0 || input.macs.length > 32) throw new KilnError('KILN_MACHINE_INVALID', 'a machine has between 1 and 32 MAC addresses');
    const macs = [...new Set(input.macs.map(parseMac))];
    if (input.arch != null && !ARCHES.includes(input.arch)) throw new KilnError('KILN_MACHINE_INVALID', `arch must be one of ${ARCHES.join(', ')}`);
    if (input.firmware != null && !FIRMWARES.includes(input.firmware)) throw new KilnError('KILN_MACHINE_INVALID', `firmware must be one of ${FIRMWARES.join(', ')}`);
    return {
      macs,
      uuid: input.uuid == null ? null : normalizeUuid(input.uuid),
      serial: input.serial == null ? null : normalizeSerial(input.serial),
      hostname: input.hostname == null ? null : normalizeHostname(input.hostname),
      labels: validateLabels(input.labels ?? {}),
      arch: input.arch ?? null,
      firmware: input.firmware ?? null,
    };
  }

  async create(input: MachineInput): Promise<Machine> {
    const at = this.clock.now().toISOString();
    return this.store.createMachine({
      id: this.ids.id(),
      ...this.normalize(input),
      state: 'ready',
      profile: null,
      nextBoot: null,
      nextBootTaken: null,
      payload: null,
      lastSeenAt: null,
      createdAt: at,
      updatedAt: at,
      revision: 1,
    });
  }

  /** Finds a machine by id or by any of its MAC addresses. */
  async get(ref: string): Promise<Machine> {
    const mac = tryParseMac(ref);
    const m = mac !== null ? await this.store.findMachineByMac(mac) : await this.store.getMachine(ref);
    if (m === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine ${JSON.stringify(ref.slice(0, 80))}`);
    return m;
  }

  /** Machines with a MAC ending in these octets (`aa:bb:cc`), e.g. ncore's `gXXXXXX` host names. */
  async findByMacSuffix(suffix: string, limit: number): Promise<Machine[]> {
    return this.store.findMachinesByMacSuffix(suffix, limit);
  }

  async list(filter: MachineFilter): Promise<Machine[]> {
    return this.store.listMachines(filter);
  }

  async update(ref: string, patch: MachinePatch, expected: ExpectedRevision): Promise<Machine> {
    const m = await this.get(ref);
    const merged = this.normalize({
      macs: patch.macs ?? m.macs,
      uuid: patch.uuid !== undefined ? patch.uuid : m.uuid,
      serial: patch.serial !== undefined ? patch.serial : m.serial,
      hostname: patch.hostname !== undefined ? patch.hostname : m.hostname,
      labels: patch.labels ?? m.labels,
      arch: patch.arch !== undefined ? patch.arch : m.arch,
      firmware: patch.firmware !== undefined ? patch.firmware : m.firmware,
    });
    return this.store.replaceMachine({ ...m, ...merged, updatedAt: this.clock.now().toISOString() }, expected);
  }

  async delete(ref: string, expected: ExpectedRevision): Promise<void> {
    const m = await this.get(ref);
    await this.store.deleteMachine(m.id, expected);
  }

  /** Pins a profile to the machine (null removes the pin). */
  async assign(ref: string, profile: string | null, expected: ExpectedRevision): Promise<Machine> {
    return this.setProfileField(ref, 'profile', profile, expected);
  }

  /** Sets (or with null clears) the one-shot profile for the next boot. */
  async setNextBoot(ref: string, profile: string | null, expected: ExpectedRevision): Promise<Machine> {
    return this.setProfileField(ref, 'nextBoot', profile, expected);
  }

  private async setProfileField(ref: string, field: 'profile' | 'nextBoot', profile: string | null, expected: ExpectedRevision): Promise<Machine> {
    return this.store.transaction(async (tx) => {
      const mac = tryParseMac(ref);
      const m = mac !== null ? await tx.findMachineByMac(mac) : await tx.getMachine(ref);
      if (m === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine ${JSON.stringify(ref.slice(0, 80))}`);
      if (profile !== null && (await tx.getProfile(profile)) === null) throw new KilnError('KILN_PROFILE_NOT_FOUND', `no profile ${JSON.stringify(profile)}`);
      return tx.replaceMachine({ ...m, [field]: profile, updatedAt: this.clock.now().toISOString() }, expected);
    });
  }

  async events(ref: string, opts: { after?: number | undefined; limit: number }): Promise<BootEvent[]> {
    const m = await this.get(ref);
    return this.store.listBootEvents(m.id, opts);
  }
}
