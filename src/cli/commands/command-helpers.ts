// Shared by the resource commands: subcommand wiring, repeatable flags, key=value parsing, usage
// errors and ETag-guarded read-modify-write.
import { Option, type Command } from 'commander';
import { CliError, type ApiClient } from '../api-client.js';
import { EXIT } from '../exit-codes.js';

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}

/** Commander argument collector for repeatable flags (`--label a=1 --label b=2`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `key=value` (the value may be empty or contain `=`); anything else is a usage error. */
export function parseKeyValue(text: string, flag: string): { key: string; value: string } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw usageError(`${flag} ${JSON.stringify(text)}: want key=value`);
  return { key: text.slice(0, eq), value: text.slice(eq + 1) };
}

export function parseLabels(items: readonly string[] | undefined, flag = '--label'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const { key, value } = parseKeyValue(item, flag);
    out[key] = value;
  }
  return out;
}

export function parseCount(text: string | undefined, flag: string, min = 1): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) throw usageError(`${flag} ${JSON.stringify(text)}: want a whole number >= ${min}`);
  return Number(text);
}

/** A path segment: names, ids and MACs are sent percent-encoded. */
export const seg = (s: string): string => encodeURIComponent(s);

export async function getWithEtag<T>(client: ApiClient, path: string): Promise<{ body: T; etag: string | undefined }> {
  const r = await client.request<T>('GET', path);
  return { body: r.body, etag: r.headers.get('etag') ?? undefined };
}

export function ifMatch(etag: string | undefined): Record<string, string> {
  return etag !== undefined ? { 'if-match': etag } : {};
}

/**
 * `kiln <noun> <verb>`: a subcommand whose action gets the context (client, output format). The global
 * flags are also declared (hidden) on each verb so they keep working after it should the program
 * switch to positional options.
 */
export function verb(parent: Command, nameAndArgs: string, description: string): Command {
  return parent
    .command(nameAndArgs)
    .description(description)
    .addOption(new Option('-s, --server <url>').hideHelp())
    .addOption(new Option('-t, --token <token>').hideHelp())
    .addOption(new Option('-o, --output <format>').choices(['table', 'json']).hideHelp())
    .addOption(new Option('-d, --data-dir <dir>').hideHelp());
}

/** Prints a line for people on stderr (never mixed into JSON on stdout). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]!}`;
}
