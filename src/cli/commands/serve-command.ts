// `kiln serve`: the server in this process. Flags come from the one settings table in server/config.
import { Command, Option } from 'commander';
import { SETTINGS } from '../../server/config.js';
import { loadServerConfig } from './server-config.js';

function optionName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function serveCommand(): Command {
  const cmd = new Command('serve').description('run the Kiln server (admin API + boot endpoints): SQLite and the data directory by default, PostgreSQL and S3 when configured');
  cmd.addOption(new Option('-c, --config <path>', 'configuration file (default ./kiln.yaml when present; env KILN_CONFIG)'));
  for (const s of SETTINGS) {
    const placeholder = s.kind === 'bool' ? '[bool]' : '<value>';
    cmd.addOption(new Option(`${s.flag} ${placeholder}`, `${s.doc} (env ${s.env}, default ${String(s.default)})`));
  }
  cmd.action(async (opts: Record<string, string | boolean | undefined>, command: Command) => {
    const flags: Record<string, string | boolean | undefined> = {};
    for (const s of SETTINGS) flags[s.key] = opts[optionName(s.flag)];
    const config = loadServerConfig(opts.config as string | undefined, flags, command);
    // Loaded here, not at the top: client commands should not pay for loading the server.
    const { createLogger } = await import('../../server/logger.js');
    const { startKiln } = await import('../../server/start-kiln.js');
    const log = createLogger(config.logLevel);
    const kiln = await startKiln(config, log);
    if (kiln.createdAdminToken !== null) {
      // Printed once, on first start; the file keeps it for the CLI on this host.
      process.stderr.write(`\nKiln admin token (shown once; also saved in ${config.dataDir}/admin.token, mode 0600):\n\n  ${kiln.createdAdminToken}\n\n`);
    }
    // Handlers first, then the line that says Kiln is up: whoever waits for that line may signal at once.
    const stopped = new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping');
        void kiln.close().then((clean) => {
          process.exitCode = clean ? 0 : 1;
          resolve();
        });
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    process.stderr.write(`Kiln is serving: admin API ${kiln.adminUrl}/api/v1 (docs ${kiln.adminUrl}/api/docs), boot ${kiln.bootUrl}/boot.ipxe\n`);
    await stopped;
    log.flush();
  });
  return cmd;
}
