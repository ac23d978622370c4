// `kiln public-key ...`: OpenSSH public keys registered in Kiln (a customize session lets one in).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { PublicKey } from '../../core/types.js';
import { contextOf } from '../context.js';
import { printObject, printRows } from '../output.js';
import { seg, usageError, verb } from './command-helpers.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The key text: --key, else the file (`-`: stdin). */
async function keyText(file: string | undefined, key: string | undefined): Promise<string> {
  if ((file === undefined) === (key === undefined)) throw usageError('give the key as a file (a .pub file, or - for stdin) or with --key, not both');
  if (key !== undefined) return key;
  if (file === '-') return readStdin();
  try {
    return await readFile(file!, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file!}: ${(err as Error).message}`);
  }
}

export function publicKeyCommands(cmd: Command): void {
  verb(cmd, 'add <name> [file]', 'register an OpenSSH public key (a .pub file, - for stdin, or --key)')
    .option('--key <line>', 'the key itself: "ssh-ed25519 AAAA... comment"')
    .option('--owner <user>', 'the user the key belongs to')
    .action(async (name: string, file: string | undefined, opts: { key?: string; owner?: string }, c: Command) => {
      const { client, output } = contextOf(c);
      printObject(output, await client.post<PublicKey>('/public-keys', { name, publicKey: (await keyText(file, opts.key)).trim(), owner: opts.owner }));
    });

  verb(cmd, 'list', 'list public keys')
    .option('--deleted', 'list soft-deleted keys instead')
    .option('--owner <user>', "only this user's keys")
    .action(async (opts: { deleted?: boolean; owner?: string }, c: Command) => {
      const { client, output } = contextOf(c);
      const { items } = await client.get<{ items: PublicKey[] }>('/public-keys', { deleted: opts.deleted === true ? 'true' : undefined, owner: opts.owner });
      printRows(output, items, [
        { header: 'NAME', value: (k) => k.name },
        { header: 'TYPE', value: (k) => k.type },
        { header: 'FINGERPRINT', value: (k) => k.fingerprint },
        { header: 'OWNER', value: (k) => k.owner },
        { header: 'COMMENT', value: (k) => k.comment || null },
        { header: 'ID', value: (k) => k.id },
        ...(opts.deleted === true ? [{ header: 'DELETED', value: (k: PublicKey) => k.deletedAt }] : []),
      ]);
    });

  verb(cmd, 'show <key>', 'show a public key (name, or id)').action(async (ref: string, _opts: unknown, c: Command) => {
    const { client, output } = contextOf(c);
    printObject(output, await client.get<PublicKey>(`/public-keys/${seg(ref)}`));
  });

  verb(cmd, 'delete <key>', 'delete a public key (restorable by id until purged); sessions it opened keep running').action(async (ref: string, _opts: unknown, c: Command) => {
    const { client, output } = contextOf(c);
    printObject(output, await client.delete<PublicKey>(`/public-keys/${seg(ref)}`));
  });

  verb(cmd, 'restore <id>', 'restore a deleted public key').action(async (id: string, _opts: unknown, c: Command) => {
    const { client, output } = contextOf(c);
    printObject(output, await client.post<PublicKey>(`/public-keys/${seg(id)}/restore`));
  });

  verb(cmd, 'purge <id>', 'remove a deleted public key for good (admin)').action(async (id: string, _opts: unknown, c: Command) => {
    const { client, output } = contextOf(c);
    printObject(output, await client.post<{ purged: string }>(`/public-keys/${seg(id)}/purge`));
  });
}
