// `kiln payload ...`: named parameter bundles a booted machine fetches (ncore-api payloads), and
// `kiln machine payload` to give one to a machine.
import type { Command } from 'commander';
import type { Machine, Payload } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows } from '../output.js';
import { collect, getWithEtag, ifMatch, parseKeyValue, seg, usageError, verb } from './command-helpers.js';

interface PayloadOptions {
  directory?: string;
  schema?: string[];
  param?: string[];
  unset?: string[];
  description?: string;
}

function params(items: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const { key, value } = parseKeyValue(item, '--param');
    out[key] = value;
  }
  return out;
}

/** `--schema a,b --schema c` → [a, b, c]. */
function names(items: readonly string[] | undefined): string[] | undefined {
  return items?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

export function payloadCommands(payload: Command): void {
  verb(payload, 'create <name>', 'create a payload')
    .option('--directory <dir>', "where the machine finds the payload's scripts (default: the name)")
    .option('--schema <names>', 'parameter names the payload takes (comma-separated, repeatable; default: those of --param)', collect)
    .option('--param <key=value>', 'parameter value (repeatable)', collect)
    .option('--description <text>', 'what the payload is for')
    .action(async (name: string, opts: PayloadOptions, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const parameters = params(opts.param);
      const schema = names(opts.schema) ?? Object.keys(parameters);
      printObject(output, await client.post<Payload>('/payloads', { name, directory: opts.directory, schema, parameters, description: opts.description }));
    });

  verb(payload, 'list', 'list payloads').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: Payload[] }>('/payloads');
    printRows(output, items, [
      { header: 'NAME', value: (p) => p.name },
      { header: 'DIRECTORY', value: (p) => p.directory },
      { header: 'PARAMETERS', value: (p) => `${Object.keys(p.parameters).length}/${p.schema.length}` },
      { header: 'DESCRIPTION', value: (p) => p.description || null },
    ]);
  });

  verb(payload, 'show <name>', 'show a payload and its parameters').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printObject(output, await client.get<Payload>(`/payloads/${seg(name)}`));
  });

  verb(payload, 'update <name>', 'change a payload: set or unset parameters, schema, directory (refused if it changed meanwhile)')
    .option('--directory <dir>', 'new directory')
    .option('--schema <names>', 'replace the parameter names (comma-separated, repeatable)', collect)
    .option('--param <key=value>', 'set a parameter (repeatable; added to the schema if missing)', collect)
    .option('--unset <key>', 'remove a parameter value (repeatable)', collect)
    .option('--description <text>', 'what the payload is for')
    .action(async (name: string, opts: PayloadOptions, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if ([opts.directory, opts.schema, opts.param, opts.unset, opts.description].every((v) => v === undefined)) throw usageError('nothing to update: give at least one option');
      const { body: cur, etag } = await getWithEtag<Payload>(client, `/payloads/${seg(name)}`);
      const set = params(opts.param);
      const parameters = { ...cur.parameters, ...set };
      for (const k of opts.unset ?? []) delete parameters[k];
      const schema = [...new Set([...(names(opts.schema) ?? cur.schema), ...Object.keys(set)])];
      const res = await client.request<Payload>('PATCH', `/payloads/${seg(name)}`, { json: { directory: opts.directory, description: opts.description, schema, parameters }, headers: ifMatch(etag) });
      printObject(output, res.body);
    });

  verb(payload, 'delete <name>', 'delete a payload no machine or profile uses').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    await client.delete(`/payloads/${seg(name)}`);
    printObject(output, { deleted: name });
  });
}

/** `kiln machine payload <machine> [payload] [--clear]`. */
export function machinePayloadCommand(machine: Command): void {
  verb(machine, 'payload <machine> [payload]', "give the machine its own payload (replaces the previous one; --clear: use its profile's)")
    .option('--clear', "remove the machine's own payload")
    .action(async (ref: string, name: string | undefined, opts: { clear?: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.clear === true && name !== undefined) throw usageError('give a payload or --clear, not both');
      if (opts.clear !== true && name === undefined) throw usageError('give a payload, or --clear');
      const m = name !== undefined ? await client.put<Machine>(`/machines/${seg(ref)}/payload`, { payload: name }) : await client.delete<Machine>(`/machines/${seg(ref)}/payload`);
      printObject(output, m);
    });
}
