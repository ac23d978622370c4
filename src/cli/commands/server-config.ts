// Configuration for the commands that run server-side code in this process (`serve`, `db`).
import type { Command } from 'commander';
import { ConfigError, loadConfig, type KilnConfig } from '../../server/config.js';
import { CliError } from '../api-client.js';
import { EXIT } from '../exit-codes.js';

export function loadServerConfig(file: string | undefined, flags: Record<string, string | boolean | undefined>, command: Command): KilnConfig {
  const globals = command.optsWithGlobals<{ dataDir?: string }>();
  if (flags.dataDir === undefined && globals.dataDir !== undefined) flags.dataDir = globals.dataDir;
  try {
    return loadConfig({ file, env: process.env, flags, cwd: process.cwd() });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.config, 'KILN_CONFIG_INVALID');
    throw err;
  }
}
