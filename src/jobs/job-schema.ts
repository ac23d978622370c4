// The job tables as Kysely sees them (created by migration 0004_jobs). JSON columns are TEXT on every
// dialect so the query code is shared; PostgreSQL returns bigint columns as strings.
import type { Generated } from 'kysely';

export interface JobsDatabase {
  jobs: {
    seq: Generated<number | string>;
    id: string;
    type: string;
    status: string;
    stage: string | null;
    progress: number | null;
    input: string;
    result: string | null;
    error: string | null;
    attempts: number;
    max_attempts: number;
    timeout_seconds: number;
    priority: number;
    run_after: string;
    worker_id: string | null;
    lease_expires_at: string | null;
    cancel_requested_at: string | null;
    created_by: string | null;
    created_at: string;
    started_at: string | null;
    finished_at: string | null;
    updated_at: string;
  };
  job_log_chunks: { job_id: string; seq: number; start_byte: number | string; size: number; sha256: string; created_at: string };
}
