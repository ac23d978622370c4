// `kiln token ...`: API tokens (admin only). A token's secret is shown once, when it is created.
import { Option, type Command } from 'commander';
import type { Token } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows } from '../output.js';
import { note, seg, verb } from './command-helpers.js';

export function tokenCommands(token: Command): void {
  verb(token, 'create <name>', 'create a token and print its secret (shown only this once)')
    .addOption(new Option('--role <role>', 'what the token may do').choices(['viewer', 'operator', 'admin']).makeOptionMandatory())
    .option('--user <name>', "act for this user (the user's current role caps the token's)")
    .option('--machine <machine>', "scope the token to one machine (id or MAC): its management OS's BAAS routes only")
    .action(async (name: string, opts: { role: string; user?: string; machine?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const created = await client.post<Token & { secret: string }>('/tokens', { name, role: opts.role, user: opts.user, machine: opts.machine });
      if (output === 'json') return printObject(output, created);
      note(`created token ${created.name} (id ${created.id}, role ${created.role}); store the secret now, it cannot be shown again`);
      process.stdout.write(`secret: ${created.secret}\n`);
    });

  verb(token, 'list', 'list tokens (never their secrets)').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: Token[] }>('/tokens');
    printRows(output, items, [
      { header: 'ID', value: (t) => t.id },
      { header: 'NAME', value: (t) => t.name },
      { header: 'ROLE', value: (t) => t.role },
      { header: 'SCOPE', value: (t) => (t.user !== null ? `user ${t.user}` : t.machineId !== null ? `machine ${t.machineId}` : null) },
      { header: 'CREATED', value: (t) => t.createdAt },
      { header: 'LAST USED', value: (t) => t.lastUsedAt },
      { header: 'REVOKED', value: (t) => t.revokedAt },
    ]);
  });

  verb(token, 'revoke <id>', 'revoke a token').action(async (id: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printObject(output, await client.delete<Token>(`/tokens/${seg(id)}`));
  });
}
