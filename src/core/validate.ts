// Validation of the values Kiln stores or renders: names, labels, identifiers. Raises stable codes.
import { KilnError } from './kiln-error.js';
import type { ErrorCode } from './error-catalogue.js';
import type { Arch, Labels } from './types.js';

const NAME = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
const VERSION = /^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62})$/;
const LABEL_KEY = /^[a-z0-9](?:[a-z0-9._/-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SERIAL = /^[A-Za-z0-9._:/+-]{1,64}$/;
const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

function check(ok: boolean, code: ErrorCode, what: string, value: string): void {
  if (!ok) throw new KilnError(code, `invalid ${what}: ${quote(value)}`);
}

/** Names of images, profiles, groups and tokens: DNS-label-like, so they are safe in URLs, paths and scripts. */
export function validateName(value: string, what = 'name'): string {
  check(NAME.test(value), 'KILN_NAME_INVALID', what, value);
  return value;
}

export function validateVersion(value: string): string {
  check(VERSION.test(value) && value !== '.' && value !== '..', 'KILN_NAME_INVALID', 'version', value);
  return value;
}

/** Artifact file names: what iPXE and a kernel's `initrd=` accept without quoting. */
export function isArtifactName(value: string): boolean {
  return ARTIFACT_NAME.test(value);
}

export function validateArtifactName(value: string): string {
  check(ARTIFACT_NAME.test(value), 'KILN_NAME_INVALID', 'artifact name', value);
  return value;
}

export function validateSha256(value: string): string {
  check(SHA256.test(value), 'KILN_REQUEST_INVALID', 'sha256 (64 lower-case hex digits)', value);
  return value;
}

export function validateLabels(labels: Labels, code: ErrorCode = 'KILN_MACHINE_INVALID'): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) {
    check(LABEL_KEY.test(k), code, 'label key', k);
    check(typeof v === 'string' && LABEL_VALUE.test(v), code, `value of label ${k}`, String(v));
    out[k] = v;
  }
  return out;
}

export function tryNormalizeHostname(value: string): string | null {
  return HOSTNAME.test(value) ? value.toLowerCase() : null;
}

export function tryNormalizeUuid(value: string): string | null {
  const v = value.trim().toLowerCase();
  return UUID.test(v) ? v : null;
}

export function tryNormalizeSerial(value: string): string | null {
  return SERIAL.test(value) ? value : null;
}

export function normalizeHostname(value: string, code: ErrorCode = 'KILN_MACHINE_INVALID'): string {
  const v = tryNormalizeHostname(value);
  if (v === null) throw new KilnError(code, `invalid hostname: ${quote(value)}`);
  return v;
}

export function normalizeUuid(value: string, code: ErrorCode = 'KILN_MACHINE_INVALID'): string {
  const v = tryNormalizeUuid(value);
  if (v === null) throw new KilnError(code, `invalid uuid: ${quote(value)}`);
  return v;
}

export function normalizeSerial(value: string, code: ErrorCode = 'KILN_MACHINE_INVALID'): string {
  const v = tryNormalizeSerial(value);
  if (v === null) throw new KilnError(code, `invalid serial: ${quote(value)}`);
  return v;
}

/** iPXE's `${buildarch}` says i386 for BIOS undionly builds on 64-bit machines, and arm64 for aarch64. */
export function tryNormalizeArch(value: string): Arch | null {
  switch (value.toLowerCase()) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
    case 'i386':
      return 'x86_64';
    case 'aarch64':
    case 'arm64':
      return 'aarch64';
    default:
      return null;
  }
}

/**
 * Kernel arguments come from operators and may use iPXE expansions on purpose (`ip=${ip}`),
 * but a newline or control character would start a new script command.
 */
export function validateKernelArg(value: string, code: ErrorCode = 'KILN_PROFILE_INVALID'): string {
  // eslint-disable-next-line no-control-regex
  check(value.length > 0 && value.length <= 1024 && !/[\u0000-\u001f\u007f]/.test(value), code, 'kernel argument', value);
  return value;
}

export function validateCmdline(value: string, code: ErrorCode = 'KILN_VERSION_INVALID'): string {
  // eslint-disable-next-line no-control-regex
  check(value.length <= 4096 && !/[\u0000-\u001f\u007f]/.test(value), code, 'cmdline', value);
  return value;
}
