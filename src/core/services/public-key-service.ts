// Public keys: OpenSSH public keys registered in Kiln (customize sessions let them log in), with the
// one parser that decides what counts as a key: soft delete, restore and purge as for images.
import { createHash } from 'node:crypto';
import { KilnError } from '../kiln-error.js';
import type { Clock, IdSource, Store } from '../ports.js';
import type { PublicKey } from '../types.js';
import { validateName } from '../validate.js';

/** A parsed public key: what authorized_keys holds, and how `ssh-keygen -l` names it. */
export interface SshPublicKey {
  type: string;
  /** The key blob (SSH wire format), base64 as written in the line. */
  base64: string;
  comment: string;
  fingerprint: string;
  /** `<type> <base64>[ <comment>]`. */
  line: string;
}

// ssh-dss is refused (OpenSSH disabled it in 7.0); certificates need cert-authority lines, not keys.
const ECDSA_POINT_BYTES: Record<string, number> = { nistp256: 65, nistp384: 97, nistp521: 133 };
const KEY_TYPES = ['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'] as const;
/** RSA moduli below this are refused (OpenSSH itself refuses below 1024; NIST retired 1024 long ago). */
export const MIN_RSA_BITS = 2048;
const MAX_LINE = 16 * 1024;
const MAX_COMMENT = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function invalid(message: string): KilnError {
  return new KilnError('KILN_PUBLIC_KEY_INVALID', message);
}

/** Reads the SSH wire format's length-prefixed strings, refusing anything that runs past the end. */
class WireReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  string(what: string): Buffer {
    if (this.at + 4 > this.buf.length) throw invalid(`the key blob ends before its ${what}`);
    const len = this.buf.readUInt32BE(this.at);
    if (this.at + 4 + len > this.buf.length) throw invalid(`the key blob ends inside its ${what}`);
    const out = this.buf.subarray(this.at + 4, this.at + 4 + len);
    this.at += 4 + len;
    return out;
  }

  end(): void {
    if (this.at !== this.buf.length) throw invalid(`the key blob has ${this.buf.length - this.at} bytes after the key`);
  }
}

/** Bits of an SSH mpint (big-endian two's complement; a leading zero byte keeps it positive). */
function mpintBits(b: Buffer): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

/** `SHA256:<unpadded base64>` of a key blob, as `ssh-keygen -l -E sha256` prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses one OpenSSH public key line (`<type> <base64> [comment]`, as in a `.pub` file). Refuses
 * private keys, RFC 4716 / PuTTY blocks, authorized_keys options, several lines, unknown or weak
 * types, and blobs whose structure does not match their type: KILN_PUBLIC_KEY_INVALID says which.
 */
export function parseSshPublicKey(text: string): SshPublicKey {
  if (text.length > MAX_LINE) throw invalid(`a public key line is at most ${MAX_LINE} characters`);
  if (/PRIVATE KEY/.test(text)) throw invalid('this is a private key: give the public one (the .pub file next to it), and keep the private key to yourself');
  if (/BEGIN SSH2 PUBLIC KEY/.test(text)) throw invalid('this is an RFC 4716 (PuTTY, SSH.COM) key: convert it with `ssh-keygen -i -f <file>` first');
  const trimmed = text.trim();
  if (trimmed === '') throw invalid('the public key is empty');
  if (/[\r\n]/.test(trimmed)) throw invalid('give exactly one key, on one line');
  if ([...trimmed].some((ch) => (ch < ' ' && ch !== '\t') || ch === '\x7f')) throw invalid('the key line holds control characters');
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(trimmed);
  if (m === null) throw invalid('want `<type> <base64> [comment]`, as in a .pub file');
  const [, type, base64, rawComment] = m as unknown as [string, string, string, string | undefined];
  if (!(KEY_TYPES as readonly string[]).includes(type)) {
    if (/-cert-v01@openssh\.com$/.test(type)) throw invalid(`${type}: certificates are not accepted; register the key itself`);
    if (type === 'ssh-dss') throw invalid('ssh-dss (DSA) keys are refused: OpenSSH no longer accepts them');
    throw invalid(`${JSON.stringify(type.slice(0, 64))} is not a key type Kiln accepts (${KEY_TYPES.join(', ')}); authorized_keys options are not accepted either`);
  }
  if (base64.length % 4 !== 0 || !BASE64.test(base64)) throw invalid('the key is not valid base64');
  const blob = Buffer.from(base64, 'base64');
  if (blob.toString('base64') !== base64) throw invalid('the key is not canonical base64');
  const r = new WireReader(blob);
  const inner = r.string('type').toString('latin1');
  if (inner !== type) throw invalid(`the line says ${type} but the key blob holds ${JSON.stringify(inner.slice(0, 64))}`);
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') {
    if (r.string('public key').length !== 32) throw invalid('an Ed25519 public key is 32 bytes');
  } else if (type === 'ssh-rsa') {
    const e = r.string('exponent');
    const bits = mpintBits(r.string('modulus'));
    if (mpintBits(e) < 2) throw invalid('the RSA exponent is not valid');
    if (bits < MIN_RSA_BITS) throw invalid(`the RSA key has ${bits} bits; Kiln accepts ${MIN_RSA_BITS} or more (or use ssh-ed25519)`);
  } else {
    const curve = type.replace(/^sk-/, '').replace(/^ecdsa-sha2-/, '').replace(/@openssh\.com$/, '');
    if (r.string('curve').toString('latin1') !== curve) throw invalid(`the key blob's curve does not match ${type}`);
    const point = r.string('point');
    if (point.length !== ECDSA_POINT_BYTES[curve] || point[0] !== 4) throw invalid(`the ${curve} point is not an uncompressed point of the curve's size`);
  }
  if (type.startsWith('sk-')) r.string('application');
  r.end();
  const comment = (rawComment ?? '').trim();
  if (comment.length > MAX_COMMENT) throw invalid(`the comment is at most ${MAX_COMMENT} characters`);
  return { type, base64, comment, fingerprint: sshFingerprint(blob), line: comment === '' ? `${type} ${base64}` : `${type} ${base64} ${comment}` };
}

export interface PublicKeyInput {
  name: string;
  /** The OpenSSH public key line. */
  publicKey: string;
  owner?: string | null | undefined;
}

export class PublicKeyService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ids: IdSource,
  ) {}

  async create(input: PublicKeyInput): Promise<PublicKey> {
    const name = validateName(input.name, 'public key name');
    const key = parseSshPublicKey(input.publicKey);
    const owner = input.owner ?? null;
    if (owner !== null && (await this.store.getUser(owner)) === null) throw new KilnError('KILN_USER_NOT_FOUND', `no user ${JSON.stringify(owner.slice(0, 80))}`);
    return this.store.createPublicKey({
      id: this.ids.id(), name, owner, publicKey: key.line, type: key.type, comment: key.comment, fingerprint: key.fingerprint,
      createdAt: this.clock.now().toISOString(), deletedAt: null,
    });
  }

  async list(filter: { deleted: boolean; owner?: string | undefined }): Promise<PublicKey[]> {
    return this.store.listPublicKeys(filter);
  }

  /** By id (deleted keys too, with `allowDeleted`), else the live key of that name. */
  async get(ref: string, allowDeleted = false): Promise<PublicKey> {
    const byId = await this.store.getPublicKey(ref);
    if (byId !== null && (byId.deletedAt === null || allowDeleted)) return byId;
    const byName = await this.store.findPublicKeyByName(ref);
    if (byName !== null) return byName;
    throw new KilnError('KILN_PUBLIC_KEY_NOT_FOUND', `no public key ${JSON.stringify(ref.slice(0, 80))}`);
  }

  /** Soft delete: the key stops opening customize sessions; restorable until purged. */
  async delete(ref: string): Promise<PublicKey> {
    const key = await this.get(ref);
    return this.store.setPublicKeyDeleted(key.id, this.clock.now().toISOString());
  }

  async restore(ref: string): Promise<PublicKey> {
    const key = await this.get(ref, true);
    if (key.deletedAt === null) return key;
    return this.store.setPublicKeyDeleted(key.id, null);
  }

  async purge(ref: string): Promise<void> {
    const key = await this.get(ref, true);
    if (key.deletedAt === null) throw new KilnError('KILN_PUBLIC_KEY_NOT_DELETED', `delete public key ${key.name} before purging it`);
    await this.store.purgePublicKey(key.id);
  }
}
