// Work directories on the real filesystem, with real processes and (where this host allows) a real
// bind mount: a sweep kills what runs for a dead attempt and never deletes through a mount.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, until } from './contract/probes.js';
import { SpawnProcessRunner } from './process-runner.js';
import { isDeadLocalWorker, JOB_DIR_ENV, mountsUnder, parseWorkDirName, removeWorkDir, sweepWorkDirs, workDirOf } from './work-dirs.js';

const runner = new SpawnProcessRunner();
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'kiln-workdirs-'));
  dirs.push(d);
  return d;
}

describe('work directories', () => {
  it('are named after the job and the attempt', () => {
    expect(workDirOf('/var/kiln/work', 'j-1', 3)).toBe('/var/kiln/work/j-1.3');
    expect(parseWorkDirName('j-1.3')).toEqual({ jobId: 'j-1', attempt: 3 });
    expect(parseWorkDirName('lost+found')).toBeNull();
  });

  it('a sweep removes dead attempts with the processes still running for them, and keeps live ones', async () => {
    const root = await temp();
    const live = workDirOf(root, 'live', 1);
    const dead = workDirOf(root, 'dead', 2);
    for (const d of [live, dead, join(root, 'not-a-job')]) await mkdir(join(d, 'sub'), { recursive: true });
    const stray = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, [JOB_DIR_ENV]: dead } });
    const bystander = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, [JOB_DIR_ENV]: live } });
    try {
      await until('the strays to start', async () => (await isAlive(stray.pid!)) && (await isAlive(bystander.pid!)));
      const removed = await sweepWorkDirs(root, async (jobId) => jobId === 'live', runner);
      expect(removed).toEqual([dead]);
      await until('the stray to die', async () => !(await isAlive(stray.pid!)));
      expect(await isAlive(bystander.pid!)).toBe(true);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(join(root, 'not-a-job'))).toBe(true);
    } finally {
      stray.kill('SIGKILL');
      bystander.kill('SIGKILL');
    }
  });

  it('recognises a dead worker process on this host only', () => {
    const gone = spawnSync('true').pid;
    expect(isDeadLocalWorker(`${hostname()}/${gone}/abc`)).toBe(true);
    expect(isDeadLocalWorker(`${hostname()}/${process.pid}/abc`)).toBe(false);
    expect(isDeadLocalWorker(`elsewhere.example/${gone}/abc`)).toBe(false);
    expect(isDeadLocalWorker(null)).toBe(false);
  });

  it('removing a directory with a mount inside detaches the mount first and never deletes through it', async (ctx) => {
    const host = await temp();
    await writeFile(join(host, 'precious'), 'keep me');
    const work = join(await temp(), 'job.1');
    await mkdir(join(work, 'rootfs', 'proc'), { recursive: true });
    const mount = spawnSync('mount', ['--bind', host, join(work, 'rootfs', 'proc')]);
    if (mount.status !== 0) return ctx.skip(`cannot bind-mount here: ${String(mount.stderr ?? mount.error)}`);
    expect(await mountsUnder(work)).toEqual([join(work, 'rootfs', 'proc')]);
    await removeWorkDir(work, runner);
    expect(existsSync(work)).toBe(false);
    expect(await readFile(join(host, 'precious'), 'utf8')).toBe('keep me');
  });
});
