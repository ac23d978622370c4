// `kiln machine ...`: inventory, assignment, next boot, boot-plan explanation and the boot timeline.
// A machine is named by its id or any of its MAC addresses.
import { Option, type Command } from 'commander';
import type { BootEvent, ImageVersion, Machine } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows, type Column } from '../output.js';
import { collect, getWithEtag, ifMatch, note, parseCount, parseKeyValue, parseLabels, seg, usageError, verb } from './command-helpers.js';

const MACHINE_COLUMNS: Column<Machine>[] = [
  { header: 'ID', value: (m) => m.id },
  { header: 'MACS', value: (m) => m.macs },
  { header: 'HOSTNAME', value: (m) => m.hostname },
  { header: 'STATE', value: (m) => m.state },
  { header: 'PROFILE', value: (m) => m.profile },
  { header: 'NEXT BOOT', value: (m) => m.nextBoot },
  { header: 'LAST SEEN', value: (m) => m.lastSeenAt },
];

interface BootPlanView {
  machine: string;
  bootable: boolean;
  reason: string;
  source?: { kind: string; group?: string };
  profile?: string;
  image?: string;
  channel?: string | null;
  version?: ImageVersion;
}

interface FieldOptions {
  mac?: string[];
  uuid?: string;
  serial?: string;
  hostname?: string;
  label?: string[];
  arch?: string;
  firmware?: string;
}

/** An empty string clears a field on update. */
const orNull = (v: string | undefined): string | null | undefined => (v === undefined ? undefined : v === '' ? null : v);

function fieldOptions(cmd: Command, update: boolean): Command {
  const clear = update ? ' ("" clears it)' : '';
  return cmd
    .option('--uuid <uuid>', `SMBIOS UUID${clear}`)
    .option('--serial <serial>', `serial number${clear}`)
    .option('--hostname <name>', `hostname${clear}`)
    .option('--label <key=value>', update ? 'set a label (repeatable; merged into the current labels)' : 'label (repeatable)', collect)
    .addOption(new Option('--arch <arch>', 'CPU architecture').choices(['x86_64', 'aarch64']))
    .addOption(new Option('--firmware <kind>', 'firmware').choices(['bios', 'uefi']));
}

function profileChoice(cmd: Command, path: 'assignment' | 'next-boot', what: string): void {
  cmd
    .option('--clear', `remove the ${what}`)
    .action(async (ref: string, profile: string | undefined, opts: { clear?: boolean }, c: Command) => {
      const { client, output } = contextOf(c);
      if (opts.clear === true && profile !== undefined) throw usageError('give a profile or --clear, not both');
      if (opts.clear !== true && profile === undefined) throw usageError('give a profile, or --clear');
      const m =
        profile !== undefined
          ? await client.put<Machine>(`/machines/${seg(ref)}/${path}`, { profile })
          : await client.delete<Machine>(`/machines/${seg(ref)}/${path}`);
      printObject(output, m);
    });
}

export function machineCommands(machine: Command): void {
  fieldOptions(verb(machine, 'add', 'register a machine').requiredOption('--mac <mac>', 'MAC address (repeatable)', collect), false)
    .action(async (opts: FieldOptions, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const labels = parseLabels(opts.label);
      const m = await client.post<Machine>('/machines', {
        macs: opts.mac,
        uuid: opts.uuid,
        serial: opts.serial,
        hostname: opts.hostname,
        labels: opts.label !== undefined ? labels : undefined,
        arch: opts.arch,
        firmware: opts.firmware,
      });
      printObject(output, m);
    });

  verb(machine, 'list', 'list machines')
    .option('--mac <mac>', 'only the machine with this MAC')
    .addOption(new Option('--state <state>', 'only machines in this state').choices(['discovered', 'ready', 'booting', 'booted', 'failed']))
    .option('--label <key=value>', 'only machines with this label')
    .option('--limit <n>', 'page size (default 100, at most 1000)')
    .option('--after <cursor>', 'start after this cursor (the id printed for the next page)')
    .option('--all', 'follow the cursor to list every page')
    .action(async (opts: { mac?: string; state?: string; label?: string; limit?: string; after?: string; all?: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.label !== undefined) parseKeyValue(opts.label, '--label');
      const limit = parseCount(opts.limit, '--limit');
      const rows: Machine[] = [];
      let after = opts.after;
      let next: string | null = null;
      do {
        const page: { items: Machine[]; next: string | null } = await client.get('/machines', { mac: opts.mac, state: opts.state, label: opts.label, limit, after });
        rows.push(...page.items);
        next = page.next;
        after = next ?? undefined;
      } while (opts.all === true && next !== null);
      printRows(output, rows, MACHINE_COLUMNS);
      if (opts.all !== true && next !== null) note(`(more machines: add --after ${next}, or --all)`);
    });

  verb(machine, 'show <machine>', 'show a machine (by id or MAC)')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printObject(output, await client.get<Machine>(`/machines/${seg(ref)}`));
    });

  fieldOptions(verb(machine, 'update <machine>', 'change a machine (only the fields given)').option('--mac <mac>', 'MAC address (repeatable; replaces the list)', collect), true)
    .option('--remove-label <key>', 'remove a label (repeatable)', collect)
    .action(async (ref: string, opts: FieldOptions & { removeLabel?: string[] }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const setLabels = parseLabels(opts.label);
      const patch: Record<string, unknown> = {
        macs: opts.mac,
        uuid: orNull(opts.uuid),
        serial: orNull(opts.serial),
        hostname: orNull(opts.hostname),
        arch: opts.arch,
        firmware: opts.firmware,
      };
      const changesLabels = opts.label !== undefined || opts.removeLabel !== undefined;
      if (!changesLabels && Object.values(patch).every((v) => v === undefined)) throw usageError('nothing to update: give at least one field to change');
      // Read-modify-write guarded by the ETag, so a concurrent edit is refused rather than overwritten.
      const { body: current, etag } = await getWithEtag<Machine>(client, `/machines/${seg(ref)}`);
      if (changesLabels) {
        const labels = { ...current.labels, ...setLabels };
        for (const k of opts.removeLabel ?? []) delete labels[k];
        patch.labels = labels;
      }
      const res = await client.request<Machine>('PATCH', `/machines/${seg(current.id)}`, { json: patch, headers: ifMatch(etag) });
      printObject(output, res.body);
    });

  verb(machine, 'delete <machine>', 'forget a machine and its boot timeline')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      await client.delete(`/machines/${seg(ref)}`);
      printObject(output, { deleted: ref });
    });

  profileChoice(verb(machine, 'assign <machine> [profile]', 'pin a profile to the machine (overrides groups)'), 'assignment', 'assignment');
  profileChoice(verb(machine, 'next-boot <machine> [profile]', 'boot a profile once, on the next boot only'), 'next-boot', 'one-shot next boot');

  verb(machine, 'plan <machine>', 'what the machine would boot now, and why')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const plan = await client.get<BootPlanView>(`/machines/${seg(ref)}/boot-plan`);
      if (output === 'json') return printObject(output, plan);
      const v = plan.version;
      const view: Record<string, unknown> = {
        machine: plan.machine,
        bootable: plan.bootable,
        reason: plan.reason,
        source: plan.source === undefined ? undefined : plan.source.group !== undefined ? `${plan.source.kind} ${plan.source.group}` : plan.source.kind,
        profile: plan.profile,
        image: plan.image,
        channel: plan.channel,
        version: v?.version,
        arch: v?.arch,
        artifacts: v?.artifacts.map((a) => `${a.name}(${a.role})`),
        cmdline: v?.cmdline,
      };
      printObject(output, Object.fromEntries(Object.entries(view).filter(([, x]) => x !== undefined)));
    });

  verb(machine, 'events <machine>', "the machine's boot timeline, oldest first")
    .option('--after <id>', 'only events after this event id')
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .action(async (ref: string, opts: { after?: string; limit?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const after = parseCount(opts.after, '--after', 0);
      const limit = parseCount(opts.limit, '--limit');
      const { items } = await client.get<{ items: BootEvent[] }>(`/machines/${seg(ref)}/events`, { after, limit });
      printRows(output, items, [
        { header: 'ID', value: (e) => e.id },
        { header: 'AT', value: (e) => e.at },
        { header: 'KIND', value: (e) => e.kind },
        { header: 'DETAIL', value: (e) => e.detail },
      ]);
    });
}
