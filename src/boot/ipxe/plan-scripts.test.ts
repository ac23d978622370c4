import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BootPlan } from '../../core/plan-boot.js';
import type { Machine, VersionArtifact } from '../../core/types.js';
import { PlanScripts, type PlanScriptContext } from './plan-scripts.js';
import { buildScriptModel, renderBootScript } from './render-ipxe-script.js';

const at = '2026-01-01T00:00:00.000Z';
const machine: Machine = {
  id: 'm-1', macs: ['52:54:00:12:34:56'], uuid: null, serial: 'SN1', hostname: 'node-1', labels: { rack: 'r1' }, arch: 'x86_64', firmware: 'uefi',
  state: 'ready', profile: 'worker', nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null, createdAt: at, updatedAt: at, revision: 1,
};
const artifacts: VersionArtifact[] = [
  { name: 'vmlinuz', role: 'kernel', sha256: 'a'.repeat(64), size: 10, mediaType: 'application/octet-stream' },
  { name: 'initrd img', role: 'initrd', sha256: 'b'.repeat(64), size: 20, mediaType: 'application/octet-stream' },
  { name: 'root.squashfs', role: 'rootfs', sha256: 'c'.repeat(64), size: 30, mediaType: 'application/octet-stream' },
];
const plan: BootPlan = {
  source: { kind: 'group', group: 'rack-1' },
  profile: { name: 'worker', description: '', image: { image: 'debian', channel: 'stable' }, kernelArgs: ['console=ttyS0'], template: null, payload: null, createdAt: at, updatedAt: at, revision: 1 },
  image: 'debian',
  channel: 'stable',
  version: { id: 'v1', image: 'debian', version: '12.5', arch: 'x86_64', cmdline: 'quiet', metadata: {}, artifacts, createdAt: at },
};
const ctx: PlanScriptContext = {
  baseUrl: 'http://kiln.example:8080',
  retries: 5,
  retryDelaySeconds: 7,
  artifactUrl: (a, mac) => `http://kiln.example:8080/boot/artifacts/${a.sha256}/${encodeURIComponent(a.name)}?mac=${mac}`,
};

/** What the script must be: the model built for this very machine and MAC, rendered. */
const direct = (m: Machine, p: BootPlan, mac: string, c = ctx) =>
  renderBootScript(buildScriptModel(m, p, { baseUrl: c.baseUrl, mac, retries: c.retries, retryDelaySeconds: c.retryDelaySeconds, artifactUrl: (a) => c.artifactUrl(a, mac) }));

describe('PlanScripts', () => {
  it('gives every machine on a plan exactly the script rendered for it alone', () => {
    const scripts = new PlanScripts();
    const mac = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), mac, fc.string({ maxLength: 20 }), (id, m, hostname) => {
        const who: Machine = { ...machine, id, hostname, macs: [m] };
        expect(scripts.render(who, plan, m, ctx)).toBe(direct(who, plan, m));
      }),
      { numRuns: 300 },
    );
  });

  it('follows a changed profile, version, channel, base URL or retry setting at once', () => {
    const scripts = new PlanScripts();
    const mac = '52:54:00:12:34:56';
    expect(scripts.render(machine, plan, mac, ctx)).toBe(direct(machine, plan, mac));
    const changed: [BootPlan, PlanScriptContext][] = [
      [{ ...plan, profile: { ...plan.profile, kernelArgs: ['console=ttyS1'], revision: 2 } }, ctx],
      [{ ...plan, version: { ...plan.version, id: 'v2', version: '12.6', cmdline: 'ro' } }, ctx],
      [{ ...plan, channel: 'testing' }, ctx],
      [plan, { ...ctx, baseUrl: 'http://10.0.0.1:8080' }],
      [plan, { ...ctx, retries: 9, retryDelaySeconds: 1 }],
    ];
    for (const [p, c] of changed) {
      const script = scripts.render(machine, p, mac, c);
      expect(script).toBe(direct(machine, p, mac, c));
      expect(script).not.toBe(direct(machine, plan, mac));
    }
  });
});
