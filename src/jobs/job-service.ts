// JobService: what the edges (API, CLI through it, compat layers, builders) do with jobs: start one of
// a registered type with valid input, look, read or follow its log, cancel it.
import type { Readable } from 'node:stream';
import type { Static, TSchema } from 'typebox';
import type { BlobStore, Clock, IdSource } from '../core/ports.js';
import { KilnError } from '../core/kiln-error.js';
import type { Job, JobFilter } from './job.js';
import { JobLogs } from './job-logs.js';
import type { JobQueue } from './job-queue.js';
import { checkJobInput, type JobType, type JobTypes } from './job-types.js';

export interface StartOptions {
  /** Who asked (a token or user name; a service's own name for jobs Kiln starts itself). */
  actor: string | null;
  timeoutSeconds?: number | undefined;
  maxAttempts?: number | undefined;
  priority?: number | undefined;
}

export interface JobTypeInfo {
  type: string;
  description: string;
  apiCreatable: boolean;
  timeoutSeconds: number;
  maxAttempts: number;
  inputSchema: unknown;
}

/** The longest timeout a job may have: timers beyond ~24 days overflow, and a week is plenty. */
export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

export class JobService {
  private readonly listeners = new Set<(job: Job) => void>();

  constructor(
    private readonly queue: JobQueue,
    private readonly types: JobTypes,
    private readonly logs: JobLogs,
    private readonly ids: IdSource,
    readonly clock: Clock,
  ) {}

  /**
   * For processes that run no job queue (the OpenAPI document generator): every call answers
   * KILN_UNAVAILABLE, without a database behind it.
   */
  static unavailable(ids: IdSource, clock: Clock): JobService {
    const refuse = new Proxy({} as JobQueue, {
      get: (_target, prop) => (prop === 'dialect' ? 'none' : () => Promise.reject(new KilnError('KILN_UNAVAILABLE', 'this Kiln process runs no job queue'))),
    });
    return new JobService(refuse, {}, new JobLogs(refuse, refuse as unknown as BlobStore), ids, clock);
  }

  /** Called after each job this service enqueues (an in-process worker wakes up). */
  onEnqueued(listener: (job: Job) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listTypes(): JobTypeInfo[] {
    return Object.values(this.types)
      .map((t) => ({ type: t.type, description: t.description, apiCreatable: t.apiCreatable, timeoutSeconds: t.timeoutSeconds, maxAttempts: t.maxAttempts, inputSchema: t.inputSchema }))
      .sort((a, b) => a.type.localeCompare(b.type));
  }

  /** Starts a job of a type Kiln's own code holds (builders, compat layers): the input is typed. */
  async start<N extends string, S extends TSchema, R>(type: JobType<N, S, R>, input: Static<S>, opts: StartOptions): Promise<Job> {
    if (this.types[type.type] !== type) throw new KilnError('KILN_JOB_TYPE_UNKNOWN', `job type ${type.type} is not registered`);
    return this.enqueue(type.type, input, opts);
  }

  /** Starts a job as a client asked: only types open to the API, input checked against the type's schema. */
  async create(typeName: string, input: unknown, opts: StartOptions): Promise<Job> {
    const type = this.types[typeName];
    if (type === undefined) throw new KilnError('KILN_JOB_TYPE_UNKNOWN', `no job type ${JSON.stringify(typeName)} (known: ${Object.keys(this.types).join(', ')})`);
    if (!type.apiCreatable) throw new KilnError('KILN_JOB_TYPE_NOT_CREATABLE', `jobs of type ${typeName} are started by Kiln itself`);
    return this.enqueue(typeName, input, opts);
  }

  private async enqueue(typeName: string, input: unknown, opts: StartOptions): Promise<Job> {
    const type = this.types[typeName]!;
    const checked = checkJobInput(type, input);
    const timeoutSeconds = opts.timeoutSeconds ?? type.timeoutSeconds;
    const maxAttempts = opts.maxAttempts ?? type.maxAttempts;
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > MAX_TIMEOUT_SECONDS) throw new KilnError('KILN_REQUEST_INVALID', `timeoutSeconds must be 1..${MAX_TIMEOUT_SECONDS}`);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new KilnError('KILN_REQUEST_INVALID', 'maxAttempts must be 1..100');
    const job = await this.queue.enqueue({
      id: this.ids.id(), type: typeName, input: checked, timeoutSeconds, maxAttempts, priority: opts.priority ?? 0, createdBy: opts.actor,
    });
    for (const l of this.listeners) l(job);
    return job;
  }

  async get(id: string): Promise<Job> {
    const job = await this.queue.get(id);
    if (job === null) throw new KilnError('KILN_JOB_NOT_FOUND', `no job ${id}`);
    return job;
  }

  list(filter: JobFilter): Promise<Job[]> {
    return this.queue.list(filter);
  }

  /** Queued: cancelled at once. Running: its worker stops it (processes killed, directory removed) within a heartbeat. */
  async cancel(id: string): Promise<Job> {
    return this.queue.requestCancel(id);
  }

  readLog(id: string): Promise<Readable> {
    return this.logs.read(id);
  }

  followLog(id: string, signal: AbortSignal): Promise<Readable> {
    return this.logs.follow(id, signal);
  }
}
