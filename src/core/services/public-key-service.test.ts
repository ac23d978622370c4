import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../kiln-error.js';
import { MIN_RSA_BITS, parseSshPublicKey, sshFingerprint } from './public-key-service.js';

// SSH wire format written independently of the parser, from keys Node generates.
const str = (b: Buffer | string) => {
  const body = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
};
const mpint = (b64url: string) => {
  let b = Buffer.from(b64url, 'base64url');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return str(b);
};

function ed25519(): Buffer {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return Buffer.concat([str('ssh-ed25519'), str(Buffer.from(jwk.x!, 'base64url'))]);
}
function rsa(bits: number): Buffer {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' });
  return Buffer.concat([str('ssh-rsa'), mpint(jwk.e!), mpint(jwk.n!)]);
}
function ecdsa(): Buffer {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return Buffer.concat([str('ecdsa-sha2-nistp256'), str('nistp256'), str(point)]);
}
const line = (type: string, blob: Buffer, comment = '') => `${type} ${blob.toString('base64')}${comment === '' ? '' : ` ${comment}`}`;

function refused(text: string, pattern: RegExp): void {
  let err: unknown;
  try {
    parseSshPublicKey(text);
  } catch (e) {
    err = e;
  }
  expect(err, text.slice(0, 60)).toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe('KILN_PUBLIC_KEY_INVALID');
  expect((err as KilnError).message).toMatch(pattern);
}

describe('parseSshPublicKey', () => {
  it('accepts ed25519, rsa and ecdsa keys, keeps the comment, normalises the whitespace', () => {
    const blob = ed25519();
    const k = parseSshPublicKey(`  ${line('ssh-ed25519', blob).replace(' ', '\t ')}   alice@laptop  \n`);
    expect(k).toEqual({
      type: 'ssh-ed25519', base64: blob.toString('base64'), comment: 'alice@laptop',
      fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
      line: `ssh-ed25519 ${blob.toString('base64')} alice@laptop`,
    });
    expect(parseSshPublicKey(line('ssh-rsa', rsa(MIN_RSA_BITS))).type).toBe('ssh-rsa');
    expect(parseSshPublicKey(line('ecdsa-sha2-nistp256', ecdsa(), 'a b c')).comment).toBe('a b c');
    expect(parseSshPublicKey(line('ssh-ed25519', blob)).line).toBe(`ssh-ed25519 ${blob.toString('base64')}`);
  });

  it('refuses private keys, RFC 4716 blocks, options, several keys and garbage', () => {
    refused('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----', /private key/);
    refused(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), /private key/);
    refused('---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----', /RFC 4716/);
    refused(`command="/bin/sh" ${line('ssh-ed25519', ed25519())}`, /not a key type/);
    refused(`${line('ssh-ed25519', ed25519())}\n${line('ssh-ed25519', ed25519())}`, /one line/);
    refused('', /empty/);
    refused('ssh-ed25519', /want/);
    refused('ssh-ed25519 not*base64', /base64/);
    refused(`ssh-ed25519 ${ed25519().toString('base64')} x\u0007y`, /control/);
    refused('hello world', /not a key type/);
  });

  it('refuses blobs that do not match their type, truncated or padded blobs, weak and retired types', () => {
    refused(line('ssh-rsa', ed25519()), /holds "ssh-ed25519"/);
    refused(line('ssh-ed25519', ed25519().subarray(0, 30)), /ends/);
    refused(line('ssh-ed25519', Buffer.concat([ed25519(), Buffer.from([0])])), /after the key/);
    refused(line('ssh-ed25519', Buffer.concat([str('ssh-ed25519'), str(Buffer.alloc(31))])), /32 bytes/);
    refused(line('ssh-rsa', rsa(1024)), /1024 bits/);
    refused(line('ecdsa-sha2-nistp384', Buffer.concat([str('ecdsa-sha2-nistp384'), str('nistp256'), str(Buffer.alloc(65, 4))])), /curve/);
    refused(line('ssh-dss', Buffer.concat([str('ssh-dss')])), /DSA/);
    refused(line('ssh-ed25519-cert-v01@openssh.com', ed25519()), /certificates/);
  });

  it('fingerprints like ssh-keygen -l (SHA256, unpadded base64)', () => {
    // The key and fingerprint from OpenSSH's own test data (regress/unittests/sshkey/testdata/ed25519_1.pub / .fp).
    const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIC/pN/VD6lnMXc8qTXm9lUXwsSSvOiZ8P51xYJoKthi6', 'base64');
    expect(sshFingerprint(blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
