// `kiln group ...`: selectors plus a profile; the most specific matching group decides what a machine
// without an assignment boots. The server refuses a group that could tie with another (exit 4).
import type { Command } from 'commander';
import type { Group, Selectors } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows, type OutputFormat } from '../output.js';
import { collect, getWithEtag, ifMatch, parseKeyValue, seg, usageError, verb } from './command-helpers.js';

const SCALAR_KEYS = ['mac', 'uuid', 'serial', 'hostname', 'arch', 'platform', 'subnet'] as const;
type ScalarKey = (typeof SCALAR_KEYS)[number];
const KEYS_HELP = `${SCALAR_KEYS.join(', ')} or label.<key>`;

/** Applies `key=value` selector flags over `base`; a key given twice in one command is a usage error. */
export function parseSelectors(items: readonly string[] | undefined, base: Selectors = {}): Selectors {
  const out: Selectors = { ...base, labels: { ...(base.labels ?? {}) } };
  const seen = new Set<string>();
  for (const item of items ?? []) {
    const { key, value } = parseKeyValue(item, '--selector');
    if (seen.has(key)) throw usageError(`--selector ${key} is given twice`);
    seen.add(key);
    if (key.startsWith('label.')) {
      const label = key.slice('label.'.length);
      if (label === '') throw usageError(`--selector ${JSON.stringify(item)}: want label.<key>=<value>`);
      out.labels![label] = value;
    } else if ((SCALAR_KEYS as readonly string[]).includes(key)) {
      (out as Record<ScalarKey, string>)[key as ScalarKey] = value;
    } else {
      throw usageError(`--selector ${JSON.stringify(item)}: unknown key ${JSON.stringify(key)} (want ${KEYS_HELP})`);
    }
  }
  if (Object.keys(out.labels!).length === 0) delete out.labels;
  return out;
}

export function formatSelectors(s: Selectors): string[] {
  const parts: string[] = [];
  for (const k of SCALAR_KEYS) if (s[k] !== undefined) parts.push(`${k}=${s[k]}`);
  for (const [k, v] of Object.entries(s.labels ?? {})) parts.push(`label.${k}=${v}`);
  return parts;
}

function printGroup(format: OutputFormat, g: Group): void {
  if (format === 'json') return printObject(format, g);
  const { selectors, ...rest } = g;
  const shown = formatSelectors(selectors);
  printObject(format, { ...rest, selectors: shown.length > 0 ? shown.join(' ') : '(none: matches every machine)' });
}

export function groupCommands(group: Command): void {
  verb(group, 'create <name>', 'create a group')
    .requiredOption('--profile <profile>', 'profile the matching machines boot')
    .option('--selector <key=value>', `what a machine must have (repeatable; keys ${KEYS_HELP})`, collect)
    .option('--description <text>', 'what the group is')
    .action(async (name: string, opts: { profile: string; selector?: string[]; description?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const selectors = parseSelectors(opts.selector);
      printGroup(output, await client.post<Group>('/groups', { name, profile: opts.profile, selectors, description: opts.description }));
    });

  verb(group, 'list', 'list groups').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: Group[] }>('/groups');
    printRows(output, items, [
      { header: 'NAME', value: (g) => g.name },
      { header: 'PROFILE', value: (g) => g.profile },
      { header: 'SELECTORS', value: (g) => formatSelectors(g.selectors).join(' ') || '(all machines)' },
      { header: 'DESCRIPTION', value: (g) => g.description || null },
    ]);
  });

  verb(group, 'show <name>', 'show a group').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printGroup(output, await client.get<Group>(`/groups/${seg(name)}`));
  });

  verb(group, 'update <name>', 'change a group (only what is given; refused if it changed meanwhile)')
    .option('--profile <profile>', 'profile the matching machines boot')
    .option('--selector <key=value>', `set a selector (repeatable; keys ${KEYS_HELP}); merged into the current ones`, collect)
    .option('--clear-selectors', 'start from no selectors (then apply any --selector)')
    .option('--description <text>', 'what the group is')
    .action(async (name: string, opts: { profile?: string; selector?: string[]; clearSelectors?: boolean; description?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if ([opts.profile, opts.selector, opts.clearSelectors, opts.description].every((v) => v === undefined)) throw usageError('nothing to update: give at least one option');
      parseSelectors(opts.selector); // usage errors before any request
      const { body: cur, etag } = await getWithEtag<Group>(client, `/groups/${seg(name)}`);
      const body = {
        profile: opts.profile ?? cur.profile,
        description: opts.description ?? cur.description,
        selectors: parseSelectors(opts.selector, opts.clearSelectors === true ? {} : cur.selectors),
      };
      const res = await client.request<Group>('PUT', `/groups/${seg(name)}`, { json: body, headers: ifMatch(etag) });
      printGroup(output, res.body);
    });

  verb(group, 'delete <name>', 'delete a group').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    await client.delete(`/groups/${seg(name)}`);
    printObject(output, { deleted: name });
  });
}
