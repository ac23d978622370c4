// ProcessRunner: the seam through which jobs run commands. Each command starts in a process group
// of its own; stopping it (cancel, timeout) signals the whole group, TERM and then KILL, so nothing
// it started lives on. A command's group also ends with it: builds may not leave daemons behind.
import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string | undefined;
  /** Added to the worker's environment. */
  env?: Record<string, string> | undefined;
  /** Aborting stops the command's whole process group. */
  signal?: AbortSignal | undefined;
  /** Output as it arrives. */
  onOutput?: ((chunk: Buffer, stream: 'stdout' | 'stderr') => void) | undefined;
  /** Bytes for stdin; none by default (stdin is /dev/null). */
  stdin?: string | Buffer | undefined;
  /** After SIGTERM, how long the group has before SIGKILL (default 5000). */
  killGraceMs?: number | undefined;
}

export interface RunResult {
  /** Exit status of the command, or null when a signal ended it. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** True when `signal` stopped it. */
  aborted: boolean;
  /** The process group id (the command's pid). */
  pid: number;
}

export interface ProcessRunner {
  /** Runs `command` (no shell) until it and its process group are gone. Rejects only when it cannot start. */
  run(command: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/** Output still buffered in pipes once the group is dead arrives within this; then the pipes are dropped. */
const DRAIN_MS = 2000;

function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}

export class SpawnProcessRunner implements ProcessRunner {
  run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return new Promise<RunResult>((resolve, reject) => {
      if (opts.signal?.aborted === true) {
        reject(new Error(`not starting ${command}: the job was stopped`));
        return;
      }
      const child = spawn(command, [...args], {
        cwd: opts.cwd,
        env: { ...process.env, ...(opts.env ?? {}) },
        detached: true,
        stdio: [opts.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      });
      let aborted = false;
      let killTimer: NodeJS.Timeout | null = null;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let open = 2;
      let drainTimer: NodeJS.Timeout | null = null;
      const grace = opts.killGraceMs ?? 5000;

      const finish = () => {
        if (exit === null || (open > 0 && drainTimer !== null)) return;
        if (open > 0) {
          // Something that left the group (setsid) may hold the pipes open: do not wait forever.
          drainTimer = setTimeout(() => {
            child.stdout?.destroy();
            child.stderr?.destroy();
            open = 0;
            done();
          }, DRAIN_MS);
          return;
        }
        done();
      };
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        if (drainTimer !== null) clearTimeout(drainTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ exitCode: exit!.code, signal: exit!.signal, aborted, pid: child.pid! });
      };
      const onAbort = () => {
        if (exit !== null || child.pid === undefined) return;
        aborted = true;
        signalGroup(child.pid, 'SIGTERM');
        killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), grace);
      };

      child.once('error', (err) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (killTimer !== null) clearTimeout(killTimer);
        reject(err);
      });
      child.once('spawn', () => {
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        if (opts.signal?.aborted === true) onAbort();
      });
      for (const [stream, name] of [[child.stdout!, 'stdout'], [child.stderr!, 'stderr']] as const) {
        stream.on('data', (chunk: Buffer) => opts.onOutput?.(chunk, name));
        stream.once('close', () => {
          open--;
          if (open === 0 && drainTimer !== null) {
            clearTimeout(drainTimer);
            drainTimer = null;
          }
          finish();
        });
      }
      if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        if (killTimer !== null) clearTimeout(killTimer);
        // The leader is gone; whatever it left running in its group goes too (at once: the group id
        // may be reused once the group is empty, so no signal is sent to it later).
        signalGroup(child.pid!, 'SIGKILL');
        finish();
      });
    });
  }
}
