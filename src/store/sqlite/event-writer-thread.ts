// Boot events written by a thread with its own connection to the SQLite file, which also runs the
// file's checkpoints. On the event loop, a batch's transaction and the checkpoints it triggered were
// about a quarter of a script request's CPU, and a checkpoint's fsync stalled every request behind it
// (profiled: 55 µs per event with checkpoints, 30 µs without, on 100,000 machines).
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { BootEventWriteOptions, NewBootEvent } from '../../core/ports.js';
import { bootEventParams, INSERT_BOOT_EVENT, TOUCH_MACHINE } from './boot-event-sql.js';
import { DEFAULT_CACHE_MIB, sqlitePragmas } from './sqlite-pragmas.js';

export interface EventWriterOptions {
  path: string;
  /** How often the thread checkpoints the WAL into the database file. */
  checkpointIntervalMs?: number;
  /** How long a batch waits for another connection's write transaction (off the event loop, so long). */
  busyTimeoutMs?: number;
  /** The thread's page cache: every batch descends the machines table and the events index at random. */
  cacheMiB?: number;
}

type Reply = { kind: 'ready' } | { kind: 'written'; id: number; error?: { message: string; code?: string } } | { kind: 'checkpoint-failed'; message: string };

// An eval'd CommonJS worker: it runs the same from src (tests) and dist, and gets the driver's
// resolved path, so nothing depends on the working directory.
const SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const Database = require(w.driver);
const db = new Database(w.path);
for (const p of w.pragmas) db.pragma(p);
const insert = db.prepare(w.insertSql);
const touch = db.prepare(w.touchSql);
const write = db.transaction((inserts, touches) => {
  for (const p of inserts) insert.run(p);
  for (const p of touches) touch.run(p);
});
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ kind: 'checkpoint-failed', message: String(err && err.message) });
  }
};
const timer = setInterval(checkpoint, w.checkpointIntervalMs);
parentPort.on('message', (m) => {
  if (m.kind === 'write') {
    try {
      write(m.inserts, m.touches);
      parentPort.postMessage({ kind: 'written', id: m.id });
    } catch (err) {
      parentPort.postMessage({ kind: 'written', id: m.id, error: { message: String(err && err.message), code: err && err.code } });
    }
  } else if (m.kind === 'close') {
    clearInterval(timer);
    checkpoint();
    db.close();
    parentPort.close();
  }
});
parentPort.postMessage({ kind: 'ready' });
`;

export class SqliteEventWriter {
  private worker: Worker | null = null;
  private starting: Promise<Worker> | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private closed = false;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly opts: Required<EventWriterOptions>,
    private readonly onCheckpointError: (message: string) => void,
  ) {}

  /** Starts the thread; rejects when it cannot open the database. */
  static async open(opts: EventWriterOptions, onCheckpointError: (message: string) => void = () => undefined): Promise<SqliteEventWriter> {
    const w = new SqliteEventWriter({ checkpointIntervalMs: 1000, busyTimeoutMs: 30_000, cacheMiB: DEFAULT_CACHE_MIB, ...opts }, onCheckpointError);
    await w.thread();
    return w;
  }

  /** Writes one batch in one transaction; resolves once it is committed. */
  recordBootEvents(events: readonly NewBootEvent[], opts: BootEventWriteOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the boot event writer is closed'));
    if (events.length === 0) return Promise.resolve();
    const params = bootEventParams(events, opts);
    // Posted at once while the thread runs: a close() that follows must reach it after this batch.
    const worker = this.worker;
    if (worker !== null) return this.send(worker, params);
    return this.thread().then((w) => this.send(w, params));
  }

  private send(worker: Worker, params: ReturnType<typeof bootEventParams>): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ kind: 'write', id, ...params });
    });
  }

  /** Writes what was sent, checkpoints, and ends the thread. Idempotent. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const worker = this.worker ?? (this.starting === null ? null : await this.starting.catch(() => null));
    if (worker === null) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    // Node delivers a thread's last messages before its 'exit': every reply arrives first.
    worker.postMessage({ kind: 'close' });
    await exited;
  }

  /** The running thread, started again after one died (the next batch must not be lost with it). */
  private thread(): Promise<Worker> {
    if (this.worker !== null) return Promise.resolve(this.worker);
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(SOURCE, {
        eval: true,
        workerData: {
          driver: createRequire(import.meta.url).resolve('better-sqlite3'),
          path: this.opts.path,
          insertSql: INSERT_BOOT_EVENT,
          touchSql: TOUCH_MACHINE,
          checkpointIntervalMs: this.opts.checkpointIntervalMs,
          // The server's settings, except: never a checkpoint on commit (this thread's timer does them).
          pragmas: sqlitePragmas({ cacheMiB: this.opts.cacheMiB, busyTimeoutMs: this.opts.busyTimeoutMs, autocheckpointPages: 0 }),
        },
      });
      // A server that forgot to close must still be able to exit.
      worker.unref();
      let ready = false;
      worker.on('message', (m: Reply) => {
        if (m.kind === 'ready') {
          ready = true;
          this.worker = worker;
          this.starting = null;
          resolve(worker);
        } else if (m.kind === 'written') {
          const w = this.waiting.get(m.id);
          this.waiting.delete(m.id);
          if (m.error === undefined) w?.resolve();
          else w?.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
        } else {
          this.onCheckpointError(m.message);
        }
      });
      let gone = false;
      // Once per thread: 'error' is followed by 'exit', by which time a new thread may hold batches.
      const stopped = (err: Error) => {
        if (gone) return;
        gone = true;
        if (this.worker === worker) this.worker = null;
        if (!ready) {
          this.starting = null;
          reject(err);
        }
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      };
      worker.once('error', (err) => stopped(new Error(`the boot event writer thread failed: ${err.message}`)));
      worker.once('exit', (code) => stopped(new Error(`the boot event writer thread exited (code ${code})`)));
    });
    return this.starting;
  }
}
