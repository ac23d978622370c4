// JobQueue: the durable queue port. Adapters (SQLite, PostgreSQL) implement it on Kysely and pass
// one contract suite (contract/job-queue-contract.ts). Time comes from the queue's Clock, so every
// worker host needs a synchronised clock (NTP): leases are compared across machines.
import type { Job, JobError, JobFilter, JobLogChunk, NewJob } from './job.js';

export interface JobProgress {
  stage?: string | undefined;
  progress?: number | undefined;
}

export interface JobQueue {
  readonly dialect: string;

  /** Stores a job as `queued`, runnable at once. */
  enqueue(job: NewJob): Promise<Job>;
  get(id: string): Promise<Job | null>;
  /** Newest first. */
  list(filter: JobFilter): Promise<Job[]>;

  /**
   * Takes the next runnable job of `types` (highest priority, then oldest) for `workerId` and holds
   * it for `leaseSeconds`: `running`, one more attempt. Concurrent callers never get the same job.
   */
  claim(workerId: string, types: readonly string[], leaseSeconds: number): Promise<Job | null>;
  /**
   * Extends the lease; tells the worker whether someone asked to cancel. KILN_JOB_LEASE_LOST when the
   * job is no longer running under this worker (its lease expired and it was retried or failed).
   */
  heartbeat(id: string, workerId: string, leaseSeconds: number): Promise<{ cancelRequested: boolean }>;
  /** Records stage and/or progress; KILN_JOB_LEASE_LOST as heartbeat. */
  report(id: string, workerId: string, update: JobProgress): Promise<void>;

  /** The attempt succeeded: `succeeded` with its result. KILN_JOB_LEASE_LOST as heartbeat. */
  complete(id: string, workerId: string, result: unknown): Promise<Job>;
  /**
   * The attempt failed. With `retryAt` and attempts left the job is queued again (runnable from then);
   * otherwise it is `failed`. KILN_JOB_LEASE_LOST as heartbeat.
   */
  fail(id: string, workerId: string, error: JobError, opts?: { retryAt?: string | undefined }): Promise<Job>;
  /** The worker stopped the attempt because a cancel was requested: `cancelled`. */
  cancelled(id: string, workerId: string, error: JobError): Promise<Job>;
  /** The worker gives the job back unfinished (it is shutting down): `queued`, the attempt not counted. */
  release(id: string, workerId: string, error: JobError): Promise<Job>;

  /**
   * Cancels a queued job at once (`cancelled`); marks a running one so its worker stops it at its next
   * heartbeat. Idempotent on a cancelled job. KILN_JOB_NOT_FOUND; KILN_JOB_NOT_CANCELLABLE once finished.
   */
  requestCancel(id: string): Promise<Job>;
  /**
   * Running jobs whose lease has expired (their worker died or lost the database): queued again when
   * attempts remain, else failed; cancelled when a cancel was requested. Returns the jobs it moved.
   */
  expireLeases(): Promise<Job[]>;

  /** Appends a stored chunk to the job's log index (the next sequence number). KILN_JOB_NOT_FOUND. */
  appendLogChunk(id: string, chunk: { sha256: string; size: number }): Promise<JobLogChunk>;
  /** Chunks with `seq > afterSeq` (all when omitted), in order. */
  logChunks(id: string, opts?: { afterSeq?: number | undefined; limit?: number | undefined }): Promise<JobLogChunk[]>;

  close(): Promise<void>;
}
