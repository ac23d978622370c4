// Job types: what a kind of job takes (a TypeBox schema), how it runs, and what it may do while it
// runs (the JobContext). The registry of every type Kiln knows is `kilnJobTypes` in job-registry.ts.
import type { Static, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { KilnError } from '../core/kiln-error.js';
import type { Job, JobError } from './job.js';
import type { JobLog } from './job-logs.js';
import type { RunOptions, RunResult } from './process-runner.js';

/** Why a job's signal aborted. */
export type JobStopReason =
  | { kind: 'cancel'; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'lease-lost'; message: string }
  | { kind: 'shutdown'; message: string };

export interface JobRunOptions extends Omit<RunOptions, 'signal' | 'onOutput'> {
  /** Accept these exit codes (default [0]); any other makes `run` throw JobCommandError. */
  okExitCodes?: readonly number[];
  /** Keep the command's output out of the job log. */
  quiet?: boolean;
}

export interface JobContext<I> {
  /** The job as claimed for this attempt (`attempts` counts this one). */
  readonly job: Readonly<Job>;
  /** The input, validated against the type's schema, defaults applied. */
  readonly input: I;
  readonly log: JobLog;
  /**
   * Aborts on cancel, timeout, shutdown, or when the worker lost the job; `signal.reason` is a
   * JobStopReason. Long waits must listen to it; commands started with `run` stop by themselves.
   */
  readonly signal: AbortSignal;
  /** Private to this attempt, created empty, removed afterwards whatever the outcome. */
  readonly workDir: string;
  /** Names the step the job is at (recorded at once, and in the log). */
  stage(name: string): void;
  /** 0..100; recorded at most about once a second. */
  progress(percent: number): void;
  /**
   * Runs a command (no shell) in the work directory by default, its output in the job log, its whole
   * process tree stopped when the signal aborts. Throws JobCommandError on an unexpected exit.
   */
  run(command: string, args: readonly string[], opts?: JobRunOptions): Promise<RunResult>;
}

export interface JobType<N extends string = string, S extends TSchema = TSchema, R = unknown> {
  readonly type: N;
  readonly description: string;
  readonly inputSchema: S;
  /** Operators may create it through POST /api/v1/jobs; false for jobs Kiln starts itself. */
  readonly apiCreatable: boolean;
  /** Defaults for jobs of this type (a job may set its own). */
  readonly timeoutSeconds: number;
  readonly maxAttempts: number;
  /** Failures worth another attempt (a mirror that did not answer); none by default. */
  retryable?(err: unknown): boolean;
  /** Delay before the second attempt; doubled for each further one (default 30). */
  readonly retryDelaySeconds?: number;
  /** Does the work; the value it resolves to is the job's result (JSON). */
  run(ctx: JobContext<Static<S>>): Promise<R>;
}

export type AnyJobType = JobType<string, TSchema, unknown>;

/** A registry: job types by name. */
export type JobTypes = Readonly<Record<string, AnyJobType>>;

/** Keeps the literal type name, the schema and the result type for the registry. */
export function defineJobType<const N extends string, S extends TSchema, R>(t: JobType<N, S, R>): JobType<N, S, R> {
  return t;
}

/** Builds a registry from a list; each type under its own name, once. */
export function jobRegistry<const T extends readonly AnyJobType[]>(types: T): { readonly [J in T[number] as J['type']]: J } {
  const out: Record<string, AnyJobType> = {};
  for (const t of types) {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(t.type)) throw new Error(`job type name ${JSON.stringify(t.type)}: want lower-case letters, digits and -`);
    if (out[t.type] !== undefined) throw new Error(`job type ${t.type} is registered twice`);
    out[t.type] = t;
  }
  return out as { readonly [J in T[number] as J['type']]: J };
}

/** A command exited in a way the job did not accept. */
export class JobCommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super(result.signal !== null ? `${command} was ended by ${result.signal}` : `${command} exited with status ${result.exitCode}`);
    this.name = 'JobCommandError';
  }
}

/** Throw from `run` to ask for another attempt whatever the type's `retryable` says. */
export class RetryableJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableJobError';
  }
}

/** Validates stored input against the type's schema, with its defaults applied. */
export function checkJobInput(type: AnyJobType, input: unknown): unknown {
  const value = Value.Default(type.inputSchema, Value.Clone(input ?? {}));
  if (Value.Check(type.inputSchema, value)) return value;
  const problems = [...Value.Errors(type.inputSchema, value)].filter((e) => e.keyword !== 'boolean').map((e) => `${e.instancePath || '/'} ${e.message}`);
  throw new KilnError('KILN_JOB_INPUT_INVALID', `input for ${type.type}: ${problems.join('; ')}`, { problems });
}

/** A failure as the job records it: a KilnError keeps its code, anything else is KILN_JOB_FAILED. */
export function jobErrorOf(err: unknown): JobError {
  if (err instanceof KilnError) return { code: err.code, message: err.message };
  return { code: 'KILN_JOB_FAILED', message: err instanceof Error ? err.message : String(err) };
}

