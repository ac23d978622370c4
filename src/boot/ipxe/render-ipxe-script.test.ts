import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BootPlan } from '../../core/plan-boot.js';
import type { Machine, VersionArtifact } from '../../core/types.js';
import { escapeIpxe, escapeIpxeText } from './escape-ipxe.js';
import { buildScriptModel, renderBootScript, renderChainScript, renderNoPlanScript, type ScriptContext } from './render-ipxe-script.js';
import { TemplateRenderer } from './template-renderer.js';

const at = '2026-01-01T00:00:00.000Z';
const sha = (c: string) => c.repeat(64);
const machine: Machine = {
  id: '0b7d3c1e-0000-4000-8000-000000000001', macs: ['52:54:00:12:34:56'], uuid: null, serial: 'SN123', hostname: 'node-1',
  labels: { rack: 'r1' }, arch: 'x86_64', firmware: 'uefi', state: 'ready', profile: 'worker', nextBoot: null, nextBootTaken: null, payload: null, lastSeenAt: null,
  createdAt: at, updatedAt: at, revision: 1,
};
const artifacts: VersionArtifact[] = [
  { name: 'vmlinuz', role: 'kernel', sha256: sha('a'), size: 10, mediaType: 'application/octet-stream' },
  { name: 'initrd.img', role: 'initrd', sha256: sha('b'), size: 20, mediaType: 'application/octet-stream' },
  { name: 'firmware.cpio', role: 'initrd', sha256: sha('c'), size: 5, mediaType: 'application/octet-stream' },
];
const plan: BootPlan = {
  source: { kind: 'assignment' },
  profile: { name: 'worker', description: '', image: { image: 'debian', channel: 'stable' }, kernelArgs: ['console=ttyS0', 'ip=${ip}'], template: null, payload: null, createdAt: at, updatedAt: at, revision: 1 },
  image: 'debian',
  channel: 'stable',
  version: { id: 'v1', image: 'debian', version: '12.5', arch: 'x86_64', cmdline: 'quiet', metadata: {}, artifacts, createdAt: at },
};
const ctx: ScriptContext = {
  baseUrl: 'http://kiln.example:8080',
  mac: '52:54:00:12:34:56',
  artifactUrl: (a) => `http://kiln.example:8080/boot/artifacts/${a.sha256}/${a.name}?mac=52:54:00:12:34:56`,
  retries: 5,
  retryDelaySeconds: 5,
};

describe('iPXE scripts (golden)', () => {
  it('renders the built-in boot script', async () => {
    await expect(renderBootScript(buildScriptModel(machine, plan, ctx))).toMatchFileSnapshot('golden/boot-script.ipxe');
  });
  it('renders the no-plan script', async () => {
    await expect(renderNoPlanScript({ baseUrl: ctx.baseUrl, mac: ctx.mac, reason: 'no group matches; and || reboot ${x}', delaySeconds: 30 })).toMatchFileSnapshot('golden/no-plan.ipxe');
  });
  it('renders the chain script', async () => {
    await expect(renderChainScript(ctx.baseUrl)).toMatchFileSnapshot('golden/chain.ipxe');
  });
  it('puts initrd= names on the kernel line, in load order, before the operator args', () => {
    const m = buildScriptModel(machine, plan, ctx);
    expect(m.cmdline).toBe(`initrd=initrd.img initrd=firmware.cpio quiet console=ttyS0 ip=\${ip} kiln.callback=http://kiln.example:8080/boot/callback?mac=52:54:00:12:34:56`);
  });
  it('hands a live image its root filesystem URL as kiln.rootfs= (not loaded by iPXE)', () => {
    const live: BootPlan = { ...plan, version: { ...plan.version, artifacts: [...artifacts, { name: 'rootfs.squashfs', role: 'rootfs', sha256: sha('d'), size: 99, mediaType: 'application/octet-stream' }] } };
    const m = buildScriptModel(machine, live, ctx);
    expect(m.rootfs?.url).toBe(`http://kiln.example:8080/boot/artifacts/${sha('d')}/rootfs.squashfs?mac=52:54:00:12:34:56`);
    expect(m.cmdline).toContain(` kiln.rootfs=${m.rootfs!.url} kiln.callback=`);
    expect(renderBootScript(m)).not.toMatch(/^initrd .*rootfs/m);
    expect(buildScriptModel(machine, plan, ctx).rootfs).toBeNull();
  });
  it('renders a LiquidJS template with the same model', async () => {
    const r = new TemplateRenderer();
    const t = '#!ipxe\nkernel {{ kernel.url }} {{ cmdline }}\n{% for i in initrds %}initrd {{ i.url }}\n{% endfor %}echo {{ machine.hostname }} in {{ machine.labels.rack }}\nboot\n';
    r.check(t);
    await expect(r.render(t, buildScriptModel(machine, plan, ctx))).resolves.toMatchFileSnapshot('golden/template.ipxe');
  });
  it('refuses templates that are not iPXE scripts or do not parse, and has no file access', () => {
    const r = new TemplateRenderer();
    expect(() => r.check('echo hi')).toThrow(expect.objectContaining({ code: 'KILN_PROFILE_INVALID' }));
    expect(() => r.check('#!ipxe\n{% if %}')).toThrow(expect.objectContaining({ code: 'KILN_PROFILE_INVALID' }));
    expect(() => r.check('#!ipxe\n{% include "/etc/passwd" %}')).not.toThrow();
    return expect(r.render('#!ipxe\n{% include "/etc/passwd" %}', buildScriptModel(machine, plan, ctx))).rejects.toThrow();
  });
});

/** The command skeleton of a script: per line, its first token, and the operators and expansions it holds. */
function skeleton(script: string): string[] {
  return script.split('\n').map((line) => {
    const tokens = line.split(/\s+/).filter((t) => t !== '');
    return [tokens[0] ?? '', ...tokens.filter((t) => t === '||' || t === '&&'), ...(line.match(/\$\{[^}]*\}/g) ?? [])].join(' ');
  });
}

describe('no machine-supplied value can change a script', () => {
  const anyText = fc.string({ unit: 'binary', maxLength: 40 });
  const evil = fc.oneof(anyText, fc.constantFrom('\nreboot', '${net0/ip}', 'a && reboot', ' || shell', '#!ipxe', ':kiln-retry', '\r\nshell', '%0Areboot', 'x\u2028y'));
  const template = '#!ipxe\necho {{ machine.hostname }} {{ machine.serial }} {{ machine.uuid }} {{ machine.labels.rack }} {{ machine.mac }}\nkernel {{ kernel.url }} {{ cmdline }}\nboot\n';
  const renderer = new TemplateRenderer();

  it('keeps the built-in and template scripts\' commands whatever the hostname, serial, uuid, labels and artifact names', async () => {
    const base = buildScriptModel(machine, plan, ctx);
    const baseBuiltIn = skeleton(renderBootScript(base));
    const baseTemplate = skeleton(await renderer.render(template, base));
    await fc.assert(
      fc.asyncProperty(evil, evil, evil, evil, evil, async (hostname, serial, uuid, rack, name) => {
        const m: Machine = { ...machine, hostname, serial, uuid, labels: { rack } };
        const arts = artifacts.map((a, i) => (i === 1 ? { ...a, name } : a));
        const p: BootPlan = { ...plan, version: { ...plan.version, artifacts: arts } };
        const model = buildScriptModel(m, p, { ...ctx, artifactUrl: (a) => `http://kiln.example:8080/boot/artifacts/${a.sha256}/${escapeIpxe(a.name)}` });
        expect(skeleton(renderBootScript(model))).toEqual(baseBuiltIn);
        expect(skeleton(await renderer.render(template, model))).toEqual(baseTemplate);
      }),
      { numRuns: 300 },
    );
  });

  it('escapes to a closed alphabet that round-trips', () => {
    fc.assert(
      fc.property(anyText, (s) => {
        const e = escapeIpxe(s);
        expect(e).toMatch(/^[A-Za-z0-9._~:/=,+@%-]*$/);
        expect(decodeURIComponent(e)).toBe(Buffer.from(s, 'utf8').toString('utf8'));
        expect(escapeIpxeText(s)).toMatch(/^[A-Za-z0-9 .,:;()/_=+@'-]*$/);
      }),
    );
  });
});
