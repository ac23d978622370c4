// PostgreSQL stops under a running Kiln: the API answers 503 KILN_STORE_UNAVAILABLE (with
// Retry-After) instead of hanging or crashing, health says so, and all recovers when it is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js';
import { pgSkipReason, pgUrl } from '../support/pg.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

if (pgUrl === null) console.warn(`database outage tests skipped: ${pgSkipReason}`);

describe.skipIf(pgUrl === null)('when PostgreSQL goes away under a running Kiln', () => {
  let cluster: PgCluster;
  let k: TestKiln;

  beforeAll(async () => {
    // Its own cluster: stopping the shared one would disturb the other test files.
    cluster = await startPgCluster();
    k = await startTestKiln({ 'database.url': await cluster.createDatabase(), 'database.connectTimeoutMs': '1000' });
  }, 60_000);

  afterAll(async () => {
    await k?.stop();
    await removeDir(k.dataDir);
    await cluster?.destroy();
  });

  it('answers 503 with a stable code while it is down and recovers without a restart', async () => {
    expect((await k.api('/images', { method: 'POST', json: { name: 'before' } })).status).toBe(201);
    await cluster.stop('fast');

    const down = await k.api('/images');
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(await json(down)).toMatchObject({ code: 'KILN_STORE_UNAVAILABLE', status: 503 });
    const write = await k.api('/images', { method: 'POST', json: { name: 'during' } });
    expect(write.status).toBe(503);
    expect((await fetch(`${k.kiln.adminUrl}/healthz`)).status).toBe(503);

    await cluster.start();
    const end = Date.now() + 20_000;
    let status = 0;
    while (Date.now() < end && status !== 200) {
      status = (await k.api('/images')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const names = (await json<{ items: { name: string }[] }>(await k.api('/images'))).items.map((i) => i.name);
    expect(names).toEqual(['before']);
    expect((await fetch(`${k.kiln.adminUrl}/healthz`)).status).toBe(200);
  });
});
