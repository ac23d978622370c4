// `kiln openapi`: prints the admin API's OpenAPI 3.1 document, or checks a committed copy for drift.
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { CliError } from '../api-client.js';
import { EXIT } from '../exit-codes.js';

export function openapiCommand(): Command {
  return new Command('openapi')
    .description('print the OpenAPI document (--write FILE to save it, --check FILE to fail when FILE is stale)')
    .option('--write <file>')
    .option('--check <file>')
    .action(async (opts: { write?: string; check?: string }) => {
      const { openapiDocument } = await import('../../server/openapi-document.js');
      const text = `${JSON.stringify(await openapiDocument(), null, 2)}\n`;
      if (opts.check !== undefined) {
        let committed = '';
        try {
          committed = readFileSync(opts.check, 'utf8');
        } catch {
          committed = '';
        }
        if (committed !== text) throw new CliError(`${opts.check} is out of date; run: node bin/kiln.js openapi --write ${opts.check}`, EXIT.failure);
        process.stdout.write(`${opts.check} is up to date\n`);
      } else if (opts.write !== undefined) {
        writeFileSync(opts.write, text);
      } else {
        process.stdout.write(text);
      }
    });
}
