// How every Kiln connection to a SQLite file is set up: the server's, the job queue's and the boot
// event writer thread's, from one list, so they cannot drift apart.

export const DEFAULT_CACHE_MIB = 64;

/**
 * WAL pages after which a connection checkpoints on commit. A server's writer thread checkpoints every
 * second, well before this; it is the safety net for processes without one. Far above SQLite's 1,000:
 * the pages a storm rewrites again and again are copied back once, not once per 4 MiB of WAL
 * (measured: 37 against 54 µs per event at 16,000 pages, on 100,000 machines).
 */
const AUTOCHECKPOINT_PAGES = 20_000;

/** The WAL file is cut back to this after a checkpoint lets it restart (a storm can grow it to tens of MiB). */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

export interface PragmaOptions {
  cacheMiB?: number;
  busyTimeoutMs?: number;
  /** 0: this connection never checkpoints on commit (the writer thread, which checkpoints on a timer). */
  autocheckpointPages?: number;
}

export function sqlitePragmas(opts: PragmaOptions = {}): string[] {
  return [
    'journal_mode = WAL',
    // NORMAL in WAL mode: durable on checkpoint, a power cut may lose the last transactions but never corrupts.
    'synchronous = NORMAL',
    'foreign_keys = ON',
    `busy_timeout = ${opts.busyTimeoutMs ?? 5000}`,
    // LIKE (the machine label filter) must be case-sensitive, as on PostgreSQL: label values are.
    'case_sensitive_like = ON',
    `cache_size = ${-1024 * (opts.cacheMiB ?? DEFAULT_CACHE_MIB)}`,
    `wal_autocheckpoint = ${opts.autocheckpointPages ?? AUTOCHECKPOINT_PAGES}`,
    `journal_size_limit = ${JOURNAL_SIZE_LIMIT}`,
  ];
}
