// `kiln serve --workers N`: the primary process forks N workers that share the listening sockets
// (node:cluster, each worker accepting for itself), relays each worker's store changes to the others (their caches stay exact on
// SQLite; PostgreSQL replicas hear each other through NOTIFY anyway), writes the workers' boot
// events on SQLite, restarts a worker that dies, and stops them all gracefully on SIGTERM/SIGINT.
import cluster, { type Worker } from 'node:cluster';
import type { FastifyBaseLogger } from 'fastify';
import type { Change, Store } from '../../core/ports.js';
import { WORKER_INDEX_ENV, type PrimaryMessage, type WorkerMessage } from './cluster-messages.js';

export interface RunningCluster {
  /** Resolves with the workers' listener URLs once every worker listens. */
  ready: Promise<{ adminUrl: string; bootUrl: string }>;
  /** Asks every worker to stop; resolves with the exit code (0 when all stopped cleanly). */
  stop(): Promise<number>;
  /** Resolves when the cluster is down (stopped, or given up after repeated crashes). */
  done: Promise<number>;
}

// A worker that keeps dying is a configuration or environment problem, not bad luck: give up.
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

export interface ClusterOptions {
  /**
   * Writes every worker's boot events (SQLite). Two connections writing one SQLite file reset each
   * other's page cache on every commit: with two workers each boot request cost 3.4 page reads and
   * 3.9 page writes, against 0.1 and 1.2 with one writer (strace), so one process writes them all.
   */
  events?: Pick<Store, 'recordBootEvents'>;
}

export function startCluster(workers: number, log: FastifyBaseLogger, opts: ClusterOptions = {}): RunningCluster {
  const byIndex = new Map<number, Worker>();
  const restarts: number[] = [];
  let stopping = false;
  let exitCode = 0;
  let resolveReady!: (v: { adminUrl: string; bootUrl: string }) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<{ adminUrl: string; bootUrl: string }>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  // Nobody may be waiting for `ready` when a start fails after a stop; don't crash on it.
  ready.catch(() => undefined);
  const listening = new Set<number>();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((res) => (resolveDone = res));

  const broadcast = (from: number, changes: Change[]) => {
    const msg: PrimaryMessage = { kind: 'kiln-changes', changes };
    for (const [i, w] of byIndex) if (i !== from && w.isConnected()) w.send(msg);
  };

  // One batch at a time, in arrival order, so each worker's batches stay in order.
  let writing: Promise<void> = Promise.resolve();
  const writeEvents = (w: Worker, m: Extract<WorkerMessage, { kind: 'kiln-boot-events' }>) => {
    const events = opts.events;
    writing = writing.then(async () => {
      let error: string | null = null;
      try {
        if (events === undefined) throw new Error('this cluster does not write boot events for its workers');
        await events.recordBootEvents(m.events, m.opts);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      const reply: PrimaryMessage = { kind: 'kiln-boot-events-written', id: m.id, error };
      if (w.isConnected()) w.send(reply);
    });
  };

  const fork = (index: number) => {
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    byIndex.set(index, w);
    w.on('message', (m: WorkerMessage) => {
      if (m.kind === 'kiln-changes') broadcast(index, m.changes);
      else if (m.kind === 'kiln-boot-events') writeEvents(w, m);
      else if (m.kind === 'kiln-ready') {
        listening.add(index);
        if (listening.size === workers) resolveReady({ adminUrl: m.adminUrl, bootUrl: m.bootUrl });
      } else if (m.kind === 'kiln-failed') {
        log.error({ clusterWorker: index, error: m.error }, 'worker could not start');
      }
    });
    w.on('exit', (code, signal) => {
      if (byIndex.get(index) === w) byIndex.delete(index);
      if (stopping) {
        if (code !== 0) exitCode = 1;
        if (byIndex.size === 0) resolveDone(exitCode);
        return;
      }
      // The others missed whatever this worker had not yet relayed: they start their caches afresh.
      broadcast(index, [{ entity: 'all', key: '' }]);
      const now = Date.now();
      restarts.push(now);
      while (restarts.length > 0 && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
      if (!listening.has(index) || restarts.length > MAX_RESTARTS) {
        log.error({ clusterWorker: index, code, signal }, listening.has(index) ? 'workers keep dying; stopping Kiln' : 'a worker failed to start; stopping Kiln');
        rejectReady(new Error(`worker ${index} exited with ${signal ?? code} before it was ready`));
        exitCode = 1;
        void stop();
        return;
      }
      log.warn({ clusterWorker: index, code, signal }, 'worker died; starting a new one');
      fork(index);
    });
  };

  const stop = async (): Promise<number> => {
    if (!stopping) {
      stopping = true;
      const msg: PrimaryMessage = { kind: 'kiln-shutdown' };
      for (const w of byIndex.values()) if (w.isConnected()) w.send(msg);
      if (byIndex.size === 0) resolveDone(exitCode);
    }
    return done;
  };

  // Workers accept connections themselves (the kernel hands each to a worker that is waiting in
  // accept) instead of node:cluster's round robin, where the primary passes one connection at a time
  // and waits for the worker's reply: under a storm a busy worker's reply took a loop turn, and the
  // 500th connection of a burst waited 23 s (measured) for a tiny /boot.ipxe.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 1; i <= workers; i++) fork(i);
  return { ready, stop, done };
}
