// What the primary and its workers tell each other over the cluster IPC channel.
import type { BootEventWriteOptions, Change, NewBootEvent } from '../../core/ports.js';

/** Set by the primary on each worker: 1..N. Worker 1 also runs the singletons (PXE, sweeps). */
export const WORKER_INDEX_ENV = 'KILN_CLUSTER_WORKER';

export type WorkerMessage =
  | { kind: 'kiln-ready'; adminUrl: string; bootUrl: string }
  | { kind: 'kiln-failed'; error: string }
  | { kind: 'kiln-changes'; changes: Change[] }
  | { kind: 'kiln-boot-events'; id: number; events: NewBootEvent[]; opts: BootEventWriteOptions };

export type PrimaryMessage =
  | { kind: 'kiln-changes'; changes: Change[] }
  | { kind: 'kiln-shutdown' }
  /** The batch `id` is written (error null) or failed. */
  | { kind: 'kiln-boot-events-written'; id: number; error: string | null };
