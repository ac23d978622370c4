// Test probes for the job system's suites: waiting without timing assertions, and process liveness.
import { readFile } from 'node:fs/promises';

/** Polls `check` until it yields a value (not null, undefined or false); fails after a generous deadline. */
export async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Alive unless gone or a zombie (an orphan nobody has reaped yet is dead all the same). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** The pids the self-test job (and test jobs like it) print: `sleeper pid N`, `shell pid N`. */
export function pidsIn(log: string): number[] {
  return [...log.matchAll(/(?:sleeper|shell) pid (\d+)/g)].map((m) => Number(m[1]));
}
