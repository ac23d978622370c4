// Public keys through the admin API and the `kiln public-key` CLI of a real Kiln (SQLite, fs blobs):
// keys made by the real ssh-keygen, fingerprints compared with its own, garbage and private keys
// refused, roles, owners, soft delete / restore / purge.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublicKey } from '../../src/core/types.js';
import { findExecutable, isCi } from '../e2e/support/e2e-prerequisites.js';
import { json, removeDir, startTestKiln, type TestKiln } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

// ssh-keygen (Debian openssh-client) makes the keys; CI installs it, a laptop may lack it.
const missing = findExecutable('ssh-keygen') === null ? 'ssh-keygen (apt-get install openssh-client)' : null;
if (missing !== null && isCi()) throw new Error(`CI must run the public key tests, but ${missing} is missing`);
if (missing !== null) process.stderr.write(`\n  public key tests skipped: missing ${missing}\n\n`);

async function keygen(dir: string, name: string, type = 'ed25519'): Promise<{ pub: string; priv: string; fingerprint: string }> {
  const path = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', path]);
  const { stdout } = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`]);
  return { pub: await readFile(`${path}.pub`, 'utf8'), priv: await readFile(path, 'utf8'), fingerprint: stdout.split(' ')[1]! };
}

describe.skipIf(missing !== null)('public keys', () => {
  let k: TestKiln;
  let dir: string;
  let alice: Awaited<ReturnType<typeof keygen>>;

  beforeAll(async () => {
    k = await startTestKiln();
    dir = await mkdtemp(join(tmpdir(), 'kiln-keys-'));
    alice = await keygen(dir, 'alice');
  });

  afterAll(async () => {
    await k?.stop();
    if (k !== undefined) await removeDir(k.dataDir);
    if (dir !== undefined) await removeDir(dir);
  });

  const post = (body: unknown, token?: string) => k.api('/public-keys', { method: 'POST', json: body, ...(token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {}) });

  it('registers keys from ssh-keygen with its fingerprint; ed25519, rsa and ecdsa', async () => {
    const res = await post({ name: 'alice', publicKey: alice.pub });
    expect(res.status).toBe(201);
    const key = await json<PublicKey>(res);
    expect(key).toMatchObject({ name: 'alice', owner: null, type: 'ssh-ed25519', comment: 'alice@test', fingerprint: alice.fingerprint, deletedAt: null });
    expect(key.publicKey).toBe(alice.pub.trim());
    expect(res.headers.get('location')).toBe(`/api/v1/public-keys/${key.id}`);
    for (const [name, type] of [['bob-rsa', 'rsa'], ['carol-ecdsa', 'ecdsa']] as const) {
      const other = await keygen(dir, name, type);
      const made = await json<PublicKey>(await post({ name, publicKey: other.pub }));
      expect(made.fingerprint).toBe(other.fingerprint);
    }
    expect((await json<PublicKey>(await k.api('/public-keys/alice'))).id).toBe(key.id);
    expect((await json<PublicKey>(await k.api(`/public-keys/${key.id}`))).name).toBe('alice');
    const { items } = await json<{ items: PublicKey[] }>(await k.api('/public-keys'));
    expect(items.map((i) => i.name)).toEqual(['alice', 'bob-rsa', 'carol-ecdsa']);
  });

  it('refuses garbage, private keys, duplicates and unknown owners with stable codes', async () => {
    const problem = async (body: unknown) => {
      const res = await post(body);
      return { status: res.status, code: (await json<{ code: string }>(res)).code };
    };
    expect(await problem({ name: 'priv', publicKey: alice.priv })).toEqual({ status: 400, code: 'KILN_PUBLIC_KEY_INVALID' });
    expect(await problem({ name: 'junk', publicKey: 'ssh-ed25519 AAAAnotakey' })).toEqual({ status: 400, code: 'KILN_PUBLIC_KEY_INVALID' });
    expect(await problem({ name: 'opts', publicKey: `no-pty ${alice.pub}` })).toEqual({ status: 400, code: 'KILN_PUBLIC_KEY_INVALID' });
    expect(await problem({ name: 'alice', publicKey: alice.pub })).toEqual({ status: 409, code: 'KILN_PUBLIC_KEY_EXISTS' });
    expect(await problem({ name: 'Bad Name', publicKey: alice.pub })).toEqual({ status: 400, code: 'KILN_NAME_INVALID' });
    expect(await problem({ name: 'orphan', publicKey: alice.pub, owner: 'nobody' })).toEqual({ status: 404, code: 'KILN_USER_NOT_FOUND' });
    expect(await problem({ name: 'x', publicKey: alice.pub, extra: 1 })).toEqual({ status: 400, code: 'KILN_REQUEST_INVALID' });
    expect((await k.api('/public-keys/nope')).status).toBe(404);
  });

  it('viewers read, operators write, only admins purge; owners are users', async () => {
    const token = async (role: string) => (await json<{ secret: string }>(await k.api('/tokens', { method: 'POST', json: { name: `t-${role}`, role } }))).secret;
    const viewer = await token('viewer');
    const operator = await token('operator');
    expect((await k.api('/public-keys', { headers: { authorization: `Bearer ${viewer}` } })).status).toBe(200);
    expect((await post({ name: 'v', publicKey: alice.pub }, viewer)).status).toBe(403);
    expect((await k.api('/users', { method: 'POST', json: { name: 'dana', displayName: 'Dana' } })).status).toBe(201);
    const dana = await keygen(dir, 'dana');
    const owned = await json<PublicKey>(await post({ name: 'dana-laptop', publicKey: dana.pub, owner: 'dana' }, operator));
    expect(owned.owner).toBe('dana');
    expect((await json<{ items: PublicKey[] }>(await k.api('/public-keys?owner=dana'))).items.map((i) => i.name)).toEqual(['dana-laptop']);
    const asOperator = { headers: { authorization: `Bearer ${operator}` } };
    expect((await k.api('/public-keys/dana-laptop', { method: 'DELETE', ...asOperator })).status).toBe(200);
    expect((await k.api(`/public-keys/${owned.id}/purge`, { method: 'POST', ...asOperator })).status).toBe(403);
    expect((await k.api(`/public-keys/${owned.id}/purge`, { method: 'POST' })).status).toBe(200);
    expect((await k.api(`/public-keys/${owned.id}`)).status).toBe(404);
  });

  it('soft delete hides a key and frees its name; restore brings it back unless the name was taken', async () => {
    const bob = await json<PublicKey>(await k.api('/public-keys/bob-rsa'));
    const deleted = await json<PublicKey>(await k.api('/public-keys/bob-rsa', { method: 'DELETE' }));
    expect(deleted.deletedAt).not.toBeNull();
    expect((await k.api('/public-keys/bob-rsa')).status).toBe(404);
    expect((await json<PublicKey>(await k.api(`/public-keys/${bob.id}`))).deletedAt).not.toBeNull();
    expect((await json<{ items: PublicKey[] }>(await k.api('/public-keys?deleted=true'))).items.map((i) => i.id)).toEqual([bob.id]);
    const purgeLive = await k.api('/public-keys/alice/purge', { method: 'POST' });
    expect([purgeLive.status, (await json<{ code: string }>(purgeLive)).code]).toEqual([409, 'KILN_PUBLIC_KEY_NOT_DELETED']);
    const again = await json<PublicKey>(await post({ name: 'bob-rsa', publicKey: (await keygen(dir, 'bob2')).pub }));
    const clash = await k.api(`/public-keys/${bob.id}/restore`, { method: 'POST' });
    expect([clash.status, (await json<{ code: string }>(clash)).code]).toEqual([409, 'KILN_PUBLIC_KEY_EXISTS']);
    await k.api(`/public-keys/${again.id}`, { method: 'DELETE' });
    expect((await json<PublicKey>(await k.api(`/public-keys/${bob.id}/restore`, { method: 'POST' }))).deletedAt).toBeNull();
  });

  it('kiln public-key add | list | show | delete (the CLI from its sources)', async () => {
    const cli = async (...args: string[]) => {
      const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KILN_'))), KILN_SERVER: k.kiln.adminUrl, KILN_TOKEN: k.token };
      return run(process.execPath, ['--import', join(ROOT, 'test/integration/jobs-support/register-ts.mjs'), join(ROOT, 'src/cli/kiln.ts'), ...args], { env }).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    };
    const erin = await keygen(dir, 'erin');
    const added = await cli('-o', 'json', 'public-key', 'add', 'erin', join(dir, 'erin.pub'));
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'erin', fingerprint: erin.fingerprint });
    const listed = await cli('public-key', 'list');
    expect(listed.stdout).toMatch(new RegExp(`erin\\s+ssh-ed25519\\s+${erin.fingerprint.replace(/[+/]/g, '\\$&')}`));
    expect(JSON.parse((await cli('-o', 'json', 'public-key', 'show', 'erin')).stdout)).toMatchObject({ comment: 'erin@test' });
    const priv = await cli('public-key', 'add', 'erin-priv', join(dir, 'erin'));
    expect(priv.code).not.toBe(0);
    expect(priv.stderr).toContain('KILN_PUBLIC_KEY_INVALID');
    expect((await cli('public-key', 'delete', 'erin')).code).toBe(0);
    const gone = await cli('public-key', 'show', 'erin');
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('KILN_PUBLIC_KEY_NOT_FOUND');
  });
});
