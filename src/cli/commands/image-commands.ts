// `kiln image ...`: images, their versions (push = upload artifacts + create a version) and channels.
import { Option, type Command } from 'commander';
import type { Arch, ArtifactRole, Channel, ChannelHistoryEntry, Image, ImageVersion } from '../../core/types.js';
import { CliError, type ApiClient } from '../api-client.js';
import { contextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printObject, printRows, type Column, type OutputFormat } from '../output.js';
import { collect, formatBytes, note, parseLabels, seg, verb } from './command-helpers.js';
import { preparePushFiles, pushFiles } from './push-files.js';

interface Items<T> {
  items: T[];
}

const IMAGE_COLUMNS: Column<Image>[] = [
  { header: 'NAME', value: (i) => i.name },
  { header: 'DESCRIPTION', value: (i) => i.description || null },
  { header: 'LABELS', value: (i) => i.labels },
  { header: 'UPDATED', value: (i) => i.updatedAt },
  { header: 'DELETED', value: (i) => i.deletedAt },
];

const VERSION_COLUMNS: Column<ImageVersion>[] = [
  { header: 'VERSION', value: (v) => v.version },
  { header: 'ARCH', value: (v) => v.arch },
  { header: 'ARTIFACTS', value: (v) => v.artifacts.map((a) => `${a.name}(${a.role})`) },
  { header: 'CMDLINE', value: (v) => v.cmdline || null },
  { header: 'CREATED', value: (v) => v.createdAt },
];

const CHANNEL_COLUMNS: Column<Channel>[] = [
  { header: 'CHANNEL', value: (c) => c.name },
  { header: 'VERSION', value: (c) => c.version },
  { header: 'UPDATED', value: (c) => c.updatedAt },
];

function write(s: string): void {
  process.stdout.write(s);
}

export function printVersion(format: OutputFormat, v: ImageVersion): void {
  if (format === 'json') return printObject(format, v);
  printObject(format, { image: v.image, version: v.version, arch: v.arch, cmdline: v.cmdline || null, created: v.createdAt, id: v.id });
  write('\n');
  printRows(format, v.artifacts, [
    { header: 'ARTIFACT', value: (a) => a.name },
    { header: 'ROLE', value: (a) => a.role },
    { header: 'SIZE', value: (a) => formatBytes(a.size) },
    { header: 'SHA256', value: (a) => a.sha256 },
  ]);
}

function printChannel(format: OutputFormat, c: Channel): void {
  printObject(format, format === 'json' ? c : { image: c.image, channel: c.name, version: c.version, updated: c.updatedAt });
}

async function getImage(client: ApiClient, name: string, create: boolean): Promise<Image | null> {
  try {
    return await client.get<Image>(`/images/${seg(name)}`);
  } catch (err) {
    if (err instanceof CliError && err.code === 'KILN_IMAGE_NOT_FOUND') {
      if (create) return null;
      throw new CliError(`${err.message} (create it with \`kiln image create ${name}\`, or push with --create)`, err.exitCode, err.code);
    }
    throw err;
  }
}

interface PushOptions {
  kernel: string;
  initrd?: string[];
  rootfs?: string;
  version?: string;
  arch?: Arch;
  cmdline?: string;
  promote?: string;
  create?: boolean;
}

export function imageCommands(image: Command): void {
  verb(image, 'create <name>', 'create an image')
    .option('--description <text>', 'what the image is')
    .option('--label <key=value>', 'label (repeatable)', collect)
    .action(async (name: string, opts: { description?: string; label?: string[] }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const labels = parseLabels(opts.label);
      const created = await client.post<Image>('/images', { name, description: opts.description, labels: opts.label !== undefined ? labels : undefined });
      printObject(output, created);
    });

  verb(image, 'list', 'list images')
    .option('--deleted', 'list soft-deleted images instead')
    .action(async (opts: { deleted?: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const { items } = await client.get<Items<Image>>('/images', { deleted: opts.deleted === true ? true : undefined });
      printRows(output, items, IMAGE_COLUMNS);
    });

  verb(image, 'show <name>', 'show an image with its versions and channels')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const [img, versions, channels] = await Promise.all([
        client.get<Image>(`/images/${seg(name)}`),
        client.get<Items<ImageVersion>>(`/images/${seg(name)}/versions`),
        client.get<Items<Channel>>(`/images/${seg(name)}/channels`),
      ]);
      if (output === 'json') return printObject(output, { ...img, versions: versions.items, channels: channels.items });
      printObject(output, img);
      write('\nVERSIONS\n');
      printRows(output, versions.items, VERSION_COLUMNS);
      write('\nCHANNELS\n');
      printRows(output, channels.items, CHANNEL_COLUMNS);
    });

  verb(image, 'push <name>', 'upload kernel/initrd/rootfs files and create a version of the image from them')
    .requiredOption('--kernel <file>', 'the kernel')
    .option('--initrd <file>', 'an initrd (repeatable; loaded in the order given)', collect)
    .option('--rootfs <file>', 'a root filesystem image')
    .option('--version <version>', 'version name (default: the next number)')
    .addOption(new Option('--arch <arch>', 'architecture (default x86_64)').choices(['x86_64', 'aarch64']))
    .option('--cmdline <args>', 'kernel command line of this version')
    .option('--promote <channel>', 'then point this channel at the new version')
    .option('--create', 'create the image when it does not exist')
    .action(async (name: string, opts: PushOptions, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const files = await preparePushFiles([
        { path: opts.kernel, role: 'kernel' },
        ...(opts.initrd ?? []).map((path) => ({ path, role: 'initrd' as const })),
        ...(opts.rootfs !== undefined ? [{ path: opts.rootfs, role: 'rootfs' as ArtifactRole }] : []),
      ]);
      // Fail before uploading anything when the version cannot be created.
      const existing = await getImage(client, name, opts.create === true);
      if (existing !== null && existing.deletedAt !== null) throw new CliError(`image ${name} is deleted; restore it first (kiln image restore ${name})`, EXIT.conflict, 'KILN_IMAGE_DELETED');
      if (existing !== null && opts.version !== undefined) {
        const taken = await client.get<ImageVersion>(`/images/${seg(name)}/versions/${seg(opts.version)}`).then(
          () => true,
          (err: unknown) => {
            if (err instanceof CliError && err.code === 'KILN_VERSION_NOT_FOUND') return false;
            throw err;
          },
        );
        if (taken) throw new CliError(`image ${name} already has version ${opts.version}; versions are immutable`, EXIT.conflict, 'KILN_VERSION_EXISTS');
      }
      const pushed = await pushFiles(client, files);
      if (existing === null) {
        await client.post<Image>('/images', { name });
        note(`created image ${name}`);
      }
      const version = await client.post<ImageVersion>(`/images/${seg(name)}/versions`, {
        version: opts.version,
        arch: opts.arch,
        cmdline: opts.cmdline,
        artifacts: pushed.map((f) => ({ name: f.name, role: f.role, sha256: f.sha256 })),
      });
      if (opts.promote !== undefined) {
        const ch = await client.post<Channel>(`/images/${seg(name)}/channels/${seg(opts.promote)}/promote`, { version: version.version });
        note(`channel ${ch.name} of ${name} now points at version ${ch.version}`);
      }
      printVersion(output, version);
    });

  verb(image, 'promote <name> <channel> <version>', 'point a channel at a version (creates the channel)')
    .action(async (name: string, channel: string, version: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printChannel(output, await client.post<Channel>(`/images/${seg(name)}/channels/${seg(channel)}/promote`, { version }));
    });

  verb(image, 'rollback <name> <channel>', 'move a channel back to the version it pointed at before')
    .action(async (name: string, channel: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printChannel(output, await client.post<Channel>(`/images/${seg(name)}/channels/${seg(channel)}/rollback`));
    });

  verb(image, 'channels <name>', "list an image's channels")
    .option('--history <channel>', "show one channel's promote/rollback history instead")
    .action(async (name: string, opts: { history?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      if (opts.history !== undefined) {
        const ch = await client.get<Channel & { history: ChannelHistoryEntry[] }>(`/images/${seg(name)}/channels/${seg(opts.history)}`);
        return printRows(output, ch.history, [
          { header: 'SEQ', value: (h) => h.seq },
          { header: 'ACTION', value: (h) => h.action },
          { header: 'FROM', value: (h) => h.fromVersion },
          { header: 'TO', value: (h) => h.toVersion },
          { header: 'ACTOR', value: (h) => h.actor },
          { header: 'AT', value: (h) => h.at },
        ]);
      }
      const { items } = await client.get<Items<Channel>>(`/images/${seg(name)}/channels`);
      printRows(output, items, CHANNEL_COLUMNS);
    });

  verb(image, 'delete <name>', 'soft-delete an image (restorable until purged)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printObject(output, await client.delete<Image>(`/images/${seg(name)}`));
    });

  verb(image, 'restore <name>', 'restore a soft-deleted image')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printObject(output, await client.post<Image>(`/images/${seg(name)}/restore`));
    });

  verb(image, 'purge <name>', 'permanently remove a soft-deleted image and the blobs only it used (admin)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      printObject(output, await client.post<{ purged: string; purgedBlobs: number }>(`/images/${seg(name)}/purge`));
    });
}
