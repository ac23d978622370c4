// `kiln serve`: the server in this process. Flags come from the one settings table in server/config.
import { Command } from 'commander';
import { SETTINGS, type KilnConfig } from '../../server/config.js';
import type { Logger } from 'pino';
import type { RunningKiln } from '../../server/start-kiln.js';
import { addSettingOptions, configFromOptions } from './server-config.js';

export function serveCommand(): Command {
  const cmd = new Command('serve').description('run the Kiln server (admin API + boot endpoints): SQLite and the data directory by default, PostgreSQL and S3 when configured');
  addSettingOptions(cmd, SETTINGS);
  cmd.action(async (opts: Record<string, string | boolean | undefined>, command: Command) => {
    const config = configFromOptions(opts, SETTINGS, command);
    // Loaded here, not at the top: client commands should not pay for loading the server.
    const { createLogger } = await import('../../server/logger.js');
    const log = createLogger(config.logLevel);
    const { clusterWorkerIndex } = await import('../../server/cluster/cluster-worker.js');
    const worker = clusterWorkerIndex(process.env);
    if (worker !== null) return serveAsWorker(config, log, worker);
    if (config.workers > 1) return serveAsPrimary(config, log);
    const { startKiln } = await import('../../server/start-kiln.js');
    const kiln = await startKiln(config, log);
    printAdminToken(kiln.createdAdminToken, config.dataDir);
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
    announce(kiln.adminUrl, kiln.bootUrl);
    await stopped;
    log.flush();
  });
  return cmd;
}

function announce(adminUrl: string, bootUrl: string, workers?: number): void {
  const procs = workers !== undefined ? ` (${workers} worker processes)` : '';
  process.stderr.write(`Kiln is serving${procs}: admin API ${adminUrl}/api/v1 (docs ${adminUrl}/api/docs), boot ${bootUrl}/boot.ipxe\n`);
}

function printAdminToken(token: string | null, dataDir: string): void {
  // Printed once, on first start; the file keeps it for the CLI on this host.
  if (token !== null) process.stderr.write(`\nKiln admin token (shown once; also saved in ${dataDir}/admin.token, mode 0600):\n\n  ${token}\n\n`);
}

/** `--workers N`: prepare the database once, fork the workers, relay their changes, stop them on a signal. */
async function serveAsPrimary(config: KilnConfig, log: Logger): Promise<void> {
  const { openClusterEventWriter, prepareStorage } = await import('../../server/start-kiln.js');
  const { startCluster } = await import('../../server/cluster/cluster-primary.js');
  printAdminToken((await prepareStorage(config, log)).createdAdminToken, config.dataDir);
  const events = await openClusterEventWriter(config, log);
  const cluster = startCluster(config.workers, log, events === null ? {} : { events });
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    void cluster.stop();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  try {
    const { adminUrl, bootUrl } = await cluster.ready;
    announce(adminUrl, bootUrl, config.workers);
  } catch (err) {
    log.error({ err }, 'Kiln did not start');
  }
  process.exitCode = await cluster.done;
  // Only now: stopping workers flush their last boot events through this store.
  await events?.close();
  log.flush();
}

/** A worker of `--workers N`: a whole Kiln on the shared sockets, told by the primary when to stop. */
async function serveAsWorker(config: KilnConfig, log: Logger, index: number): Promise<void> {
  const { startKiln } = await import('../../server/start-kiln.js');
  const { onPrimaryShutdown, sendToPrimary } = await import('../../server/cluster/cluster-worker.js');
  let kiln: RunningKiln;
  try {
    kiln = await startKiln(config, log.child({ clusterWorker: index }), { clusterWorker: index });
  } catch (err) {
    // Tell the primary, then exit: the IPC channel (and whatever the failed start left open) would
    // keep this process alive, and the primary waits for it to exit before giving up.
    await new Promise<void>((resolve) => sendToPrimary({ kind: 'kiln-failed', error: err instanceof Error ? err.message : String(err) }, resolve));
    log.flush();
    process.exit(1);
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      void kiln.close().then((clean) => {
        process.exitCode = clean ? 0 : 1;
        resolve();
      });
    };
    onPrimaryShutdown(stop);
    // A terminal's Ctrl-C reaches the whole process group: workers stop on it too.
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    sendToPrimary({ kind: 'kiln-ready', adminUrl: kiln.adminUrl, bootUrl: kiln.bootUrl });
  });
  log.flush();
  // The IPC channel would keep the process alive.
  process.disconnect?.();
}
