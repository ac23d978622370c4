// `kiln serve --workers 2` as a real process tree (the built binary): both workers answer, a write
// through one is seen at once by the other (SQLite: relayed through the primary), a worker killed
// with -9 is replaced, SIGTERM stops everything cleanly, and a cluster whose workers cannot start exits.
import { mkdtemp } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { removeDir, startKilnProcess, type KilnProcess } from './helpers.js';

interface Health { status: string; worker: number | null; pid: number; bootCacheWarmed: number | null }

/** A fresh connection per request, so the kernel spreads them over the workers. */
async function get(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('connection', 'close');
  return fetch(url, { ...init, headers, signal: AbortSignal.timeout(5000) });
}

/** Health answers of `n` requests; a connection lost with a killed worker is skipped, as a client would retry it. */
async function healths(k: KilnProcess, n: number): Promise<Health[]> {
  const out: Health[] = [];
  for (let i = 0; i < n; i++) {
    const h = await get(`${k.url}/healthz`).then((r) => r.json() as Promise<Health>, () => null);
    if (h !== null) out.push(h);
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, fn: () => Promise<T | null>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kiln serve --workers 2 that cannot start', () => {
  it('exits with 1 instead of waiting for workers that failed (here: the port is taken)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const dataDir = await mkdtemp(join(tmpdir(), 'kiln-cluster-fail-'));
    try {
      await expect(startKilnProcess(['--workers', '2', '--listen', `127.0.0.1:${port}`], dataDir)).rejects.toThrow(/kiln exited with 1[\s\S]*(EADDRINUSE|could not start)/);
    } finally {
      taken.close();
      await removeDir(dataDir);
    }
  }, 30_000);
});

describe('kiln serve --workers 2', () => {
  let k: KilnProcess;
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${k.token}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    return get(`${k.url}/api/v1${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
  };

  beforeAll(async () => {
    k = await startKilnProcess(['--workers', '2']);
  });
  afterAll(async () => {
    if (k !== undefined) {
      await k.stop('SIGKILL').catch(() => undefined);
      await removeDir(k.dataDir);
    }
  });

  it('prints one ready line and one admin token, and both workers answer', async () => {
    expect(k.stderr().match(/Kiln is serving/g)).toHaveLength(1);
    expect(k.stderr().match(/Kiln admin token/g)).toHaveLength(1);
    const seen = await until('both workers', async () => {
      const ids = new Set((await healths(k, 10)).map((h) => h.worker));
      return ids.size === 2 ? ids : null;
    });
    expect([...seen].sort()).toEqual([1, 2]);
    // Each worker loads the (empty) fleet into its own boot cache and says so.
    const warmed = await until('both workers warmed', async () => {
      const ws = new Set((await healths(k, 10)).filter((h) => h.bootCacheWarmed !== null).map((h) => `${h.worker}:${h.bootCacheWarmed}`));
      return ws.size === 2 ? ws : null;
    });
    expect([...warmed].sort()).toEqual(['1:0', '2:0']);
  });

  it('a write through one worker is seen at once by the other (relayed change, not a stale cache)', async () => {
    const mac = '52:54:00:77:00:01';
    // Both workers look the machine up (and cache it) before it has a plan.
    for (let i = 0; i < 6; i++) expect(await (await get(`${k.url}/boot/ipxe?mac=${mac}`)).text()).toContain('nothing to boot');
    const kernel = Buffer.alloc(4096, 1);
    const up = await api('/artifacts', { method: 'POST', body: kernel, headers: { 'content-type': 'application/octet-stream' } });
    const sha = ((await up.json()) as { sha256: string }).sha256;
    expect((await api('/images', { method: 'POST', json: { name: 'os' } })).status).toBe(201);
    expect((await api('/images/os/versions', { method: 'POST', json: { version: '1', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: sha }] } })).status).toBe(201);
    expect((await api('/images/os/channels/stable/promote', { method: 'POST', json: { version: '1' } })).status).toBe(200);
    expect((await api('/profiles', { method: 'POST', json: { name: 'p', image: { image: 'os', channel: 'stable' } } })).status).toBe(201);
    expect((await api(`/machines/${mac}/assignment`, { method: 'PUT', json: { profile: 'p' } })).status).toBe(200);
    // New connections go to whichever worker accepts first: ten of them reach both, almost surely.
    for (let i = 0; i < 10; i++) {
      const script = await (await get(`${k.url}/boot/ipxe?mac=${mac}`)).text();
      expect(script, `request ${i}`).toContain('with profile p');
    }
  });

  const scriptEvents = async (mac: string) => {
    const res = await api(`/machines/${mac}/events?limit=1000`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: { kind: string }[] }).items.filter((e) => e.kind === 'script').length;
  };
  /** The count once earlier requests' events are written (batches go out every 50 ms). */
  const settledScriptEvents = async (mac: string) => {
    let last = -1;
    return until('boot events to settle', async () => {
      const n = await scriptEvents(mac);
      if (n === last) return n;
      last = n;
      await new Promise((r) => setTimeout(r, 300));
      return null;
    });
  };

  it('writes the boot events of both workers (through the primary, SQLite\'s one event writer)', async () => {
    const mac = '52:54:00:77:00:01';
    const before = await settledScriptEvents(mac);
    // Twelve fresh connections reach both workers, almost surely; every script request is an event.
    for (let i = 0; i < 12; i++) expect(await (await get(`${k.url}/boot/ipxe?mac=${mac}`)).text()).toContain('with profile p');
    await until('12 more script events', async () => ((await scriptEvents(mac)) === before + 12 ? true : null));
    expect(k.stderr()).not.toContain('could not record boot events');
  });

  it('a worker killed with -9 is replaced; requests keep being answered', async () => {
    // Idle workers race for each new connection (each accepts for itself): ask until worker 2 answers.
    const victim = await until('worker 2 to answer', async () => (await healths(k, 4)).find((h) => h.worker === 2) ?? null);
    process.kill(victim.pid, 'SIGKILL');
    const replaced = await until('a new worker 2', async () => {
      const h = (await healths(k, 4)).find((x) => x.worker === 2 && x.pid !== victim.pid);
      return h ?? null;
    });
    expect(alive(victim.pid)).toBe(false);
    expect(replaced.status).toBe('ok');
    expect(k.stderr()).toContain('worker died; starting a new one');
  });

  it('SIGTERM stops the primary and every worker cleanly (exit 0), boot events of the last moment written', async () => {
    const mac = '52:54:00:77:00:01';
    const pids = await until('both workers to answer', async () => {
      const seen = new Set((await healths(k, 6)).map((h) => h.pid));
      return seen.size === 2 ? [...seen] : null;
    });
    const before = await settledScriptEvents(mac);
    // Answered, so queued in the workers' recorders; the stop must still get them written.
    for (let i = 0; i < 6; i++) await (await get(`${k.url}/boot/ipxe?mac=${mac}`)).text();
    const code = await k.stop('SIGTERM');
    expect(code, k.stderr()).toBe(0);
    for (const pid of pids) await until(`worker ${pid} to exit`, async () => (alive(pid) ? null : true), 10_000);
    const store = await openSqliteStore({ path: join(k.dataDir, 'kiln.db') });
    try {
      const m = (await store.findMachineByMac(mac))!;
      const events = await store.listBootEvents(m.id, { limit: 1000 });
      expect(events.filter((e) => e.kind === 'script')).toHaveLength(before + 6);
    } finally {
      await store.close();
    }
  });
});
