// Behind a load balancer: X-Forwarded-For gives the machine's address (subnet groups, the timeline)
// only when the direct peer is a configured proxy; anyone else cannot spoof it.
import { afterEach, describe, expect, it } from 'vitest';
import { json, removeDir, seedBootable, startTestKiln, type TestKiln } from './helpers.js';

const started: TestKiln[] = [];
afterEach(async () => {
  for (const k of started.splice(0)) {
    await k.stop();
    await removeDir(k.dataDir);
  }
});

describe('trustProxy', () => {
  for (const [trust, expected] of [['127.0.0.1', 'rack-10'], ['', 'fallback']] as const) {
    it(`${trust === '' ? 'without' : 'with'} a trusted proxy, X-Forwarded-For ${trust === '' ? 'is ignored' : 'selects the subnet group'}`, async () => {
      const k = await startTestKiln(trust === '' ? {} : { trustProxy: trust });
      started.push(k);
      await seedBootable(k, { profile: 'rack-10' });
      await seedBootable(k, { profile: 'fallback', image: 'other' });
      expect((await k.api('/groups', { method: 'POST', json: { name: 'default', profile: 'fallback' } })).status).toBe(201);
      expect((await k.api('/groups', { method: 'POST', json: { name: 'rack10', selectors: { subnet: '10.9.0.0/24' }, profile: 'rack-10' } })).status).toBe(201);
      const mac = '52:54:00:0c:00:01';
      const res = await fetch(`${k.kiln.bootUrl}/boot/ipxe?mac=${mac}`, { headers: { 'x-forwarded-for': '10.9.0.5' } });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain(`, profile ${expected}\n`);
      // Boot events are written in batches: wait for the script event to land.
      let script: { kind: string; detail: { address?: string } } | undefined;
      for (let i = 0; i < 100 && script === undefined; i++) {
        const events = await json<{ items: { kind: string; detail: { address?: string } }[] }>(await k.api(`/machines/${mac}/events`));
        script = events.items.find((e) => e.kind === 'script');
        if (script === undefined) await new Promise((r) => setTimeout(r, 20));
      }
      expect(script?.detail.address).toBe(trust === '' ? '127.0.0.1' : '10.9.0.5');
    });
  }
});
