// The `kiln` CLI end to end: a real `kiln serve` child process, driven by the CLI binary as child
// processes (JSON output), the way an operator would. Also checks exit codes and that the server
// stops cleanly on SIGTERM. Runs bin/kiln.js, i.e. dist/ as built by the vitest global setup.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'kiln.js');
const MAC = '52:54:00:cc:00:01';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without KILN_* settings, so the developer's shell cannot steer the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KILN_')));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function kernelUrl(script: string): string {
  const m = /^kernel (\S+)/m.exec(script);
  if (m === null) throw new Error(`no kernel line in:\n${script}`);
  return m[1]!;
}

/** A free loopback port nobody listens on (for the unreachable-server case). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A pass-through proxy that, when it sees `GET {racePath}`, first lets someone else change the
 * resource and then answers with the response it fetched before: a deterministic lost-update race.
 */
async function startRacingProxy(target: string, racePath: string, interfere: () => Promise<void>) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await readBody(req);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers.set(k, v);
      const upstream = await fetch(`${target}${req.url!}`, { method: req.method, headers, body: body.length > 0 ? body : undefined });
      const text = Buffer.from(await upstream.arrayBuffer());
      if (req.method === 'GET' && req.url === racePath) await interfere();
      const out: Record<string, string> = {};
      for (const k of ['content-type', 'etag']) {
        const v = upstream.headers.get(k);
        if (v !== null) out[k] = v;
      }
      res.writeHead(upstream.status, out).end(text);
    })().catch((err: Error) => res.writeHead(502).end(err.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('kiln CLI against a real server', () => {
  let dataDir: string;
  let work: string;
  let server: ChildProcess;
  let serverExit: Promise<number | null>;
  let serverLog = '';
  let url: string;
  let adminToken: string;
  let kernel: Buffer;
  let initrd: Buffer;

  /** Runs `kiln --server URL --token T --output FORMAT ...args`; never throws on a non-zero exit. */
  function kiln(args: string[], opts: { token?: string; server?: string; output?: 'json' | 'table' } = {}): Promise<Run> {
    const argv = [BIN, '--server', opts.server ?? url, '--token', opts.token ?? adminToken, '--output', opts.output ?? 'json', ...args];
    return new Promise((resolve) => {
      execFile(process.execPath, argv, { cwd: work, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs kiln and parses its JSON output; fails the test with stderr when it exits non-zero. */
  async function kj<T = Record<string, unknown>>(args: string[], opts: { token?: string; server?: string } = {}): Promise<T> {
    const r = await kiln(args, opts);
    if (r.code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  interface Plan {
    bootable: boolean;
    source: { kind: string; group?: string };
    version: { version: string; artifacts: { name: string; sha256: string }[] };
  }

  beforeAll(async () => {
    // The binary runs dist/, which test/global-setup.ts (scripts/ensure-ready.sh) builds from the sources.
    if (!existsSync(join(ROOT, 'dist', 'cli', 'kiln.js'))) throw new Error('dist/cli/kiln.js is missing: run sh scripts/ensure-ready.sh (vitest global setup does)');
    dataDir = await mkdtemp(join(tmpdir(), 'kiln-cli-data-'));
    work = await mkdtemp(join(tmpdir(), 'kiln-cli-work-'));
    server = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { cwd: work, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    serverExit = new Promise((resolve) => server.on('exit', (code) => resolve(code)));
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kiln serve did not start:\n${serverLog}`)), 20_000);
      server.stderr!.on('data', (d: Buffer) => {
        serverLog += d.toString();
        const m = /admin API (http:\/\/[^/\s]+)\/api\/v1/.exec(serverLog);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
      void serverExit.then((code) => {
        clearTimeout(timer);
        reject(new Error(`kiln serve exited with ${code}:\n${serverLog}`));
      });
    });
    adminToken = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
    kernel = randomBytes(3 * 1024 * 1024);
    initrd = randomBytes(5 * 1024 * 1024);
    await writeFile(join(work, 'vmlinuz'), kernel);
    await writeFile(join(work, 'initrd.img'), initrd);
  });

  afterAll(async () => {
    let exitCode: number | null = 0;
    if (server !== undefined && server.exitCode === null) {
      server.kill('SIGTERM');
      exitCode = await serverExit;
    }
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    // A clean stop on SIGTERM exits 0 (1 means the shutdown deadline had to cut connections).
    expect(exitCode, serverLog).toBe(0);
  });

  // CLI start-up dominates the runtime, so independent commands run concurrently.
  it('tours image push, promote, profile, machine, assignment and boots from the plan', async () => {
    const [image, m] = await Promise.all([
      kj(['image', 'create', 'debian', '--description', 'Debian 13', '--label', 'os=debian']),
      kj<{ id: string; macs: string[] }>(['machine', 'add', '--mac', '52-54-00-CC-00-01', '--hostname', 'node-1', '--label', 'rack=r1']),
    ]);
    expect(image).toMatchObject({ name: 'debian', labels: { os: 'debian' } });
    expect(m.macs).toEqual([MAC]);

    const push = await kiln(['image', 'push', 'debian', '--kernel', join(work, 'vmlinuz'), '--initrd', join(work, 'initrd.img'), '--cmdline', 'console=ttyS0']);
    expect(push.code, push.stderr).toBe(0);
    const v1 = JSON.parse(push.stdout) as { version: string; artifacts: { name: string; role: string; sha256: string; size: number }[] };
    expect(v1.version).toBe('1');
    expect(v1.artifacts).toEqual([
      expect.objectContaining({ name: 'vmlinuz', role: 'kernel', sha256: sha256(kernel), size: kernel.length }),
      expect.objectContaining({ name: 'initrd.img', role: 'initrd', sha256: sha256(initrd), size: initrd.length }),
    ]);
    // Not a TTY: one plain line per finished file on stderr, nothing on stdout but the JSON.
    expect(push.stderr).toMatch(/^vmlinuz \(kernel, 3\.0 MiB\): uploaded, sha256 [0-9a-f]{64}$/m);
    expect(push.stderr).toMatch(/^initrd\.img \(initrd, 5\.0 MiB\): uploaded/m);

    expect(await kj(['image', 'promote', 'debian', 'stable', '1'])).toMatchObject({ image: 'debian', name: 'stable', version: '1' });
    const [worker] = await Promise.all([
      kj(['profile', 'create', 'worker', '--image', 'debian', '--channel', 'stable', '--kernel-arg', 'quiet']),
      kj(['profile', 'create', 'installer', '--image', 'debian', '--channel', 'stable', '--kernel-arg', 'install']),
      kj(['profile', 'create', 'racy', '--image', 'debian', '--channel', 'stable']),
    ]);
    expect(worker).toMatchObject({ name: 'worker', image: { image: 'debian', channel: 'stable' }, kernelArgs: ['quiet'] });
    expect(await kj(['machine', 'assign', MAC, 'worker'])).toMatchObject({ id: m.id, profile: 'worker' });

    const [plan, shown] = await Promise.all([
      kj<Plan>(['machine', 'plan', m.id]),
      kj<{ versions: { version: string }[]; channels: { name: string; version: string }[] }>(['image', 'show', 'debian']),
    ]);
    expect(plan).toMatchObject({ bootable: true, source: { kind: 'assignment' }, version: { version: '1' } });
    expect(shown.versions.map((v) => v.version)).toEqual(['1']);
    expect(shown.channels).toEqual([expect.objectContaining({ name: 'stable', version: '1' })]);

    const script = await (await fetch(`${url}/boot/ipxe?mac=${MAC}`)).text();
    const kurl = kernelUrl(script);
    expect(kurl).toContain(`/${sha256(kernel)}/vmlinuz`);
    expect(sha256(Buffer.from(await (await fetch(kurl)).arrayBuffer()))).toBe(sha256(kernel));
  });

  it('consumes a next boot once', async () => {
    expect(await kj(['machine', 'next-boot', MAC, 'installer'])).toMatchObject({ nextBoot: 'installer', profile: 'worker' });
    expect((await kj<Plan>(['machine', 'plan', MAC])).source.kind).toBe('next-boot');

    const script = await (await fetch(`${url}/boot/ipxe?mac=${MAC}`)).text();
    expect(script).toContain(' install ');

    const [plan, machine] = await Promise.all([kj<Plan>(['machine', 'plan', MAC]), kj<{ nextBoot: string | null }>(['machine', 'show', MAC])]);
    expect(plan.source.kind).toBe('assignment');
    expect(machine.nextBoot).toBeNull();
  });

  it('creates groups from selectors and refuses an ambiguous one with exit 4', async () => {
    const g = await kj(['group', 'create', 'rack-r1', '--profile', 'worker', '--selector', 'label.rack=r1', '--selector', 'arch=x86_64']);
    expect(g).toMatchObject({ name: 'rack-r1', profile: 'worker', selectors: { arch: 'x86_64', labels: { rack: 'r1' } } });

    const [ambiguous, badKey, added] = await Promise.all([
      kiln(['group', 'create', 'x86-workers', '--profile', 'worker', '--selector', 'arch=x86_64', '--selector', 'hostname=node-9']),
      kiln(['group', 'create', 'odd', '--profile', 'worker', '--selector', 'colour=blue']),
      kj<{ id: string }>(['machine', 'add', '--mac', '52:54:00:cc:00:02', '--label', 'rack=r1', '--arch', 'x86_64']),
    ]);
    expect(ambiguous.code).toBe(4);
    expect(ambiguous.stderr).toContain('KILN_GROUP_AMBIGUOUS');
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('unknown key "colour"');

    const [plan, groups, page, all] = await Promise.all([
      kj<Plan>(['machine', 'plan', added.id]),
      kj<{ name: string }[]>(['group', 'list']),
      kiln(['machine', 'list', '--limit', '1']),
      kj<{ macs: string[] }[]>(['machine', 'list', '--limit', '1', '--all']),
    ]);
    // An unassigned machine the group matches boots the group's profile.
    expect(plan).toMatchObject({ bootable: true, source: { kind: 'group', group: 'rack-r1' } });
    expect(groups.map((x) => x.name)).toEqual(['rack-r1']);
    // One page, with a hint about the cursor; --all follows it to the end.
    expect(JSON.parse(page.stdout)).toHaveLength(1);
    expect(page.stderr).toContain('--after');
    expect(all.map((x) => x.macs[0]).sort()).toEqual([MAC, '52:54:00:cc:00:02']);
  });

  it('catches a concurrent profile edit through If-Match (exit 4)', async () => {
    const proxy = await startRacingProxy(url, '/api/v1/profiles/racy', async () => {
      const res = await fetch(`${url}/api/v1/profiles/racy`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ image: { image: 'debian', channel: 'stable' }, description: 'changed meanwhile' }),
      });
      if (res.status !== 200) throw new Error(`interfering PUT failed: ${res.status}`);
    });
    try {
      const r = await kiln(['profile', 'update', 'racy', '--description', 'mine'], { server: proxy.url });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain('KILN_PRECONDITION_FAILED');
    } finally {
      await proxy.close();
    }
    expect(await kj(['profile', 'show', 'racy'])).toMatchObject({ description: 'changed meanwhile', revision: 2 });
  });

  it('creates a viewer token that can read but not write (exit 5)', async () => {
    const created = await kj<{ id: string; role: string; secret: string }>(['token', 'create', 'reader', '--role', 'viewer']);
    expect(created.role).toBe('viewer');
    const [write, read, table, tokens] = await Promise.all([
      kiln(['image', 'create', 'not-allowed'], { token: created.secret }),
      kiln(['image', 'list'], { token: created.secret }),
      kiln(['token', 'create', 'ops', '--role', 'operator'], { output: 'table' }),
      kj<{ name: string; role: string }[]>(['token', 'list']),
    ]);
    expect(write.code).toBe(5);
    expect(write.stderr).toContain('KILN_AUTH_FORBIDDEN');
    expect(read.code).toBe(0);
    // Table output prints just the labelled secret on stdout.
    expect(table.stdout).toMatch(/^secret: kiln_\S+\n$/);
    expect(tokens).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'admin', role: 'admin' }), expect.objectContaining({ name: 'reader', role: 'viewer' })]));
  });

  it('maps errors to exit codes: not found 3, usage 2, unreachable 7', async () => {
    const port = await closedPort();
    const [missing, badLabel, badFilter, unreachable] = await Promise.all([
      kiln(['machine', 'show', '00:11:22:33:44:55']),
      kiln(['machine', 'add', '--mac', '52:54:00:cc:00:09', '--label', 'rack']),
      kiln(['machine', 'list', '--label', 'no-equals-sign']),
      kiln(['image', 'list'], { server: `http://127.0.0.1:${port}` }),
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('KILN_MACHINE_NOT_FOUND');
    expect(badLabel.code).toBe(2);
    expect(badLabel.stderr).toContain('--label "rack": want key=value');
    expect(badFilter.code).toBe(2);
    expect(unreachable.code).toBe(7);
    expect(unreachable.stderr).toContain('cannot reach Kiln');
  });

  it('rolls a channel back and the plan follows', async () => {
    const k2 = randomBytes(256 * 1024);
    await writeFile(join(work, 'vmlinuz-2'), k2);
    const v2 = await kj<{ version: string }>(['image', 'push', 'debian', '--kernel', join(work, 'vmlinuz-2'), '--initrd', join(work, 'initrd.img'), '--promote', 'stable']);
    expect(v2.version).toBe('2');
    const plan2 = await kj<Plan>(['machine', 'plan', MAC]);
    expect(plan2.version.version).toBe('2');
    expect(plan2.version.artifacts[0]).toMatchObject({ name: 'vmlinuz-2', sha256: sha256(k2) });

    expect(await kj(['image', 'rollback', 'debian', 'stable'])).toMatchObject({ name: 'stable', version: '1' });
    const [plan1, channels] = await Promise.all([kj<Plan>(['machine', 'plan', MAC]), kj<{ name: string; version: string }[]>(['image', 'channels', 'debian'])]);
    expect(plan1.version.version).toBe('1');
    expect(channels).toEqual([expect.objectContaining({ name: 'stable', version: '1' })]);
  });

  it('manages payloads and gives one to a machine and to a profile', async () => {
    const created = await kj(['payload', 'create', 'kube-worker', '--param', 'apiserver=api.example', '--param', 'join_token=abc', '--schema', 'apiserver,join_token,ca_cert_hash']);
    expect(created).toMatchObject({ name: 'kube-worker', directory: 'kube-worker', schema: ['apiserver', 'ca_cert_hash', 'join_token'], parameters: { apiserver: 'api.example', join_token: 'abc' } });
    const updated = await kj(['payload', 'update', 'kube-worker', '--param', 'ca_cert_hash=sha256:1', '--unset', 'join_token']);
    expect(updated).toMatchObject({ parameters: { apiserver: 'api.example', ca_cert_hash: 'sha256:1' }, revision: 2 });
    const bad = await kiln(['payload', 'update', 'kube-worker', '--schema', 'other']);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('KILN_PAYLOAD_INVALID');
    expect(await kj(['machine', 'payload', MAC, 'kube-worker'])).toMatchObject({ payload: 'kube-worker' });
    const inUse = await kiln(['payload', 'delete', 'kube-worker']);
    expect(inUse.code).toBe(4);
    expect(await kj(['machine', 'payload', MAC, '--clear'])).toMatchObject({ payload: null });
    expect(await kj(['profile', 'update', 'worker', '--payload', 'kube-worker'])).toMatchObject({ payload: 'kube-worker' });
    expect(await kj(['profile', 'update', 'worker', '--description', 'kept payload'])).toMatchObject({ payload: 'kube-worker' });
    expect(await kj(['profile', 'update', 'worker', '--clear-payload'])).toMatchObject({ payload: null });
    expect(await kj(['payload', 'delete', 'kube-worker'])).toEqual({ deleted: 'kube-worker' });
  });
});
