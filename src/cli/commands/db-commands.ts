// `kiln db status|migrate`: the schema of the configured database, inspected and moved in this process.
import { Command, Option } from 'commander';
import { KilnError } from '../../core/kiln-error.js';
import { CliError } from '../api-client.js';
import { exitCodeForErrorCode } from '../exit-codes.js';
import { printObject, printRows, type OutputFormat } from '../output.js';
import { loadServerConfig } from './server-config.js';

interface DbOpts {
  config?: string;
  databaseUrl?: string;
}

function configOf(opts: DbOpts, command: Command) {
  return loadServerConfig(opts.config, { 'database.url': opts.databaseUrl }, command);
}

function output(command: Command): OutputFormat {
  const o = command.optsWithGlobals<{ output?: string }>().output ?? process.env.KILN_OUTPUT ?? 'table';
  return o === 'json' ? 'json' : 'table';
}

/** Runs server-side code; its KilnErrors become the CLI's exit codes. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KilnError) throw new CliError(`${err.code}: ${err.message}`, exitCodeForErrorCode(err.code), err.code);
    throw err;
  }
}

function withDbOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-c, --config <path>', 'configuration file (default ./kiln.yaml when present; env KILN_CONFIG)'))
    .addOption(new Option('--database-url <url>', 'PostgreSQL URL (env KILN_DATABASE_URL; default: SQLite in the data directory)'));
}

export function dbCommand(): Command {
  const db = new Command('db').description('inspect and migrate the database schema (runs locally against the configured database)');
  db.addCommand(
    withDbOptions(new Command('status').description('list the schema migrations and which are applied')).action(async (opts: DbOpts, command: Command) => {
      const { dbStatus } = await import('../../server/db-admin.js');
      const s = await guarded(() => dbStatus(configOf(opts, command)));
      const format = output(command);
      if (format === 'json') return printObject('json', s);
      process.stdout.write(`database: ${s.location}\n`);
      printRows('table', s.migrations, [
        { header: 'MIGRATION', value: (m) => m.name },
        { header: 'APPLIED', value: (m) => m.appliedAt ?? 'pending' },
      ]);
    }),
  );
  db.addCommand(
    withDbOptions(new Command('migrate').description('apply pending migrations (safe with replicas running: they take turns); --down N reverts the last N'))
      .addOption(new Option('--down <steps>', 'revert the last N applied migrations instead').argParser((v) => {
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`--down wants a positive number of steps, got ${JSON.stringify(v)}`, 2);
        return Number(v);
      }))
      .action(async (opts: DbOpts & { down?: number }, command: Command) => {
        const { dbMigrateDown, dbMigrateUp } = await import('../../server/db-admin.js');
        const config = configOf(opts, command);
        const format = output(command);
        if (opts.down !== undefined) {
          const steps = opts.down;
          const r = await guarded(() => dbMigrateDown(config, steps));
          if (format === 'json') return printObject('json', r);
          process.stdout.write(r.reverted.length === 0 ? `${r.location}: nothing to revert\n` : `${r.location}: reverted ${r.reverted.join(', ')}\n`);
          return;
        }
        const r = await guarded(() => dbMigrateUp(config));
        if (format === 'json') return printObject('json', r);
        process.stdout.write(r.applied.length === 0 ? `${r.location}: up to date\n` : `${r.location}: applied ${r.applied.join(', ')}\n`);
      }),
  );
  return db;
}
