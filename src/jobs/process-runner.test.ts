// SpawnProcessRunner on real process trees: what it stops must be gone, found dead in /proc.
import { describe, expect, it } from 'vitest';
import { SpawnProcessRunner } from './process-runner.js';
import { isAlive } from './contract/probes.js';

const runner = new SpawnProcessRunner();

function collect() {
  let text = '';
  return { onOutput: (c: Buffer) => (text += c.toString()), text: () => text };
}

async function pidsOnce(out: () => string, n: number): Promise<number[]> {
  for (let i = 0; i < 400; i++) {
    const pids = [...out().matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    if (pids.length >= n) return pids;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${n} pids in: ${out()}`);
}

describe('SpawnProcessRunner', () => {
  it('returns the exit status and the output of both streams', async () => {
    const out = collect();
    const r = await runner.run('sh', ['-c', 'echo out; echo err >&2; exit 3'], { onOutput: out.onOutput });
    expect(r).toMatchObject({ exitCode: 3, signal: null, aborted: false });
    expect(out.text()).toContain('out\n');
    expect(out.text()).toContain('err\n');
  });

  it('passes stdin, cwd and environment', async () => {
    const out = collect();
    const r = await runner.run('sh', ['-c', 'cat; pwd; echo "$KILN_TEST_VALUE"'], { stdin: 'from stdin\n', cwd: '/tmp', env: { KILN_TEST_VALUE: 'v1' }, onOutput: out.onOutput });
    expect(r.exitCode).toBe(0);
    expect(out.text()).toBe('from stdin\n/tmp\nv1\n');
  });

  it('abort stops the whole process group, not only the command', async () => {
    const out = collect();
    const stop = new AbortController();
    const running = runner.run('sh', ['-c', 'sleep 60 & echo "pid $!"; sleep 60 & echo "pid $!"; echo "pid $$"; wait'], { signal: stop.signal, onOutput: out.onOutput });
    const pids = await pidsOnce(out.text, 3);
    for (const pid of pids) expect(await isAlive(pid)).toBe(true);
    stop.abort();
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(r.pid).toBe(pids[2]);
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
  });

  it('a group that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const out = collect();
    const stop = new AbortController();
    const running = runner.run('sh', ['-c', 'trap "" TERM; sleep 60 & echo "pid $!"; echo "pid $$"; wait; wait'], { signal: stop.signal, onOutput: out.onOutput, killGraceMs: 300 });
    const pids = await pidsOnce(out.text, 2);
    stop.abort();
    const r = await running;
    expect(r).toMatchObject({ aborted: true, signal: 'SIGKILL' });
    for (const pid of pids) expect(await isAlive(pid)).toBe(false);
  });

  it('what a command leaves running in its group ends with it', async () => {
    const out = collect();
    const r = await runner.run('sh', ['-c', 'sleep 60 & echo "pid $!"'], { onOutput: out.onOutput });
    expect(r).toMatchObject({ exitCode: 0, aborted: false });
    const [pid] = await pidsOnce(out.text, 1);
    expect(await isAlive(pid!)).toBe(false);
  });

  it('rejects a command that cannot start, and does not start once aborted', async () => {
    await expect(runner.run('/nonexistent/kiln-command', [])).rejects.toThrow(/ENOENT/);
    const stop = new AbortController();
    stop.abort();
    await expect(runner.run('sleep', ['60'], { signal: stop.signal })).rejects.toThrow(/not starting/);
  });
});
