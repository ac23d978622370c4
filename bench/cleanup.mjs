// Process lifecycle for the benchmark: every server, client and temp directory registers a closer;
// closers run in reverse order at the end, on failure and on Ctrl-C, so nothing outlives a run.
import { setTimeout as sleep } from 'node:timers/promises';

const closers = [];
let interrupted = false;

/** True once Ctrl-C or SIGTERM arrived: failures after that are the cleanup's doing, not the case's. */
export const wasInterrupted = () => interrupted;

/** Registers `close` (sync or async); returns a function that runs it now and unregisters it. */
export function onCleanup(name, close) {
  const entry = { name, close };
  closers.push(entry);
  return async () => {
    const i = closers.indexOf(entry);
    if (i < 0) return;
    closers.splice(i, 1);
    await close();
  };
}

export async function runCleanups() {
  while (closers.length > 0) {
    const { name, close } = closers.pop();
    try {
      await close();
    } catch (err) {
      console.error(`cleanup of ${name} failed: ${err.message}`);
    }
  }
}

/** Ctrl-C and SIGTERM stop every child and remove every temp file before exiting. */
export function cleanUpOnSignals() {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\n${signal}: stopping servers and clients, removing temp files...`);
      runCleanups().finally(() => process.exit(130));
    });
  }
}

/** Signals a child and waits for it to exit; SIGKILL after `graceMs`. */
export async function stopChild(child, { signal = 'SIGTERM', graceMs = 15000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  // The grace timer is unref'd: a child that exits in time must not keep the bench alive for graceMs.
  const done = await Promise.race([exited.then(() => true), sleep(graceMs, undefined, { ref: false }).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited;
  }
}
