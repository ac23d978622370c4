// Work directories: one private directory per job attempt under the worker's root, removed after the
// attempt whatever happened, and swept when a worker died before it could remove its own (with the
// processes that still run for it, found by the KILN_JOB_DIR variable every job command carries).
import { hostname } from 'node:os';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { ProcessRunner } from './process-runner.js';

export const JOB_DIR_ENV = 'KILN_JOB_DIR';
const DIR_NAME = /^(.+)\.(\d+)$/;

export function workDirOf(root: string, jobId: string, attempt: number): string {
  return join(resolve(root), `${jobId}.${attempt}`);
}

export function parseWorkDirName(name: string): { jobId: string; attempt: number } | null {
  const m = DIR_NAME.exec(name);
  return m === null ? null : { jobId: m[1]!, attempt: Number(m[2]) };
}

/** Mount points at or below `dir` (Linux), deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const root = resolve(dir);
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescape)
    .filter((p) => p === root || p.startsWith(root + sep))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes a work directory. A build that mounted something inside (proc in a chroot) and died
 * before unmounting must not make this delete through the mount: mounts are detached first, and
 * when one stays the directory is left alone (and the error says why).
 */
export async function removeWorkDir(dir: string, runner: ProcessRunner): Promise<void> {
  for (const m of await mountsUnder(dir)) await runner.run('umount', ['--lazy', m]).catch(() => undefined);
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`not removing ${dir}: still mounted at ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Kills processes that still run for a work directory (Linux); returns their pids. */
export async function killStrays(dir: string): Promise<number[]> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const marker = `${JOB_DIR_ENV}=${resolve(dir)}`;
  const killed: number[] = [];
  for (const p of pids) {
    const pid = Number(p);
    if (pid === process.pid) continue;
    const env = await readFile(`/proc/${p}/environ`).catch(() => null);
    if (env === null || !env.toString('utf8').split('\0').includes(marker)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}

/** True when `workerId` names a worker process on this host that no longer exists. */
export function isDeadLocalWorker(workerId: string | null): boolean {
  if (workerId === null) return false;
  const [host, pidText] = workerId.split('/');
  if (host !== hostname() || pidText === undefined || !/^\d+$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as { code?: string }).code === 'ESRCH';
  }
}

/**
 * Removes the work directories under `root` whose attempt is not live any more (its job ended,
 * moved on to another attempt, or its worker here died), after killing what still runs in them.
 */
export async function sweepWorkDirs(root: string, isLive: (jobId: string, attempt: number) => Promise<boolean>, runner: ProcessRunner): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const parsed = parseWorkDirName(name);
    if (parsed === null || (await isLive(parsed.jobId, parsed.attempt))) continue;
    const dir = join(resolve(root), name);
    await killStrays(dir);
    await removeWorkDir(dir, runner);
    removed.push(dir);
  }
  return removed;
}
