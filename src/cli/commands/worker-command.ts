// `kiln worker`: runs jobs from the queue in this process, against the database and blob store the
// servers use (same settings and kiln.yaml as `kiln serve`). Run as many as there are build hosts.
import { Command } from 'commander';
import { SETTINGS } from '../../server/config.js';
import { addSettingOptions, configFromOptions } from './server-config.js';

/** The settings a worker uses: where state lives, logging, and jobs.* (it always runs jobs). */
const WORKER_SETTINGS = SETTINGS.filter((s) => ['dataDir', 'logLevel', 'sqliteCacheMiB'].includes(s.key) || /^(database|blobs|customize)\./.test(s.key) || (s.key.startsWith('jobs.') && s.key !== 'jobs.inProcess'));

export function workerCommand(): Command {
  const cmd = new Command('worker').description('run jobs (image builds) from the shared queue: same database and blob store as the servers; stops on SIGTERM after jobs.shutdownGraceSeconds');
  addSettingOptions(cmd, WORKER_SETTINGS);
  cmd.action(async (opts: Record<string, string | boolean | undefined>, command: Command) => {
    const config = configFromOptions(opts, WORKER_SETTINGS, command);
    const { createLogger } = await import('../../server/logger.js');
    const { startWorkerProcess } = await import('../../jobs/start-jobs.js');
    const log = createLogger(config.logLevel);
    const running = await startWorkerProcess(config, log);
    const stopped = new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping');
        void running.close().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    process.stderr.write(`Kiln worker ${running.worker.id} is running jobs (concurrency ${config.jobs.concurrency})\n`);
    await stopped;
    log.flush();
  });
  return cmd;
}
