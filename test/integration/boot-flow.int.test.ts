// End to end over real sockets: a real `kiln serve` (SQLite + fs blobs in a temp dir) driven over HTTP
// the way an operator and an iPXE client would.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, removeDir, seedBootable, startTestKiln, type TestKiln } from './helpers.js';

const MAC = '52:54:00:aa:00:01';

function kernelUrl(script: string): string {
  const m = /^kernel (\S+)/m.exec(script);
  if (m === null) throw new Error(`no kernel line in:\n${script}`);
  return m[1]!;
}

describe('boot flow', () => {
  let k: TestKiln;
  let seeded: Awaited<ReturnType<typeof seedBootable>>;
  let machineId: string;

  beforeAll(async () => {
    k = await startTestKiln();
    seeded = await seedBootable(k);
    const res = await k.api('/machines', { method: 'POST', json: { macs: ['52-54-00-AA-00-01'], hostname: 'node-1', labels: { rack: 'r1' } } });
    expect(res.status).toBe(201);
    const m = await json<{ id: string; macs: string[] }>(res);
    expect(m.macs).toEqual([MAC]);
    machineId = m.id;
    expect((await k.api(`/machines/${machineId}/assignment`, { method: 'PUT', json: { profile: 'worker' } })).status).toBe(200);
  });
  afterAll(async () => {
    await k.stop();
    await removeDir(k.dataDir);
  });

  it('chains from /boot.ipxe to the machine script, serves the kernel by Range, and records the callback', async () => {
    const chain = await (await fetch(`${k.kiln.bootUrl}/boot.ipxe`)).text();
    expect(chain).toContain(`${k.kiln.bootUrl}/boot/ipxe?mac=\${net0/mac:hexhyp}`);

    const res = await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52-54-00-aa-00-01&buildarch=x86_64&platform=efi`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const script = await res.text();
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toMatch(/^initrd \S+\/initrd\.img\?mac=52:54:00:aa:00:01 \|\| goto kiln-wait$/m);
    expect(script).toContain('initrd=initrd.img console=ttyS0 quiet');

    const url = kernelUrl(script);
    const part = await fetch(url, { headers: { range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 0-99/${seeded.kernel.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(seeded.kernel.subarray(0, 100));
    const rest = await fetch(url, { headers: { range: 'bytes=100-' } });
    expect(Buffer.from(await rest.arrayBuffer())).toEqual(seeded.kernel.subarray(100));

    const cb = await fetch(`${k.kiln.bootUrl}/boot/callback?mac=${MAC}&state=booted`, { method: 'POST', body: 'uptime=3', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(cb.status).toBe(200);
    const m = await json<{ state: string; lastSeenAt: string | null }>(await k.api(`/machines/${MAC}`));
    expect(m.state).toBe('booted');
    expect(m.lastSeenAt).not.toBeNull();

    // Events are batched; the callback waits for durability, and artifact events precede it in the batch.
    const events = await json<{ items: { kind: string; detail: Record<string, unknown> }[] }>(await k.api(`/machines/${machineId}/events`));
    const kinds = events.items.map((e) => e.kind);
    expect(kinds).toContain('script');
    expect(kinds).toContain('artifact');
    expect(kinds[kinds.length - 1]).toBe('callback');
    expect(events.items.find((e) => e.kind === 'script')!.detail).toMatchObject({ profile: 'worker', image: 'debian', version: '1', source: 'assignment' });
  });

  it('never serves a version built for another architecture', async () => {
    const arm = await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:ee:00:01&buildarch=arm64`);
    // Unknown and enrolled; no default group yet, so first make the worker profile the machine's.
    expect(arm.status).toBe(200);
    const m = await json<{ id: string; arch: string }>(await k.api('/machines/52:54:00:ee:00:01'));
    expect(m.arch).toBe('aarch64');
    await k.api(`/machines/${m.id}/assignment`, { method: 'PUT', json: { profile: 'worker' } });
    const script = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:ee:00:01&buildarch=arm64`)).text();
    expect(script).toContain('nothing to boot');
    expect(script).toContain('is built for x86_64, this machine is aarch64');
    const plan = await json<{ bootable: boolean; reason: string }>(await k.api(`/machines/${m.id}/boot-plan`));
    expect(plan.bootable).toBe(false);
    await k.api(`/machines/${m.id}`, { method: 'DELETE' });
  });

  it('explains the boot plan', async () => {
    const plan = await json<{ bootable: boolean; reason: string; version: { version: string }; source: { kind: string } }>(await k.api(`/machines/${machineId}/boot-plan`));
    expect(plan).toMatchObject({ bootable: true, source: { kind: 'assignment' }, version: { version: '1' } });
    expect(plan.reason).toContain('channel stable resolved to version 1');
  });

  it('consumes a next boot exactly once under concurrent boots', async () => {
    await seedBootable(k, { image: 'installer', profile: 'install' });
    expect((await k.api(`/machines/${machineId}/next-boot`, { method: 'PUT', json: { profile: 'install' } })).status).toBe(200);
    const plan = await json<{ source: { kind: string } }>(await k.api(`/machines/${machineId}/boot-plan`));
    expect(plan.source.kind).toBe('next-boot');
    const scripts = await Promise.all(Array.from({ length: 12 }, async () => (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`)).text()));
    expect(scripts.filter((s) => s.includes('profile install')).length).toBe(1);
    expect(scripts.filter((s) => s.includes('profile worker')).length).toBe(11);
    const m = await json<{ nextBoot: string | null }>(await k.api(`/machines/${machineId}`));
    expect(m.nextBoot).toBeNull();
  });

  it('follows channel promotion and rollback in the rendered script', async () => {
    await seedBootable(k, { version: '2' });
    const v2 = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`)).text();
    expect(v2).toContain('booting debian 2 (channel stable)');
    const rb = await k.api('/images/debian/channels/stable/rollback', { method: 'POST' });
    expect(rb.status).toBe(200);
    const v1 = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`)).text();
    expect(v1).toContain('booting debian 1 (channel stable)');
    const none = await k.api('/images/debian/channels/stable/rollback', { method: 'POST' });
    expect(none.status).toBe(409);
    expect((await json(none)).code).toBe('KILN_CHANNEL_NO_PREVIOUS');
    const ch = await json<{ history: { action: string; toVersion: string }[] }>(await k.api('/images/debian/channels/stable'));
    expect(ch.history.map((h) => `${h.action}:${h.toVersion}`)).toEqual(['promote:1', 'promote:2', 'rollback:1']);
  });

  it('a rendered script is reused only while nothing in it changed: profile, machine and Host all show at once', async () => {
    const script = async (host?: string): Promise<string> => {
      if (host === undefined) return (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`)).text();
      // fetch() will not send another Host: ask with node:http.
      const { request } = await import('node:http');
      return new Promise((resolve, reject) => {
        const req = request(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`, { headers: { host } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
        });
        req.on('error', reject).end();
      });
    };
    const before = await script();
    expect(await script()).toBe(before);
    const p = await json<{ image: unknown }>(await k.api('/profiles/worker'));
    expect((await k.api('/profiles/worker', { method: 'PUT', json: { image: p.image, kernelArgs: ['splash'] } })).status).toBe(200);
    const after = await script();
    expect(after).toContain(' splash ');
    expect(after).not.toContain(' quiet ');
    expect((await k.api(`/machines/${machineId}`, { method: 'PATCH', json: { labels: { rack: 'r2' } } })).status).toBe(200);
    const tpl = '#!ipxe\necho rack {{ machine.labels.rack }} via {{ baseUrl }}\n';
    expect((await k.api('/profiles/worker', { method: 'PUT', json: { image: p.image, kernelArgs: ['splash'], template: tpl } })).status).toBe(200);
    expect(await script()).toContain('rack r2 via');
    expect((await k.api(`/machines/${machineId}`, { method: 'PATCH', json: { labels: { rack: 'r3' } } })).status).toBe(200);
    expect(await script()).toContain('rack r3 via');
    expect(await script('kiln.example:8080')).toContain('via http://kiln.example:8080');
    expect((await k.api('/profiles/worker', { method: 'PUT', json: { image: p.image, kernelArgs: ['quiet'] } })).status).toBe(200);
  });

  it('enrolls unknown machines as discovered and explains when there is nothing to boot', async () => {
    const unknown = '52:54:00:bb:00:01';
    const script = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${unknown}`)).text();
    expect(script).toContain('nothing to boot');
    expect(script).toMatch(/^sleep 30$/m);
    expect(script).toContain(`chain --replace --autofree ${k.kiln.bootUrl}/boot.ipxe`);
    const list = await json<{ items: { state: string; macs: string[] }[] }>(await k.api(`/machines?mac=${unknown}`));
    expect(list.items).toHaveLength(1);
    expect(list.items[0]!.state).toBe('discovered');

    expect((await k.api('/groups', { method: 'POST', json: { name: 'default', profile: 'worker' } })).status).toBe(201);
    const after = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${unknown}`)).text();
    expect(after).toContain('with profile worker');
  });

  it('picks the most specific group and refuses an ambiguous one', async () => {
    expect((await k.api('/groups', { method: 'POST', json: { name: 'rack1', profile: 'install', selectors: { labels: { rack: 'r1' } } } })).status).toBe(201);
    const other = await k.api('/machines', { method: 'POST', json: { macs: ['52:54:00:cc:00:01'], labels: { rack: 'r1' } } });
    expect(other.status).toBe(201);
    const s = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=52:54:00:cc:00:01`)).text();
    expect(s).toContain('with profile install');
    const amb = await k.api('/groups', { method: 'POST', json: { name: 'uefi', profile: 'worker', selectors: { platform: 'efi' } } });
    expect(amb.status).toBe(409);
    expect(await json(amb)).toMatchObject({ code: 'KILN_GROUP_AMBIGUOUS', conflictsWith: 'rack1' });
    const notAmb = await k.api('/groups', { method: 'POST', json: { name: 'rack2', profile: 'worker', selectors: { labels: { rack: 'r2' } } } });
    expect(notAmb.status).toBe(201);
  });

  it('keeps everything across a restart', async () => {
    // A heartbeat is recorded durably, and with it every boot event queued before it.
    expect((await fetch(`${k.kiln.bootUrl}/boot/heartbeat?mac=${MAC}`)).status).toBe(200);
    const before = await json<{ items: unknown[] }>(await k.api('/machines'));
    k = await k.restart();
    const after = await json<{ items: unknown[] }>(await k.api('/machines'));
    expect(after.items).toEqual(before.items);
    const script = await (await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${MAC}`)).text();
    expect(script).toContain('booting debian 1 (channel stable)');
    expect(k.kiln.createdAdminToken).toBeNull();
    const events = await json<{ items: unknown[] }>(await k.api(`/machines/${machineId}/events?limit=1000`));
    expect(events.items.length).toBeGreaterThan(5);
  });
});
