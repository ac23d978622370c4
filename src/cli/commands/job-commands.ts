// `kiln job ...`: jobs (image builds...): list, show, follow their logs, cancel, create self-tests.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Job } from '../../jobs/job.js';
import { CliError } from '../api-client.js';
import { contextOf, type GlobalOptions } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printObject, printRows } from '../output.js';
import { collect, note, parseCount, seg, usageError, verb } from './command-helpers.js';

interface JobTypeInfo {
  type: string;
  description: string;
  apiCreatable: boolean;
  timeoutSeconds: number;
  maxAttempts: number;
}

/**
 * The bearer token as contextOf finds it. ApiClient reads whole bodies; a followed log is a stream
 * that lasts as long as the job, so this command fetches it itself.
 */
function bearer(cmd: Command, env: Record<string, string | undefined> = process.env): string | undefined {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const token = g.token ?? env.KILN_TOKEN;
  if (token !== undefined) return token;
  try {
    return readFileSync(join(g.dataDir ?? env.KILN_DATA_DIR ?? './kiln-data', 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Writes the job's log to stdout; with `follow`, until the job ends. Returns the job as it ended. */
async function streamLog(cmd: Command, id: string, follow: boolean): Promise<Job> {
  const { client } = contextOf(cmd);
  const token = bearer(cmd);
  let res: Response;
  try {
    res = await fetch(client.url(`/jobs/${seg(id)}/logs`, follow ? { follow: 1 } : undefined), { headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    throw new CliError(`cannot reach Kiln at ${client.server}: ${(err as Error).message}`, EXIT.unavailable);
  }
  if (!res.ok) {
    // The same error as any other request gives (problem code, exit status).
    await client.get(`/jobs/${seg(id)}`);
    throw new CliError(`HTTP ${res.status}: ${await res.text()}`, EXIT.failure);
  }
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
  }
  return client.get<Job>(`/jobs/${seg(id)}`);
}

/** After following: exit 0 only when the job succeeded. */
function outcome(job: Job): void {
  if (job.status === 'succeeded') return;
  if (job.status === 'queued' || job.status === 'running') {
    note(`job ${job.id} is still ${job.status} (the server stopped streaming); follow again with: kiln job logs -f ${job.id}`);
    process.exitCode = EXIT.unavailable;
    return;
  }
  note(`job ${job.id} ${job.status}: ${job.error?.code ?? ''} ${job.error?.message ?? ''}`.trimEnd());
  process.exitCode = EXIT.failure;
}

const rows = [
  { header: 'ID', value: (j: Job) => j.id },
  { header: 'TYPE', value: (j: Job) => j.type },
  { header: 'STATUS', value: (j: Job) => j.status },
  { header: 'STAGE', value: (j: Job) => j.stage },
  { header: 'PROGRESS', value: (j: Job) => (j.progress === null ? null : `${j.progress}%`) },
  { header: 'ATTEMPTS', value: (j: Job) => `${j.attempts}/${j.maxAttempts}` },
  { header: 'CREATED', value: (j: Job) => j.createdAt },
  { header: 'ERROR', value: (j: Job) => (j.status === 'failed' || j.status === 'cancelled' ? j.error?.message : null) },
];

export function jobCommands(job: Command): void {
  verb(job, 'list', 'list jobs, newest first')
    .option('--status <status>', 'only these statuses (queued, running, succeeded, failed, cancelled; repeatable or comma-separated)', collect)
    .option('--type <type>', 'only jobs of this type')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(async (opts: { status?: string[]; type?: string; limit?: string }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const limit = parseCount(opts.limit, '--limit') ?? 100;
      const items: Job[] = [];
      let after: string | undefined;
      // Pages of at most 1000 (the API's limit) until `limit` jobs or the end.
      while (items.length < limit) {
        const page = await client.get<{ items: Job[]; next: string | null }>('/jobs', { status: opts.status?.join(','), type: opts.type, after, limit: Math.min(1000, limit - items.length) });
        items.push(...page.items);
        if (page.next === null) break;
        after = page.next;
      }
      printRows(output, items, rows);
    });

  verb(job, 'show <id>', 'show a job: status, stage, progress, attempts, result or error').action(async (id: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printObject(output, await client.get<Job>(`/jobs/${seg(id)}`));
  });

  verb(job, 'logs <id>', "print a job's log (-f: follow it until the job ends; the exit status then says whether it succeeded)")
    .option('-f, --follow', 'keep printing what the job writes until it ends')
    .action(async (id: string, opts: { follow?: boolean }, cmd: Command) => {
      const ended = await streamLog(cmd, id, opts.follow === true);
      if (opts.follow === true) outcome(ended);
    });

  verb(job, 'cancel <id>', 'cancel a job (a running one stops within seconds: processes killed, work directory removed)').action(async (id: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printObject(output, await client.post<Job>(`/jobs/${seg(id)}/cancel`));
  });

  verb(job, 'create <type>', 'start a job of a type open to the API (see `kiln job types`), e.g. self-test')
    .option('--input <json>', "the job's input as JSON (default {})")
    .option('--timeout <seconds>', "stop it after this long (default: the type's)")
    .option('--max-attempts <n>', "attempts when a worker dies under it (default: the type's)")
    .option('--priority <n>', 'higher runs first (default 0)')
    .option('-f, --follow', 'then follow its log until it ends')
    .action(async (type: string, opts: { input?: string; timeout?: string; maxAttempts?: string; priority?: string; follow?: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      let input: unknown = {};
      if (opts.input !== undefined) {
        try {
          input = JSON.parse(opts.input);
        } catch {
          throw usageError(`--input ${JSON.stringify(opts.input)}: not JSON`);
        }
      }
      const priority = opts.priority === undefined ? undefined : Number(opts.priority);
      if (priority !== undefined && !Number.isInteger(priority)) throw usageError(`--priority ${JSON.stringify(opts.priority)}: want a whole number`);
      const created = await client.post<Job>('/jobs', {
        type, input, timeoutSeconds: parseCount(opts.timeout, '--timeout'), maxAttempts: parseCount(opts.maxAttempts, '--max-attempts'), priority,
      });
      if (opts.follow !== true) return printObject(output, created);
      note(`job ${created.id} created`);
      outcome(await streamLog(cmd, created.id, true));
    });

  verb(job, 'types', 'list job types').action(async (_opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    const { items } = await client.get<{ items: JobTypeInfo[] }>('/job-types');
    printRows(output, items, [
      { header: 'TYPE', value: (t) => t.type },
      { header: 'API', value: (t) => (t.apiCreatable ? 'yes' : 'no') },
      { header: 'TIMEOUT', value: (t) => `${t.timeoutSeconds}s` },
      { header: 'ATTEMPTS', value: (t) => t.maxAttempts },
      { header: 'DESCRIPTION', value: (t) => t.description },
    ]);
  });
}
