// Runs the build's tools through the job's process runner and turns their failures into build error
// codes: a tool that is not installed is KILN_BUILD_UNSUPPORTED with the Debian package to install,
// a tool that fails is KILN_BUILD_FAILED (its output is in the job log).
import { KilnError } from '../../core/kiln-error.js';
import type { RunResult } from '../process-runner.js';
import { JobCommandError, type JobContext, type JobRunOptions } from '../job-types.js';

/** Debian packages providing the tools builds run (scripts/debian-packages.txt lists them for CI). */
export const TOOL_PACKAGES: Record<string, string> = {
  debootstrap: 'debootstrap',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  cpio: 'cpio',
  tar: 'tar',
  zstd: 'zstd',
  xz: 'xz-utils',
  gzip: 'gzip',
  bzip2: 'bzip2',
  'kiwi-ng': 'kiwi',
  flock: 'util-linux',
  unshare: 'util-linux',
  chroot: 'coreutils',
};

export type BuildContext = Pick<JobContext<unknown>, 'run' | 'log' | 'signal' | 'workDir' | 'progress'>;

/** `ctx.run` with build error codes. A stopped job's error passes through unchanged. */
export async function runTool(ctx: BuildContext, command: string, args: readonly string[], opts: JobRunOptions = {}): Promise<RunResult> {
  try {
    return await ctx.run(command, args, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).syscall?.startsWith('spawn') === true) {
      const pkg = TOOL_PACKAGES[command];
      throw new KilnError('KILN_BUILD_UNSUPPORTED', `${command} is not installed on this worker${pkg !== undefined ? ` (apt-get install ${pkg})` : ''}`);
    }
    if (err instanceof JobCommandError) {
      const how = err.result.signal !== null ? `was ended by ${err.result.signal}` : `exited with status ${err.result.exitCode}`;
      throw new KilnError('KILN_BUILD_FAILED', `${command} ${how}; its output is in the job log`);
    }
    throw err;
  }
}

/** Throws the job's stop reason when it was cancelled, timed out or is shutting down. */
export function checkStopped(ctx: Pick<JobContext<unknown>, 'signal'>): void {
  if (ctx.signal.aborted) {
    const reason = ctx.signal.reason as { message?: string } | undefined;
    throw new Error(`the build was stopped: ${reason?.message ?? 'the job stopped'}`);
  }
}
