// The boot path: identify (or enroll) the machine, decide its plan, consume a next boot exactly once,
// and record what happened. Transports call this; rendering the script is the listener's job.
import type { BootCache } from '../boot-cache.js';
import type { BootEventRecorder } from '../boot-event-recorder.js';
import { KilnError } from '../kiln-error.js';
import { chooseProfile, resolvePlan, selectionFacts, storeReader, type PlanOutcome } from '../plan-boot.js';
import type { Clock, IdSource, Store } from '../ports.js';
import type { BootFacts, Machine, MachineState } from '../types.js';

export interface BootDecision {
  /** Null only for an unknown machine when enrollment is off. */
  machine: Machine | null;
  outcome: PlanOutcome;
}

export interface BootOptions {
  /** Enroll machines Kiln has never seen as `discovered` (off: a closed fleet; strangers are told no). */
  enrollUnknown: boolean;
}

export const CALLBACK_STATES = ['booted', 'failed'] as const satisfies readonly MachineState[];
export type CallbackState = (typeof CALLBACK_STATES)[number];

export class BootService {
  constructor(
    private readonly store: Store,
    private readonly cache: BootCache,
    private readonly recorder: BootEventRecorder,
    private readonly clock: Clock,
    private readonly ids: IdSource,
    private readonly opts: BootOptions = { enrollUnknown: true },
  ) {}

  /** The machine that owns one of these MACs (booting NIC first), enrolling it as `discovered` if unknown. */
  async identify(facts: BootFacts, otherMacs: readonly string[] = []): Promise<{ machine: Machine | null; enrolled: boolean }> {
    for (const mac of [facts.mac, ...otherMacs]) {
      const m = await this.cache.findMachineByMac(mac);
      if (m !== null) return { machine: m, enrolled: false };
    }
    if (facts.uuid !== undefined) {
      const m = await this.store.findMachineByUuid(facts.uuid);
      if (m !== null) return { machine: m, enrolled: false };
    }
    if (!this.opts.enrollUnknown) return { machine: null, enrolled: false };
    const at = this.clock.now().toISOString();
    try {
      const machine = await this.store.createMachine({
        id: this.ids.id(),
        macs: [facts.mac],
        uuid: facts.uuid ?? null,
        serial: facts.serial ?? null,
        hostname: facts.hostname ?? null,
        labels: {},
        arch: facts.arch ?? null,
        firmware: facts.platform === 'efi' ? 'uefi' : facts.platform === 'pcbios' ? 'bios' : null,
        state: 'discovered',
        profile: null,
        nextBoot: null,
        nextBootTaken: null,
        payload: null,
        lastSeenAt: at,
        createdAt: at,
        updatedAt: at,
        revision: 1,
      });
      void this.recorder.record({ machineId: machine.id, at, kind: 'enrolled', detail: { mac: facts.mac, address: facts.address ?? null }, state: null });
      return { machine, enrolled: true };
    } catch (err) {
      // Two first boots of one machine raced; the other one enrolled it.
      if (err instanceof KilnError && (err.code === 'KILN_MACHINE_MAC_TAKEN' || err.code === 'KILN_MACHINE_UUID_TAKEN')) {
        const m = (await this.store.findMachineByMac(facts.mac)) ?? (facts.uuid !== undefined ? await this.store.findMachineByUuid(facts.uuid) : null);
        if (m !== null) return { machine: m, enrolled: false };
      }
      throw err;
    }
  }

  /**
   * Decides this boot. Takes the machine's next boot if it has one; only one concurrent boot can take it.
   * `repeatWindowMs`: for clients that ask several times per boot (pixiecore), a next boot taken this
   * recently is served again instead of falling back to the machine's usual plan.
   */
  async decide(facts: BootFacts, otherMacs: readonly string[] = [], opts: { repeatWindowMs?: number } = {}): Promise<BootDecision> {
    let { machine } = await this.identify(facts, otherMacs);
    if (machine === null) {
      return { machine: null, outcome: { plan: null, reason: 'this machine is not registered, and enrollment of unknown machines is off' } };
    }
    const sel = selectionFacts(machine, { ...pickDefined(facts), mac: facts.mac });
    let choice = await chooseProfile(this.cache, machine, sel, true);
    const at = this.clock.now().toISOString();
    const taken = machine.nextBootTaken;
    if (choice?.source.kind !== 'next-boot' && taken !== null && opts.repeatWindowMs !== undefined && Date.parse(at) - Date.parse(taken.at) <= opts.repeatWindowMs) {
      // The boot's first request took the next boot; this is the same boot asking again.
      choice = { profile: taken.profile, source: { kind: 'next-boot' } };
    } else if (choice?.source.kind === 'next-boot') {
      if (await this.store.consumeNextBoot(machine.id, choice.profile, at)) {
        void this.recorder.record({ machineId: machine.id, at, kind: 'next-boot-consumed', detail: { profile: choice.profile }, state: null });
      } else {
        // Another boot took it between our read and our write: plan as if it were never there.
        machine = (await this.store.getMachine(machine.id)) ?? machine;
        choice = await chooseProfile(this.cache, { ...machine, nextBoot: null }, sel, false);
      }
    }
    const outcome = await resolvePlan(this.cache, choice, sel.arch);
    const detail: Record<string, unknown> = { mac: facts.mac, address: facts.address ?? null };
    if (outcome.plan !== null) {
      // No reason text here: it follows from profile, image, version and source, and every boot writes one of these.
      Object.assign(detail, { profile: outcome.plan.profile.name, image: outcome.plan.image, version: outcome.plan.version.version, channel: outcome.plan.channel, source: outcome.plan.source.kind });
      void this.recorder.record({ machineId: machine.id, at, kind: 'script', detail, state: 'booting' });
    } else {
      void this.recorder.record({ machineId: machine.id, at, kind: 'no-plan', detail: { ...detail, reason: outcome.reason }, state: null });
    }
    return { machine, outcome };
  }

  /**
   * What the machine would boot now and why, without taking its next boot or recording anything.
   * `address`: the client address, for subnet selectors (a machine's address is not stored).
   */
  async explain(machine: Machine, address?: string): Promise<PlanOutcome> {
    const sel = selectionFacts(machine, address === undefined ? {} : { address });
    const reader = storeReader(this.store);
    return resolvePlan(reader, await chooseProfile(reader, machine, sel, true), sel.arch);
  }

  /** A booted OS (or iPXE) reports its state; the event is durable when this returns. */
  async callback(mac: string, state: CallbackState, detail: Record<string, unknown>): Promise<Machine> {
    const machine = await this.knownMachine(mac);
    await this.recorder.record({ machineId: machine.id, at: this.clock.now().toISOString(), kind: 'callback', detail: { mac, state, ...detail }, state });
    return machine;
  }

  async heartbeat(mac: string, detail: Record<string, unknown>): Promise<Machine> {
    const machine = await this.knownMachine(mac);
    // A heartbeat proves the OS runs: a machine still marked booting has booted.
    const state = machine.state === 'booting' || machine.state === 'discovered' ? 'booted' : null;
    await this.recorder.record({ machineId: machine.id, at: this.clock.now().toISOString(), kind: 'heartbeat', detail: { mac, ...detail }, state });
    return machine;
  }

  /**
   * A PXE or HTTP-boot client asked Kiln's proxyDHCP for a boot file: the first entry of the boot's
   * timeline (unknown machines are enrolled, as on their first script request).
   */
  async dhcpSeen(facts: BootFacts, detail: Record<string, unknown>): Promise<Machine | null> {
    const { machine } = await this.identify(facts);
    if (machine !== null) await this.recorder.record({ machineId: machine.id, at: this.clock.now().toISOString(), kind: 'dhcp', detail: { mac: facts.mac, ...detail }, state: null });
    return machine;
  }

  /** An artifact response finished; fire and forget (the hot path must not wait on the database). */
  artifactServed(mac: string, detail: Record<string, unknown>): void {
    void this.cache.findMachineByMac(mac).then((m) => {
      if (m !== null) void this.recorder.record({ machineId: m.id, at: this.clock.now().toISOString(), kind: 'artifact', detail, state: null });
    }, () => undefined);
  }

  private async knownMachine(mac: string): Promise<Machine> {
    const m = await this.store.findMachineByMac(mac);
    if (m === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine with MAC ${mac}`);
    return m;
  }
}

function pickDefined(f: BootFacts): Partial<Omit<BootFacts, 'mac'>> {
  const out: Partial<Omit<BootFacts, 'mac'>> & Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) if (k !== 'mac' && v !== undefined) out[k] = v;
  return out;
}
