// The worker side of `kiln serve --workers N`: relays this worker's store changes to the primary
// (which tells the other workers) and applies theirs, so every worker's caches stay exact.
import type { Change } from '../../core/ports.js';
import type { KyselyStore } from '../../store/kysely-store.js';
import { WORKER_INDEX_ENV, type PrimaryMessage, type WorkerMessage } from './cluster-messages.js';

/** 1..N inside a cluster worker, else null (a single-process Kiln). */
export function clusterWorkerIndex(env: Record<string, string | undefined>): number | null {
  const v = env[WORKER_INDEX_ENV];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}

/** `sent` runs once the message is handed to the IPC channel (or at once outside a cluster). */
export function sendToPrimary(msg: WorkerMessage, sent?: () => void): void {
  if (process.send === undefined) sent?.();
  else process.send(msg, undefined, {}, () => sent?.());
}

/**
 * Relays changes both ways. On PostgreSQL every worker already hears every commit through NOTIFY,
 * so only SQLite needs this; a relayed change is applied before the next request is read.
 */
export function linkStoreChanges(store: KyselyStore): () => void {
  let applying = false;
  let pending: Change[] = [];
  const unsubscribe = store.onChange((c) => {
    if (applying) return;
    if (pending.length === 0) {
      // One message per tick: a transaction's changes arrive together.
      queueMicrotask(() => {
        const changes = pending;
        pending = [];
        sendToPrimary({ kind: 'kiln-changes', changes });
      });
    }
    pending.push(c);
  });
  const onMessage = (m: PrimaryMessage) => {
    if (m.kind !== 'kiln-changes') return;
    applying = true;
    try {
      store.publishExternal(m.changes);
    } finally {
      applying = false;
    }
  };
  process.on('message', onMessage);
  return () => {
    unsubscribe();
    process.off('message', onMessage);
  };
}

/** Calls `stop` when the primary asks this worker to shut down (SIGTERM/SIGINT reach the primary). */
export function onPrimaryShutdown(stop: () => void): void {
  process.on('message', (m: PrimaryMessage) => {
    if (m.kind === 'kiln-shutdown') stop();
  });
}
