// Rendered boot scripts, reused while nothing they are made of changed. A script is a pure function
// of the machine (its revision), the plan (profile revision, version, channel), the base URL and the
// booting MAC; rendering it again cost about a tenth of a boot request's CPU (profiled).
import type { BootPlan } from '../../core/plan-boot.js';
import type { Machine } from '../../core/types.js';

const MAX_ENTRIES = 250_000;

export class ScriptCache {
  private readonly byMachine = new Map<string, { key: string; script: string }>();

  static keyOf(machine: Machine, plan: BootPlan, base: string, mac: string): string {
    return [machine.revision, plan.profile.name, plan.profile.revision, plan.version.id, plan.channel ?? '', base, mac].join('\u0000');
  }

  get(machineId: string, key: string): string | undefined {
    const hit = this.byMachine.get(machineId);
    return hit !== undefined && hit.key === key ? hit.script : undefined;
  }

  set(machineId: string, key: string, script: string): void {
    // A bound, not an LRU: a fleet larger than this re-renders, which is only slower.
    if (this.byMachine.size >= MAX_ENTRIES) this.byMachine.clear();
    this.byMachine.set(machineId, { key, script });
  }
}
