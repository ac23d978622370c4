// Configuration for the commands that run server-side code in this process (`serve`, `db`).
import { Option, type Command } from 'commander';
import type { SETTINGS} from '../../server/config.js';
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

type Setting = (typeof SETTINGS)[number];
type Opts = Record<string, string | boolean | undefined>;

function optionName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `--config` and one flag per setting, from the settings table (so help and README agree). */
export function addSettingOptions(cmd: Command, settings: readonly Setting[]): Command {
  cmd.addOption(new Option('-c, --config <path>', 'configuration file (default ./kiln.yaml when present; env KILN_CONFIG)'));
  for (const s of settings) {
    const placeholder = s.kind === 'bool' ? '[bool]' : '<value>';
    cmd.addOption(new Option(`${s.flag} ${placeholder}`, `${s.doc} (env ${s.env}, default ${String(s.default)})`));
  }
  return cmd;
}

/** The configuration those flags (plus file and environment) make. */
export function configFromOptions(opts: Opts, settings: readonly Setting[], command: Command): KilnConfig {
  const flags: Opts = {};
  for (const s of settings) flags[s.key] = opts[optionName(s.flag)];
  return loadServerConfig(opts.config as string | undefined, flags, command);
}
