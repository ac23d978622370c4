// Registers the resource commands (`kiln <noun> <verb>`): thin HTTP fronts over the admin API.
import type { Command } from 'commander';
import { groupCommands } from './group-commands.js';
import { imageCommands } from './image-commands.js';
import { jobCommands } from './job-commands.js';
import { machineCommands } from './machine-commands.js';
import { machinePayloadCommand, payloadCommands } from './payload-commands.js';
import { profileCommands } from './profile-commands.js';
import { recipeCommands } from './recipe-commands.js';
import { customizeCommands } from './customize-commands.js';
import { publicKeyCommands } from './public-key-commands.js';
import { tokenCommands } from './token-commands.js';

export function registerResourceCommands(program: Command): void {
  // `program.command()` (not addCommand) so nouns and verbs inherit exitOverride and the help settings.
  imageCommands(program.command('image').description('images, versions (push) and channels (promote, rollback)'));
  const machine = program.command('machine').description('machines: inventory, assignment, next boot, payload, boot plan, events');
  machineCommands(machine);
  machinePayloadCommand(machine);
  profileCommands(program.command('profile').description('profiles: an image (channel or version), kernel arguments, template'));
  groupCommands(program.command('group').description('groups: selectors that pick a profile for unassigned machines'));
  payloadCommands(program.command('payload').description('payloads: parameters a booted machine fetches (ncore-api)'));
  tokenCommands(program.command('token').description('API tokens (admin)'));
  jobCommands(program.command('job').description('jobs (image builds): list, show, logs [-f], cancel, create, types'));
  recipeCommands(program.command('recipe').description('recipes (debootstrap, rootfs tar, OCI layout, kiwi-ng) and image builds from them'));
  customizeCommands(program.commands.find((c) => c.name() === 'image')!);
  publicKeyCommands(program.command('public-key').description('OpenSSH public keys that may log in to customize sessions'));
}
