// Types of pg-cluster.mjs.

/** The newest installed PostgreSQL's bin directory (Debian layout), or null when there is none. */
export function findPgBin(): string | null;

/** Why a private PostgreSQL cannot run here, or null when it can. */
export function pgUnavailableReason(): string | null;

export interface PgCluster {
  readonly port: number;
  /** The cluster's data directory (its postmaster.pid names the server process). */
  readonly dataDir: string;
  /** Connection URL for `database` (default: the maintenance database `postgres`). */
  url(database?: string): string;
  /** Creates an empty database with a unique name and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export function startPgCluster(): Promise<PgCluster>;
