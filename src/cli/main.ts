// `kiln`: the command line. `serve` runs the server; every other command is an HTTP client of it.
import { Command, CommanderError, Option } from 'commander';
import { CliError } from './api-client.js';
import { EXIT, exitCodeForErrorCode } from './exit-codes.js';
import { KilnError } from '../core/kiln-error.js';
import { dbCommand } from './commands/db-commands.js';
import { demoCommand } from './commands/demo-command.js';
import { openapiCommand } from './commands/openapi-command.js';
import { serveCommand } from './commands/serve-command.js';
import { workerCommand } from './commands/worker-command.js';
import { registerResourceCommands } from './commands/register.js';
import { KILN_VERSION } from '../server/version.js';

export function buildProgram(): Command {
  const program = new Command('kiln')
    .description('Kiln: build OS images and network-boot bare-metal fleets from them')
    .version(KILN_VERSION)
    .option('-s, --server <url>', 'Kiln server URL (env KILN_SERVER, default http://127.0.0.1:8080)')
    .option('-t, --token <token>', 'API token (env KILN_TOKEN, default: <data-dir>/admin.token when readable)')
    .addOption(new Option('-o, --output <format>', 'output format (env KILN_OUTPUT)').choices(['table', 'json']))
    .option('-d, --data-dir <dir>', 'data directory (env KILN_DATA_DIR, default ./kiln-data)')
    // Subcommand options such as `image push --version` must not be taken by the program's --version.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(serveCommand());
  program.addCommand(workerCommand());
  program.addCommand(dbCommand());
  program.addCommand(demoCommand());
  program.addCommand(openapiCommand(), { hidden: true });
  registerResourceCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`kiln: ${err.message}\n`);
      return err.exitCode;
    }
    // Commands that run server code here (serve, db) fail with the catalogue's errors.
    if (err instanceof KilnError) {
      process.stderr.write(`kiln: ${err.code}: ${err.message}\n`);
      return exitCodeForErrorCode(err.code);
    }
    process.stderr.write(`kiln: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.failure;
  }
}
