// What every CLI command gets: the API client and the output format, from global flags or KILN_* env.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ApiClient } from './api-client.js';
import type { OutputFormat } from './output.js';

export interface CliContext {
  client: ApiClient;
  output: OutputFormat;
}

export interface GlobalOptions {
  server?: string;
  token?: string;
  output?: string;
  dataDir?: string;
}

/**
 * Token: --token, else KILN_TOKEN, else <data-dir>/admin.token when readable (so on the Kiln host
 * itself the tour works with no setup).
 */
export function contextOf(cmd: Command, env: Record<string, string | undefined> = process.env): CliContext {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const server = g.server ?? env.KILN_SERVER ?? 'http://127.0.0.1:8080';
  let token = g.token ?? env.KILN_TOKEN;
  if (token === undefined) {
    try {
      token = readFileSync(join(g.dataDir ?? env.KILN_DATA_DIR ?? './kiln-data', 'admin.token'), 'utf8').trim();
    } catch {
      token = undefined;
    }
  }
  const output = (g.output ?? env.KILN_OUTPUT ?? 'table') as OutputFormat;
  return { client: new ApiClient(server, token), output };
}
