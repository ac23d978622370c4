// pixiecore API mode on Kiln: the `GET /v1/boot/<mac>` contract pixiecore's --api client reads
// (kernel, initrd[], cmdline, message; any non-200 ignores the machine), URLs pixiecore can fetch,
// and the next-boot window for pixiecore's several calls per boot.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeGoTemplate } from '../../src/compat/pixiecore/pixiecore-routes.js';
import { json, removeDir, seedBootable, startTestKiln, type TestKiln } from './helpers.js';

interface Spec { kernel: string; initrd: string[]; cmdline: string; message: string }
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MAC = '52:54:00:12:34:56';

describe('pixiecore API mode', () => {
  let k: TestKiln;
  let seeded: Awaited<ReturnType<typeof seedBootable>>;
  const boot = (mac: string) => fetch(`${k.kiln.bootUrl}/v1/boot/${mac}`);

  beforeAll(async () => {
    k = await startTestKiln({ 'compat.pixiecore.enabled': 'true', 'compat.pixiecore.nextBootWindowSeconds': '1', 'boot.signUrls': 'true' });
    seeded = await seedBootable(k);
    // A second version, pinned by a rescue profile, for the next-boot cases.
    const v2 = await k.api('/images/debian/versions', { method: 'POST', json: { version: '2', cmdline: 'console=ttyS0', artifacts: [{ name: 'vmlinuz', role: 'kernel', sha256: seeded.kernelSha }] } });
    expect(v2.status).toBe(201);
    expect((await k.api('/profiles', { method: 'POST', json: { name: 'rescue', image: { image: 'debian', version: '2' }, kernelArgs: ['rescue', 'x={{y}}'] } })).status).toBe(201);
  });
  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
  });

  it('404 for a machine with nothing to boot (pixiecore then leaves it alone); 400 for a malformed MAC', async () => {
    const res = await boot(MAC);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('no group matches');
    // Asking enrolled it, as Kiln's own boot path does: the operator sees it as discovered.
    expect((await json<{ state: string }>(await k.api(`/machines/${MAC}`))).state).toBe('discovered');
    expect((await fetch(`${k.kiln.bootUrl}/v1/boot/not-a-mac`)).status).toBe(400);
  });

  it('200 with kernel, initrd and cmdline for a machine with a plan; the URLs are absolute, signed and fetch the bytes', async () => {
    expect((await k.api(`/machines/${MAC}/assignment`, { method: 'PUT', json: { profile: 'worker' } })).status).toBe(200);
    const res = await boot(MAC);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const spec = await json<Spec>(res);
    expect(Object.keys(spec).sort()).toEqual(['cmdline', 'initrd', 'kernel', 'message']);
    expect(spec.initrd).toHaveLength(1);
    const kernel = await fetch(spec.kernel);
    expect(kernel.status).toBe(200);
    expect(sha(Buffer.from(await kernel.arrayBuffer()))).toBe(seeded.kernelSha);
    expect(sha(Buffer.from(await (await fetch(spec.initrd[0]!)).arrayBuffer()))).toBe(seeded.initrdSha);
    // Only URLs Kiln handed out work: a changed signature is refused.
    expect((await fetch(spec.kernel.replace(/sig=[^&]+/, 'sig=AAAA'))).status).toBe(403);
    // pixiecore adds its own initrd= arguments; Kiln's cmdline carries its callback.
    expect(spec.cmdline).toBe(`console=ttyS0 quiet kiln.callback=${k.kiln.bootUrl}/boot/callback?mac=${MAC}`);
    expect(spec.message).toBe('Kiln: booting debian 1 (channel stable) with profile worker');
  });

  it('a next boot holds for every call of the same boot (the window), then the usual plan returns', async () => {
    const m = await json<{ id: string }>(await k.api(`/machines/${MAC}/next-boot`, { method: 'PUT', json: { profile: 'rescue' } }));
    const first = await json<Spec>(await boot(MAC));
    expect(first.message).toContain('debian 2 with profile rescue');
    // Go templates: a literal {{ in an argument reaches the kernel as written.
    expect(first.cmdline).toContain('rescue x={{"{{"}}y}}');
    const after = await json<{ nextBoot: string | null; nextBootTaken: { profile: string } }>(await k.api(`/machines/${m.id}`));
    expect(after.nextBoot).toBeNull();
    expect(after.nextBootTaken.profile).toBe('rescue');
    for (let i = 0; i < 3; i++) expect((await json<Spec>(await boot(MAC))).message).toContain('profile rescue');
    await new Promise((r) => setTimeout(r, 1200));
    expect((await json<Spec>(await boot(MAC))).message).toContain('profile worker');
    const events = await json<{ items: { kind: string }[] }>(await k.api(`/machines/${m.id}/events?limit=1000`));
    expect(events.items.filter((e) => e.kind === 'next-boot-consumed')).toHaveLength(1);
  });

  it('escapeGoTemplate leaves text without {{ alone', () => {
    expect(escapeGoTemplate('a=b c={d}')).toBe('a=b c={d}');
    expect(escapeGoTemplate('{{x}} {{')).toBe('{{"{{"}}x}} {{"{{"}}');
  });
});

describe('pixiecore API mode with enrollment off', () => {
  it('an unknown machine is 404 and nothing is stored', async () => {
    const k = await startTestKiln({ 'compat.pixiecore.enabled': 'true', 'boot.enrollUnknown': 'false' });
    try {
      const res = await fetch(`${k.kiln.bootUrl}/v1/boot/${MAC}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('not registered');
      expect((await k.api(`/machines/${MAC}`)).status).toBe(404);
    } finally {
      await k.stop();
      await removeDir(k.dataDir);
    }
  });
});
