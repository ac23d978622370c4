// `kiln image customize ...`: open an image version over SSH, say done, see where to connect.
import type { Command } from 'commander';
import type { CustomizeSession } from '../../core/types.js';
import type { Job } from '../../jobs/job.js';
import type { ApiClient } from '../api-client.js';
import { CliError } from '../api-client.js';
import { contextOf } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { printObject, type OutputFormat } from '../output.js';
import { note, parseCount, seg, verb } from './command-helpers.js';

interface CustomizeView {
  job: Job;
  session: CustomizeSession | null;
  sshCommand: string | null;
}

const POLL_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the session waits for the user (or the job ended). */
async function untilReady(client: ApiClient, jobId: string): Promise<CustomizeView> {
  for (;;) {
    const v = await client.get<CustomizeView>(`/jobs/${seg(jobId)}/customize`);
    if (v.sshCommand !== null || (v.job.status !== 'queued' && v.job.status !== 'running')) return v;
    await sleep(POLL_MS);
  }
}

async function untilFinished(client: ApiClient, jobId: string): Promise<Job> {
  for (;;) {
    const job = await client.get<Job>(`/jobs/${seg(jobId)}`);
    if (job.status !== 'queued' && job.status !== 'running') return job;
    await sleep(POLL_MS);
  }
}

function printView(output: OutputFormat, v: CustomizeView): void {
  if (output === 'json') return printObject(output, v);
  const c = v.session?.connection ?? null;
  printObject(output, {
    job: v.job.id,
    status: v.job.stage !== null && v.job.status === 'running' ? `running (${v.job.stage})` : v.job.status,
    image: v.session !== null ? `${v.session.image} ${v.session.version}` : null,
    ssh: v.sshCommand,
    hostKey: c?.hostKeyFingerprint ?? null,
    key: v.session?.publicKeyFingerprint ?? null,
    doneRequested: v.session?.doneRequestedAt ?? null,
    result: v.job.result,
    error: v.job.error?.message ?? null,
  });
}

function failIfEnded(v: CustomizeView): void {
  if (v.sshCommand !== null) return;
  throw new CliError(`customize job ${v.job.id} ${v.job.status}${v.job.error !== null ? `: ${v.job.error.code}: ${v.job.error.message}` : ''}`, EXIT.failure);
}

export function customizeCommands(image: Command): void {
  verb(image, 'customize <image> <version>', 'open a version over SSH (root, chrooted into its rootfs); done saves the changes as a new version')
    .requiredOption('--key <name>', 'registered public key that may log in (kiln public-key add)')
    .option('--new-version <version>', 'version to create (default: the next number)')
    .option('--promote <channel>', 'point this channel at the new version once saved')
    .option('--into <image>', 'save the new version in this image (created when absent) instead of the one customized')
    .option('--timeout <seconds>', 'stop the session (saving nothing) after this long (default one day)')
    .option('--no-wait', 'print the job at once instead of waiting until SSH is ready')
    .action(async (name: string, version: string, opts: { key: string; newVersion?: string; promote?: string; into?: string; timeout?: string; wait: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const job = await client.post<Job>(`/images/${seg(name)}/versions/${seg(version)}/customize`, {
        publicKey: opts.key, newVersion: opts.newVersion, promote: opts.promote, targetImage: opts.into, timeoutSeconds: parseCount(opts.timeout, '--timeout', 60),
      });
      if (!opts.wait) return printObject(output, job);
      note(`job ${job.id}: preparing ${name} ${version}...`);
      const v = await untilReady(client, job.id);
      failIfEnded(v);
      printView(output, v);
      if (output !== 'json') {
        note(`\nConnect with your key (-i <private key>) and check the host key fingerprint above:\n  ${v.sshCommand!}`);
        note(`When done: kiln image customize-done ${job.id}   (or: touch /tmp/complete inside)\nTo throw the changes away: kiln job cancel ${job.id}`);
      }
    });

  verb(image, 'customize-show <job>', 'show a customize session: where to connect, its stage, the new version once saved').action(async (id: string, _opts: unknown, cmd: Command) => {
    const { client, output } = contextOf(cmd);
    printView(output, await client.get<CustomizeView>(`/jobs/${seg(id)}/customize`));
  });

  verb(image, 'customize-done <job>', 'end a customize session: its changes are saved as a new version')
    .option('--no-wait', 'return at once instead of waiting until the new version is saved')
    .action(async (id: string, opts: { wait: boolean }, cmd: Command) => {
      const { client, output } = contextOf(cmd);
      const v = await client.post<CustomizeView>(`/jobs/${seg(id)}/done`);
      if (!opts.wait) return printView(output, v);
      note(`job ${v.job.id}: saving the image...`);
      const job = await untilFinished(client, v.job.id);
      printView(output, { ...v, job, sshCommand: null });
      if (job.status !== 'succeeded') process.exitCode = EXIT.failure;
    });
}
