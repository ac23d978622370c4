// The worker side of `kiln serve --workers N`: relays this worker's store changes to the primary
// (which tells the other workers) and applies theirs, so every worker's caches stay exact.
import type { BootEventWriteOptions, Change, NewBootEvent, Store } from '../../core/ports.js';
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

/**
 * Boot events go to the primary, which writes them for every worker (see ClusterOptions.events).
 * A batch resolves once written; it fails if the primary reports an error or the channel closes.
 */
export function eventsViaPrimary(): Pick<Store, 'recordBootEvents'> {
  let nextId = 1;
  const waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (why: string) => {
    for (const w of waiting.values()) w.reject(new Error(why));
    waiting.clear();
  };
  process.on('message', (m: PrimaryMessage) => {
    if (m.kind !== 'kiln-boot-events-written') return;
    const w = waiting.get(m.id);
    if (w === undefined) return;
    waiting.delete(m.id);
    if (m.error === null) w.resolve();
    else w.reject(new Error(`the primary could not write boot events: ${m.error}`));
  });
  process.on('disconnect', () => failAll('the cluster primary went away before boot events were written'));
  return {
    recordBootEvents(events: readonly NewBootEvent[], opts: BootEventWriteOptions = {}): Promise<void> {
      if (events.length === 0) return Promise.resolve();
      if (process.send === undefined || !process.connected) return Promise.reject(new Error('not connected to a cluster primary'));
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        sendToPrimary({ kind: 'kiln-boot-events', id, events: [...events], opts });
      });
    },
  };
}
