// `kiln recipe ...`: recipes (a debootstrap spec, a rootfs tar, an OCI image layout, a kiwi-ng
// description) and `kiln recipe build`, which queues an image-build job making a new image version.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Recipe } from '../../core/recipes/recipe.js';
import type { Job } from '../../jobs/job.js';
import { CliError, type ApiClient } from '../api-client.js';
import { contextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printObject, printRows } from '../output.js';
import { collect, formatBytes, getWithEtag, ifMatch, note, parseCount, seg, usageError, verb } from './command-helpers.js';

const KINDS = ['debootstrap', 'rootfs-archive', 'oci-archive', 'kiwi-ng'];

/** Streams a local file as the request body (the server checks the recipe as it arrives). */
async function sendFile<T>(client: ApiClient, method: string, path: string, file: string, opts: { query?: Record<string, string | undefined>; headers?: Record<string, string> } = {}): Promise<{ body: T; etag: string | undefined }> {
  try {
    if (!(await stat(file)).isFile()) throw usageError(`${file}: not a regular file`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const body = createReadStream(file, { highWaterMark: 1024 * 1024 });
  let readError: Error | undefined;
  body.once('error', (err) => (readError = err));
  try {
    const res = await client.request<T>(method, path, { body, query: opts.query, headers: { 'content-type': 'application/octet-stream', ...(opts.headers ?? {}) } });
    return { body: res.body, etag: res.headers.get('etag') ?? undefined };
  } catch (err) {
    if (readError !== undefined) throw new CliError(`cannot read ${file}: ${readError.message}`, EXIT.failure);
    throw err;
  } finally {
    body.destroy();
  }
}

export function recipeCommands(recipe: Command): void {
  verb(recipe, 'create <name>', 'create a recipe from a file: a debootstrap spec (YAML/JSON), a rootfs tar, an OCI image layout tar, a kiwi-ng description tar')
    .requiredOption('--kind <kind>', `recipe kind: ${KINDS.join(', ')}`)
    .requiredOption('--file <path>', 'the recipe file')
    .option('--arch <arch>', 'x86_64 (default) or aarch64')
    .option('--description <text>', 'what the recipe builds')
    .action(async (name: string, opts: { kind: string; file: string; arch?: string; description?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (!KINDS.includes(opts.kind)) throw usageError(`--kind ${JSON.stringify(opts.kind)}: want one of ${KINDS.join(', ')}`);
      printObject(output, (await sendFile<Recipe>(client, 'POST', '/recipes', opts.file, { query: { name, kind: opts.kind, arch: opts.arch, description: opts.description } })).body);
    });

  verb(recipe, 'list', 'list recipes').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: Recipe[] }>('/recipes');
    printRows(output, items, [
      { header: 'NAME', value: (r) => r.name },
      { header: 'KIND', value: (r) => r.kind },
      { header: 'ARCH', value: (r) => r.arch },
      { header: 'SIZE', value: (r) => formatBytes(r.size) },
      { header: 'UPDATED', value: (r) => r.updatedAt },
      { header: 'DESCRIPTION', value: (r) => r.description || null },
    ]);
  });

  verb(recipe, 'show <name>', 'show a recipe').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printObject(output, await client.get<Recipe>(`/recipes/${seg(name)}`));
  });

  verb(recipe, 'update <name>', 'replace the recipe file (same kind) or its description (refused if it changed meanwhile)')
    .option('--file <path>', 'the new recipe file')
    .option('--description <text>', 'what the recipe builds')
    .action(async (name: string, opts: { file?: string; description?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.file === undefined && opts.description === undefined) throw usageError('nothing to update: give --file or --description');
      let { body: cur, etag } = await getWithEtag<Recipe>(client, `/recipes/${seg(name)}`);
      if (opts.file !== undefined) ({ body: cur, etag } = await sendFile<Recipe>(client, 'PUT', `/recipes/${seg(name)}/content`, opts.file, { headers: ifMatch(etag) }));
      if (opts.description !== undefined) cur = (await client.request<Recipe>('PATCH', `/recipes/${seg(name)}`, { json: { description: opts.description }, headers: ifMatch(etag) })).body;
      printObject(output, cur);
    });

  verb(recipe, 'delete <name>', 'delete a recipe (its builds still queued then fail)').action(async (name: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    await client.delete(`/recipes/${seg(name)}`);
    printObject(output, { deleted: name });
  });

  verb(recipe, 'build <name>', 'build a new version of an image from the recipe (an image-build job; follow it with `kiln job logs -f <id>`)')
    .requiredOption('--image <image>', 'the image that gets the version (created when missing)')
    .option('--version <version>', 'the version name (default: the next number)')
    .option('--promote <channel>', 'move this channel to the version when the build succeeds')
    .option('--cmdline <args>', "the version's kernel command line")
    .option('--initrd <which>', "kiln-live (default: Kiln's initrd boots the squashfs over HTTP) or image (the image's own)")
    .option('--module <name>', 'a kernel module to add to the kiln-live initrd (repeatable)', collect)
    .option('--timeout <seconds>', 'stop the build after this long (default 3600)')
    .action(async (name: string, opts: { image: string; version?: string; promote?: string; cmdline?: string; initrd?: string; module?: string[]; timeout?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.initrd !== undefined && opts.initrd !== 'kiln-live' && opts.initrd !== 'image') throw usageError(`--initrd ${JSON.stringify(opts.initrd)}: want kiln-live or image`);
      const job = await client.post<Job>(`/recipes/${seg(name)}/builds`, {
        image: opts.image, version: opts.version, promote: opts.promote, cmdline: opts.cmdline, initrd: opts.initrd, initrdModules: opts.module,
        timeoutSeconds: parseCount(opts.timeout, '--timeout', 60),
      });
      note(`build queued as job ${job.id}; follow it with: kiln job logs -f ${job.id}`);
      printObject(output, job);
    });
}
