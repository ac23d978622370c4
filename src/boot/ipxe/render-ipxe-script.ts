// iPXE scripts: the machine's boot script (built-in or a LiquidJS template), the no-plan retry script,
// and the static chain script. Pure functions of their inputs; golden-tested.
import type { BootPlan } from '../../core/plan-boot.js';
import type { Machine, VersionArtifact } from '../../core/types.js';
import { escapeIpxe, escapeIpxeText } from './escape-ipxe.js';

export interface ScriptContext {
  /** Absolute base URL of Kiln's boot listener, without a trailing slash (validated by the caller). */
  baseUrl: string;
  /** The MAC this boot came in on (canonical form). */
  mac: string;
  /** URL of an artifact for this machine (may carry a signature). */
  artifactUrl(a: VersionArtifact): string;
  retries: number;
  retryDelaySeconds: number;
}

export interface RenderedFile {
  name: string;
  url: string;
}

/** Everything a script (built-in or template) may show; strings here are already iPXE-safe. */
export interface ScriptModel {
  kernel: RenderedFile;
  initrds: RenderedFile[];
  /** The version's root filesystem image (a live image mounts it), when it has one. */
  rootfs: RenderedFile | null;
  /** Full kernel command line, `initrd=` names included (UEFI kernels need them), and `kiln.rootfs=<url>` for a live root. */
  cmdline: string;
  callbackUrl: string;
  machine: { id: string; mac: string; hostname: string; uuid: string; serial: string; arch: string; labels: Record<string, string> };
  image: { name: string; version: string; channel: string };
  profile: { name: string };
  baseUrl: string;
  retries: number;
  retryDelay: number;
}

export function buildScriptModel(machine: Machine, plan: BootPlan, ctx: ScriptContext): ScriptModel {
  const file = (a: VersionArtifact): RenderedFile => ({ name: escapeIpxe(a.name), url: ctx.artifactUrl(a) });
  const kernel = plan.version.artifacts.find((a) => a.role === 'kernel')!;
  const initrds = plan.version.artifacts.filter((a) => a.role === 'initrd');
  const rootfsArtifact = plan.version.artifacts.find((a) => a.role === 'rootfs');
  const rootfs = rootfsArtifact === undefined ? null : file(rootfsArtifact);
  const mac = escapeIpxe(ctx.mac);
  const callbackUrl = `${ctx.baseUrl}/boot/callback?mac=${mac}`;
  // Version cmdline and profile args come from operators and may use iPXE expansions on purpose;
  // they were checked for control characters when saved.
  const cmdline = [
    ...initrds.map((a) => `initrd=${escapeIpxe(a.name)}`),
    plan.version.cmdline.trim(),
    ...plan.profile.kernelArgs,
    // The initramfs of a live image fetches and mounts this (signed like every artifact URL).
    ...(rootfs === null ? [] : [`kiln.rootfs=${rootfs.url}`]),
    `kiln.callback=${callbackUrl}`,
  ].filter((s) => s !== '').join(' ');
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(machine.labels)) labels[escapeIpxe(k)] = escapeIpxe(v);
  return {
    kernel: file(kernel),
    initrds: initrds.map(file),
    rootfs,
    cmdline,
    callbackUrl,
    machine: {
      id: escapeIpxe(machine.id),
      mac,
      hostname: escapeIpxe(machine.hostname ?? ''),
      uuid: escapeIpxe(machine.uuid ?? ''),
      serial: escapeIpxe(machine.serial ?? ''),
      arch: escapeIpxe(machine.arch ?? ''),
      labels,
    },
    image: { name: escapeIpxe(plan.image), version: escapeIpxe(plan.version.version), channel: escapeIpxe(plan.channel ?? '') },
    profile: { name: escapeIpxe(plan.profile.name) },
    baseUrl: ctx.baseUrl,
    retries: ctx.retries,
    retryDelay: ctx.retryDelaySeconds,
  };
}

/** Kiln's built-in boot script: bounded retries around each download, then a visible give-up and reboot. */
export function renderBootScript(m: ScriptModel): string {
  const what = m.image.channel !== '' ? `${m.image.name} ${m.image.version} (channel ${m.image.channel})` : `${m.image.name} ${m.image.version}`;
  const lines = [
    '#!ipxe',
    `# Kiln boot script for machine ${m.machine.id} (${m.machine.mac}), profile ${m.profile.name}`,
    `echo Kiln: booting ${what} with profile ${m.profile.name}`,
    'set kiln-try:int32 0',
    ':kiln-retry',
    `iseq \${kiln-try} ${m.retries} && goto kiln-give-up ||`,
    'inc kiln-try',
    `kernel ${m.kernel.url} ${m.cmdline} || goto kiln-wait`,
    ...m.initrds.map((i) => `initrd ${i.url} || goto kiln-wait`),
    'boot || goto kiln-wait',
    ':kiln-wait',
    `echo Kiln: download or boot failed (attempt \${kiln-try} of ${m.retries}); retrying in ${m.retryDelay} s`,
    'imgfree',
    `sleep ${m.retryDelay}`,
    'goto kiln-retry',
    ':kiln-give-up',
    `echo Kiln: giving up after ${m.retries} attempts; rebooting in 30 s`,
    'sleep 30',
    'reboot',
    '',
  ];
  return lines.join('\n');
}

/** When Kiln has nothing to boot: say why on the console, wait, and ask again (never fail silently). */
export function renderNoPlanScript(opts: { baseUrl: string; mac: string; reason: string; delaySeconds: number }): string {
  return [
    '#!ipxe',
    `echo Kiln: nothing to boot for ${escapeIpxe(opts.mac)}`,
    `echo Kiln: ${escapeIpxeText(opts.reason)}`,
    `echo Kiln: asking again in ${opts.delaySeconds} s`,
    `sleep ${opts.delaySeconds}`,
    `chain --replace --autofree ${opts.baseUrl}/boot.ipxe`,
    '',
  ].join('\n');
}

/**
 * The static entry script. `${netX/mac}` is the NIC iPXE booted from (matchbox#410); `${net0/mac}`
 * the first NIC. Values go through iPXE's `:uristring` so they arrive URL-encoded.
 */
export function renderChainScript(baseUrl: string): string {
  const q = [
    'mac=${net0/mac:hexhyp}',
    'bootmac=${netX/mac:hexhyp}',
    'uuid=${uuid:uristring}',
    'serial=${serial:uristring}',
    'hostname=${hostname:uristring}',
    'buildarch=${buildarch:uristring}',
    'platform=${platform:uristring}',
  ].join('&');
  return ['#!ipxe', '# Kiln: report who this machine is and fetch its own boot script', `chain --replace --autofree ${baseUrl}/boot/ipxe?${q} || goto kiln-fail`, ':kiln-fail', 'echo Kiln: could not fetch the boot script; retrying in 10 s', 'sleep 10', `chain --replace --autofree ${baseUrl}/boot.ipxe`, ''].join('\n');
}
