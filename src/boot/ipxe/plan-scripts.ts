// Kiln's built-in boot script, compiled once per plan. Machines booting the same plan get scripts
// that differ only in the machine id and the MAC, so the script is rendered once with markers in
// their place and each request fills them in. A storm is almost all first requests, which no
// per-machine cache can serve; building the model and script anew cost about a tenth of a boot
// request's CPU (profiled).
import { randomBytes } from 'node:crypto';
import type { BootPlan } from '../../core/plan-boot.js';
import type { Machine, VersionArtifact } from '../../core/types.js';
import { escapeIpxe } from './escape-ipxe.js';
import { buildScriptModel, renderBootScript } from './render-ipxe-script.js';

export interface PlanScriptContext {
  baseUrl: string;
  retries: number;
  retryDelaySeconds: number;
  /** The artifact's URL for a boot from `mac`; must depend on nothing else of the machine. */
  artifactUrl(a: VersionArtifact, mac: string): string;
}

const MAX_PLANS = 10_000;

export class PlanScripts {
  /** Text and marker, alternating: text, marker, text, ..., text. */
  private readonly compiled = new Map<string, string[]>();
  // Random per process, from the characters escapeIpxe keeps: no operator-supplied value can contain them.
  private readonly idMark = `kiln${randomBytes(12).toString('hex')}id`;
  private readonly macMark = `kiln${randomBytes(12).toString('hex')}mac`;
  private readonly split = new RegExp(`(${this.idMark}|${this.macMark})`);

  render(machine: Machine, plan: BootPlan, mac: string, ctx: PlanScriptContext): string {
    // Everything the built-in script shows besides the machine id and MAC (see renderBootScript).
    const key = [plan.profile.name, plan.profile.revision, plan.image, plan.version.id, plan.channel ?? '', ctx.baseUrl, ctx.retries, ctx.retryDelaySeconds].join('\u0000');
    let parts = this.compiled.get(key);
    if (parts === undefined) {
      parts = this.compile(machine, plan, ctx);
      // A bound, not an LRU: more live plans than this only re-compile.
      if (this.compiled.size >= MAX_PLANS) this.compiled.clear();
      this.compiled.set(key, parts);
    }
    const id = escapeIpxe(machine.id);
    const m = escapeIpxe(mac);
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i += 2) out += (parts[i] === this.idMark ? id : m) + parts[i + 1]!;
    return out;
  }

  private compile(machine: Machine, plan: BootPlan, ctx: PlanScriptContext): string[] {
    const model = buildScriptModel({ ...machine, id: this.idMark }, plan, {
      baseUrl: ctx.baseUrl,
      mac: this.macMark,
      retries: ctx.retries,
      retryDelaySeconds: ctx.retryDelaySeconds,
      artifactUrl: (a) => ctx.artifactUrl(a, this.macMark),
    });
    return renderBootScript(model).split(this.split);
  }
}
