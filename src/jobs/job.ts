// Jobs as plain data: asynchronous work with a type, a status, a stage, progress, a result and a log.

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/** Statuses a job never leaves. */
export const FINISHED_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

/** Why a job (or its last attempt) did not succeed; `code` is a catalogue code (docs/errors.md). */
export interface JobError {
  code: string;
  message: string;
}

export interface Job {
  id: string;
  type: string;
  status: JobStatus;
  /** Free text per job type (`fetching`, `building_image`...) so compat APIs can map their own statuses. */
  stage: string | null;
  /** 0..100 when the job type reports it. */
  progress: number | null;
  input: unknown;
  result: unknown;
  /** Set when the job failed or was cancelled, and while queued again after a failed attempt. */
  error: JobError | null;
  /** Attempts started so far (the running one included). */
  attempts: number;
  maxAttempts: number;
  timeoutSeconds: number;
  /** Higher runs first; equal priorities run oldest first. */
  priority: number;
  /** Not claimed before this time (a retry's back-off). */
  runAfter: string;
  /** The worker of the running attempt, or of the last one once finished; null while queued. */
  workerId: string | null;
  /** While running: when the job goes back to the queue (or fails) unless its worker renews the lease. */
  leaseExpiresAt: string | null;
  cancelRequestedAt: string | null;
  createdBy: string | null;
  createdAt: string;
  /** Start of the latest attempt. */
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
}

export interface NewJob {
  id: string;
  type: string;
  input: unknown;
  maxAttempts: number;
  timeoutSeconds: number;
  priority: number;
  createdBy: string | null;
}

export interface JobFilter {
  status?: readonly JobStatus[] | undefined;
  type?: string | undefined;
  /** Opaque cursor: the id of the last job of the previous page. */
  after?: string | undefined;
  limit: number;
}

/** One stored piece of a job's log: a blob, and where its bytes sit in the whole log. */
export interface JobLogChunk {
  seq: number;
  start: number;
  size: number;
  sha256: string;
  createdAt: string;
}

export function isFinished(status: JobStatus): boolean {
  return FINISHED_STATUSES.includes(status);
}
