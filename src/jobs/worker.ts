// Worker: claims jobs of its types, up to `concurrency` at once, and runs each attempt: a private
// work directory, a log, a heartbeat that keeps the lease (and hears about cancels), a timeout, and
// an outcome recorded only while the lease is still held. Runs inside `kiln serve` or as `kiln worker`.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Clock } from '../core/ports.js';
import { KilnError } from '../core/kiln-error.js';
import type { Job } from './job.js';
import type { JobLogs } from './job-logs.js';
import type { JobQueue } from './job-queue.js';
import { checkJobInput, jobErrorOf, JobCommandError, RetryableJobError, type AnyJobType, type JobContext, type JobStopReason, type JobTypes } from './job-types.js';
import type { ProcessRunner, RunResult } from './process-runner.js';
import { isDeadLocalWorker, JOB_DIR_ENV, killStrays, removeWorkDir, sweepWorkDirs, workDirOf } from './work-dirs.js';

export interface WorkerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WorkerOptions {
  queue: JobQueue;
  logs: JobLogs;
  types: JobTypes;
  /** Types this worker runs (default: every type of `types`). */
  only?: readonly string[] | null | undefined;
  concurrency: number;
  leaseSeconds: number;
  heartbeatSeconds: number;
  /** How often an idle worker looks for work (a local enqueue wakes it at once). */
  pollIntervalMs: number;
  /** Work directories are made here, one per attempt. */
  workRoot: string;
  clock: Clock;
  runner: ProcessRunner;
  log: WorkerLogger;
  /** Default: host/pid/random, which lets a restarted worker on the same host recognise a dead one. */
  id?: string | undefined;
  /** After SIGTERM, how long a job's processes have before SIGKILL (default 5000). */
  killGraceMs?: number | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Running {
  job: Job;
  stop(reason: JobStopReason): void;
  done: Promise<void>;
}

export class Worker {
  readonly id: string;
  private readonly types: readonly string[];
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private loopDone: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private lastReap = 0;
  private lastSweep = 0;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.id ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
    const known = Object.keys(o.types);
    const only = o.only ?? known;
    const unknown = only.filter((t) => !known.includes(t));
    if (unknown.length > 0) throw new KilnError('KILN_CONFIG_INVALID', `jobs.types: unknown job types ${unknown.join(', ')} (known: ${known.join(', ')})`);
    this.types = only;
  }

  /** Jobs running now. */
  get active(): readonly Job[] {
    return [...this.running.values()].map((r) => r.job);
  }

  async start(): Promise<void> {
    await mkdir(this.o.workRoot, { recursive: true, mode: 0o700 });
    await this.sweep();
    this.loopDone = this.loop();
  }

  /** Looks for work now (a job was enqueued in this process). */
  wake(): void {
    this.wakeUp?.();
  }

  /**
   * Stops claiming; running jobs get `graceMs` to finish, then are stopped (their processes killed,
   * their directories removed) and go back to the queue for another worker.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loopDone;
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const r of this.running.values()) r.stop({ kind: 'shutdown', message: `worker ${this.id} is shutting down` });
    await all();
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.housekeeping();
        if (this.running.size >= this.o.concurrency) {
          await this.idle(this.o.pollIntervalMs);
          continue;
        }
        const job = await this.o.queue.claim(this.id, this.types, this.o.leaseSeconds);
        if (job === null) {
          await this.idle(this.o.pollIntervalMs);
          continue;
        }
        if (this.stopping) {
          // Claimed while stop() began: give it straight back.
          await this.o.queue.release(job.id, this.id, { code: 'KILN_JOB_INTERRUPTED', message: `worker ${this.id} is shutting down` });
          break;
        }
        this.launch(job);
      } catch (err) {
        this.o.log.warn({ err, worker: this.id }, 'job worker could not claim or sweep (database unavailable?); retrying');
        await this.idle(this.o.pollIntervalMs);
      }
    }
  }

  /** Leases that expired elsewhere go back to the queue; directories of dead attempts go away. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    if (now - this.lastReap >= this.o.heartbeatSeconds * 1000) {
      this.lastReap = now;
      await reapExpiredLeases(this.o.queue, this.o.logs, this.o.log);
    }
    if (now - this.lastSweep >= this.o.leaseSeconds * 1000) {
      this.lastSweep = now;
      await this.sweep();
    }
  }

  private async sweep(): Promise<void> {
    const removed = await sweepWorkDirs(
      this.o.workRoot,
      async (jobId, attempt) => {
        if (this.running.has(jobId)) return true;
        const job = await this.o.queue.get(jobId);
        if (job === null || job.status !== 'running' || job.attempts !== attempt) return false;
        const expired = job.leaseExpiresAt !== null && job.leaseExpiresAt < this.o.clock.now().toISOString();
        return !expired && !isDeadLocalWorker(job.workerId);
      },
      this.o.runner,
    ).catch((err: unknown) => {
      this.o.log.warn({ err }, 'sweeping job work directories failed');
      return [];
    });
    if (removed.length > 0) this.o.log.info({ removed }, 'removed work directories of attempts that ended without cleaning up');
  }

  private launch(job: Job): void {
    let stopFn: (reason: JobStopReason) => void = () => undefined;
    const entry: Running = { job, stop: (r) => stopFn(r), done: Promise.resolve() };
    entry.done = this.attempt(job, (fn) => (stopFn = fn))
      .catch((err: unknown) => this.o.log.error({ err, job: job.id }, 'job attempt failed unexpectedly'))
      .finally(() => {
        this.running.delete(job.id);
        this.wake();
      });
    this.running.set(job.id, entry);
  }

  private async attempt(job: Job, exposeStop: (fn: (reason: JobStopReason) => void) => void): Promise<void> {
    const { queue, logs, log } = this.o;
    const type = this.o.types[job.type]!;
    const dir = workDirOf(this.o.workRoot, job.id, job.attempts);
    const writer = logs.writer(job.id, { onError: (err) => log.warn({ err, job: job.id }, 'storing job log failed; kept for the next try') });
    const controller = new AbortController();
    let reason: JobStopReason | null = null;
    const stop = (r: JobStopReason) => {
      if (controller.signal.aborted) return;
      reason = r;
      writer.line(`[kiln] stopping: ${r.message}`);
      controller.abort(r);
    };
    exposeStop(stop);

    // Heartbeats: keep the lease, hear about cancels, notice when the job is no longer ours.
    let lastBeat = Date.now();
    let beating = false;
    const heartbeat = setInterval(() => {
      if (beating) return;
      beating = true;
      queue
        .heartbeat(job.id, this.id, this.o.leaseSeconds)
        .then(({ cancelRequested }) => {
          lastBeat = Date.now();
          if (cancelRequested) stop({ kind: 'cancel', message: 'cancel requested' });
        })
        .catch((err: unknown) => {
          if (err instanceof KilnError && (err.code === 'KILN_JOB_LEASE_LOST' || err.code === 'KILN_JOB_NOT_FOUND')) stop({ kind: 'lease-lost', message: err.message });
          else if (Date.now() - lastBeat > this.o.leaseSeconds * 1000) stop({ kind: 'lease-lost', message: `no heartbeat got through for ${this.o.leaseSeconds} s; another worker may hold the job now` });
          else log.warn({ err, job: job.id }, 'job heartbeat failed; retrying');
        })
        .finally(() => (beating = false));
    }, this.o.heartbeatSeconds * 1000);
    // Node fires longer timers at once; JobService keeps timeouts far below this anyway.
    const timeoutMs = Math.min(job.timeoutSeconds * 1000, 2 ** 31 - 1);
    const timeout = setTimeout(() => stop({ kind: 'timeout', message: `ran longer than its timeout of ${job.timeoutSeconds} s` }), timeoutMs);

    // Stage and progress: written in order; progress coalesced to about one write a second.
    let reports = Promise.resolve();
    let pendingProgress: number | undefined;
    let progressTimer: NodeJS.Timeout | null = null;
    const report = (update: { stage?: string; progress?: number }) => {
      reports = reports
        .then(() => queue.report(job.id, this.id, update))
        .catch((err: unknown) => {
          if (err instanceof KilnError && err.code === 'KILN_JOB_LEASE_LOST') stop({ kind: 'lease-lost', message: err.message });
          else log.warn({ err, job: job.id }, 'recording job progress failed');
        });
    };
    const takeProgress = () => {
      const p = pendingProgress;
      pendingProgress = undefined;
      return p;
    };

    const commands = new Set<Promise<RunResult>>();
    const ctx: Omit<JobContext<unknown>, 'input'> = {
      job,
      log: writer,
      signal: controller.signal,
      workDir: dir,
      stage: (name) => {
        writer.line(`[kiln] stage: ${name}`);
        report({ stage: name, progress: takeProgress() });
      },
      progress: (percent) => {
        pendingProgress = percent;
        progressTimer ??= setTimeout(() => {
          progressTimer = null;
          const p = takeProgress();
          if (p !== undefined) report({ progress: p });
        }, 1000);
      },
      run: async (command, args, opts = {}) => {
        if (opts.quiet !== true) writer.line(`[kiln] $ ${[command, ...args].map((a) => (/^[\w./=:@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`);
        const p = this.o.runner.run(command, args, {
          cwd: opts.cwd ?? dir,
          env: { ...(opts.env ?? {}), KILN_JOB_ID: job.id, [JOB_DIR_ENV]: dir },
          stdin: opts.stdin,
          killGraceMs: opts.killGraceMs ?? this.o.killGraceMs,
          signal: controller.signal,
          onOutput: opts.quiet === true ? undefined : (chunk) => writer.write(chunk),
        });
        commands.add(p);
        let r: RunResult;
        try {
          r = await p;
        } finally {
          commands.delete(p);
        }
        if (r.aborted) throw new Error(`${command} was stopped: ${(controller.signal.reason as JobStopReason | undefined)?.message ?? 'the job stopped'}`);
        if (r.exitCode === null || !(opts.okExitCodes ?? [0]).includes(r.exitCode)) throw new JobCommandError(command, r);
        return r;
      },
    };

    writer.line(`[kiln] ${job.type}: attempt ${job.attempts} of ${job.maxAttempts} on worker ${this.id}`);
    let outcome: { ok: true; result: unknown } | { ok: false; err: unknown };
    try {
      const input = checkJobInput(type, job.input);
      await removeWorkDir(dir, this.o.runner);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      outcome = await this.settle(type.run({ ...ctx, input }), controller.signal);
    } catch (err) {
      outcome = { ok: false, err };
    } finally {
      clearTimeout(timeout);
      if (progressTimer !== null) clearTimeout(progressTimer);
    }
    // Whatever the job left running stops now, before its directory goes.
    if (!controller.signal.aborted) controller.abort({ kind: 'shutdown', message: 'the attempt ended' });
    await Promise.allSettled([...commands]);
    const strays = await killStrays(dir);
    if (strays.length > 0) writer.line(`[kiln] killed ${strays.length} processes the job left behind`);
    await removeWorkDir(dir, this.o.runner).catch((err: unknown) => {
      log.error({ err, job: job.id, dir }, 'removing a job work directory failed');
      writer.line(`[kiln] could not remove the work directory: ${(err as Error).message}`);
    });
    const pending = takeProgress();
    if (pending !== undefined && !outcome.ok) report({ progress: pending });
    await reports;
    try {
      await this.record(job, type, outcome, reason, writer);
    } finally {
      // Beating until the outcome is written: storing the last of the log may take a while.
      clearInterval(heartbeat);
    }
  }

  /** The run's outcome; a run that ignores its signal is abandoned some seconds after the stop. */
  private settle(run: Promise<unknown>, signal: AbortSignal): Promise<{ ok: true; result: unknown } | { ok: false; err: unknown }> {
    const settled = run.then(
      (result) => ({ ok: true as const, result }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const abandonAfterMs = (this.o.killGraceMs ?? 5000) + 10_000;
    const abandoned = new Promise<{ ok: false; err: unknown }>((resolve) => {
      const onAbort = () => {
        const t = setTimeout(() => resolve({ ok: false, err: new Error(`the job did not stop within ${abandonAfterMs / 1000} s of being asked to; abandoned`) }), abandonAfterMs);
        void settled.then(() => clearTimeout(t));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([settled, abandoned]);
  }

  private async record(job: Job, type: AnyJobType, outcome: { ok: true; result: unknown } | { ok: false; err: unknown }, reason: JobStopReason | null, writer: { line(t: string): void; close(): Promise<void> }): Promise<void> {
    const { queue, log, clock } = this.o;
    if (reason?.kind === 'lease-lost') {
      writer.line(`[kiln] this worker no longer holds the job; its outcome is not recorded`);
      await writer.close();
      log.warn({ job: job.id, reason: reason.message }, 'job lease lost; attempt abandoned');
      return;
    }
    let write: () => Promise<Job>;
    if (outcome.ok) {
      writer.line('[kiln] succeeded');
      write = () => queue.complete(job.id, this.id, outcome.result ?? null);
    } else {
      const err = jobErrorOf(outcome.err);
      switch (reason?.kind) {
        case 'cancel':
          writer.line('[kiln] cancelled');
          write = () => queue.cancelled(job.id, this.id, { code: 'KILN_JOB_CANCELLED', message: 'cancelled while running' });
          break;
        case 'timeout':
          writer.line(`[kiln] failed: ${reason.message}`);
          write = () => queue.fail(job.id, this.id, { code: 'KILN_JOB_TIMEOUT', message: reason.message });
          break;
        case 'shutdown':
          writer.line('[kiln] interrupted; back in the queue for another worker');
          write = () => queue.release(job.id, this.id, { code: 'KILN_JOB_INTERRUPTED', message: reason.message });
          break;
        case undefined: {
          const retry = outcome.err instanceof RetryableJobError || type.retryable?.(outcome.err) === true;
          const retryAt = retry && job.attempts < job.maxAttempts ? new Date(clock.now().getTime() + (type.retryDelaySeconds ?? 30) * 1000 * 2 ** (job.attempts - 1)).toISOString() : undefined;
          writer.line(`[kiln] failed: ${err.message}${retryAt !== undefined ? `; another attempt from ${retryAt}` : ''}`);
          write = () => queue.fail(job.id, this.id, err, { retryAt });
          break;
        }
      }
      if (reason === null && !(outcome.err instanceof KilnError) && !(outcome.err instanceof JobCommandError)) log.warn({ err: outcome.err, job: job.id }, 'job failed');
    }
    // The log first: once followers see the job end, everything it wrote is already stored.
    await writer.close();
    for (let tries = 1; ; tries++) {
      try {
        const done = await write();
        log.info({ job: job.id, type: job.type, status: done.status, attempt: job.attempts }, 'job attempt ended');
        return;
      } catch (err) {
        if (err instanceof KilnError && (err.code === 'KILN_JOB_LEASE_LOST' || err.code === 'KILN_JOB_NOT_FOUND')) {
          log.warn({ job: job.id, err: err.message }, 'job outcome not recorded: the lease was lost');
          return;
        }
        // Until the lease runs out the job is still ours; after that the sweeper retries it anyway.
        if (tries * 1000 > this.o.leaseSeconds * 1000) {
          log.error({ err, job: job.id }, 'could not record the job outcome; its lease will expire');
          return;
        }
        await sleep(1000);
      }
    }
  }
}

/** Moves jobs with expired leases on (queued again, failed or cancelled), with a note in their logs. */
export async function reapExpiredLeases(queue: JobQueue, logs: JobLogs, log: WorkerLogger): Promise<Job[]> {
  const moved = await queue.expireLeases();
  for (const j of moved) {
    log.warn({ job: j.id, status: j.status, error: j.error?.message }, 'job lease expired');
    await logs.appendLine(j.id, `[kiln] ${j.error?.message ?? 'lease expired'}`).catch(() => undefined);
  }
  return moved;
}
