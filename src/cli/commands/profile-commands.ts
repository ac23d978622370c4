// `kiln profile ...`: how to boot — an image (by channel or pinned version), kernel arguments and
// an optional iPXE template. Updates are read-modify-write guarded by the profile's ETag.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ImageRef, Profile } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows, type OutputFormat } from '../output.js';
import { collect, getWithEtag, ifMatch, seg, usageError, verb } from './command-helpers.js';

interface ProfileOptions {
  image?: string;
  channel?: string;
  version?: string;
  kernelArg?: string[];
  templateFile?: string;
  description?: string;
  payload?: string;
}

async function readTemplate(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw usageError(`cannot read --template-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function imageRef(image: string, channel: string | undefined, version: string | undefined): ImageRef {
  if (channel !== undefined && version !== undefined) throw usageError('give --channel or --version, not both');
  if (channel !== undefined) return { image, channel };
  if (version !== undefined) return { image, version };
  throw usageError('give --channel C (follows the channel) or --version V (pinned)');
}

function printProfile(format: OutputFormat, p: Profile): void {
  if (format === 'json') return printObject(format, p);
  const { template, image } = p;
  const ref = image.channel != null ? `${image.image}, channel ${image.channel}` : `${image.image}, version ${image.version ?? '?'} (pinned)`;
  printObject(format, {
    name: p.name,
    description: p.description || null,
    image: ref,
    kernelArgs: p.kernelArgs.length > 0 ? p.kernelArgs.join(' ') : null,
    template: template === null ? 'built-in' : 'custom (below)',
    payload: p.payload,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    revision: p.revision,
  });
  if (template !== null) process.stdout.write(`\n${template}${template.endsWith('\n') ? '' : '\n'}`);
}

function commonOptions(cmd: Command, update: boolean): Command {
  return cmd
    .option('--channel <channel>', 'boot the version this channel of the image points at')
    .option('--version <version>', 'boot this version of the image (pinned)')
    .option('--kernel-arg <arg>', update ? 'kernel argument (repeatable; replaces the list)' : 'kernel argument (repeatable)', collect)
    .option('--template-file <file>', 'LiquidJS template producing the whole iPXE script (default: the built-in script)')
    .option('--description <text>', 'what the profile is for')
    .option('--payload <name>', 'payload for machines booting this profile that have none of their own');
}

export function profileCommands(profile: Command): void {
  commonOptions(verb(profile, 'create <name>', 'create a profile').requiredOption('--image <image>', 'image to boot'), false)
    .action(async (name: string, opts: ProfileOptions, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const image = imageRef(opts.image!, opts.channel, opts.version);
      const template = opts.templateFile !== undefined ? await readTemplate(opts.templateFile) : undefined;
      const p = await client.post<Profile>('/profiles', { name, image, kernelArgs: opts.kernelArg, template, description: opts.description, payload: opts.payload });
      printProfile(output, p);
    });

  verb(profile, 'list', 'list profiles').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: Profile[] }>('/profiles');
    printRows(output, items, [
      { header: 'NAME', value: (p) => p.name },
      { header: 'IMAGE', value: (p) => p.image.image },
      { header: 'CHANNEL', value: (p) => p.image.channel },
      { header: 'VERSION', value: (p) => p.image.version },
      { header: 'KERNEL ARGS', value: (p) => (p.kernelArgs.length > 0 ? p.kernelArgs.join(' ') : null) },
      { header: 'TEMPLATE', value: (p) => (p.template === null ? 'built-in' : 'custom') },
      { header: 'DESCRIPTION', value: (p) => p.description || null },
    ]);
  });

  verb(profile, 'show <name>', 'show a profile').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printProfile(output, await client.get<Profile>(`/profiles/${seg(name)}`));
  });

  commonOptions(verb(profile, 'update <name>', 'change a profile (only what is given; refused if it changed meanwhile)').option('--image <image>', 'image to boot'), true)
    .option('--clear-kernel-args', 'remove all kernel arguments')
    .option('--clear-template', 'go back to the built-in iPXE script')
    .option('--clear-payload', 'remove the payload')
    .action(async (name: string, opts: ProfileOptions & { clearKernelArgs?: boolean; clearTemplate?: boolean; clearPayload?: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.clearKernelArgs === true && opts.kernelArg !== undefined) throw usageError('give --kernel-arg or --clear-kernel-args, not both');
      if (opts.clearTemplate === true && opts.templateFile !== undefined) throw usageError('give --template-file or --clear-template, not both');
      if (opts.channel !== undefined && opts.version !== undefined) throw usageError('give --channel or --version, not both');
      if (opts.clearPayload === true && opts.payload !== undefined) throw usageError('give --payload or --clear-payload, not both');
      const given = [opts.image, opts.channel, opts.version, opts.kernelArg, opts.templateFile, opts.description, opts.clearKernelArgs, opts.clearTemplate, opts.payload, opts.clearPayload];
      if (given.every((v) => v === undefined)) throw usageError('nothing to update: give at least one option');
      const template = opts.templateFile !== undefined ? await readTemplate(opts.templateFile) : undefined;

      const { body: cur, etag } = await getWithEtag<Profile>(client, `/profiles/${seg(name)}`);
      // --channel and --version each replace the other; otherwise the current choice stays.
      const channel = opts.version !== undefined ? undefined : (opts.channel ?? cur.image.channel ?? undefined);
      const version = opts.channel !== undefined ? undefined : (opts.version ?? cur.image.version ?? undefined);
      // PUT replaces: an omitted template means the built-in script (sent as absent, not null).
      const keptTemplate = opts.clearTemplate === true ? null : (template ?? cur.template);
      const body = {
        description: opts.description ?? cur.description,
        image: imageRef(opts.image ?? cur.image.image, channel, version),
        kernelArgs: opts.clearKernelArgs === true ? [] : (opts.kernelArg ?? cur.kernelArgs),
        payload: opts.clearPayload === true ? null : (opts.payload ?? cur.payload),
        ...(keptTemplate !== null ? { template: keptTemplate } : {}),
      };
      const res = await client.request<Profile>('PUT', `/profiles/${seg(name)}`, { json: body, headers: ifMatch(etag) });
      printProfile(output, res.body);
    });

  verb(profile, 'delete <name>', 'delete a profile no machine or group uses').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    await client.delete(`/profiles/${seg(name)}`);
    printObject(output, { deleted: name });
  });
}
