// Settings of customize sessions (config keys customize.*): where their sshd listens, which ports it
// may take, what users are told to connect to, and which sshd runs.

export interface CustomizeSettings {
  /** Address sshd binds to (127.0.0.1: only from the worker host itself). */
  address: string;
  /** Host name or address users connect to; null: `address`, or the worker's host name when that is a wildcard. */
  host: string | null;
  /** Inclusive port range; one port per running session. */
  ports: PortRange;
  /** The worker's OpenSSH server binary (Debian package openssh-server). */
  sshd: string;
}

export interface PortRange {
  first: number;
  last: number;
}

// Below Linux's ephemeral range (32768-60999), so outgoing connections never hold these ports.
export const DEFAULT_CUSTOMIZE_SETTINGS: CustomizeSettings = Object.freeze({
  address: '127.0.0.1',
  host: null,
  ports: Object.freeze({ first: 32200, last: 32299 }),
  sshd: '/usr/sbin/sshd',
});

/** `32200-32299` (or a single port) → the range; null when it is not one. */
export function parsePortRange(text: string): PortRange | null {
  const m = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$/.exec(text);
  if (m === null) return null;
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || first > last) return null;
  return { first, last };
}

/** What users are told to connect to. */
export function advertisedHost(s: CustomizeSettings, hostname: string): string {
  if (s.host !== null) return s.host;
  return s.address === '0.0.0.0' || s.address === '::' ? hostname : s.address;
}
