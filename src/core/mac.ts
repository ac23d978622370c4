// MAC address parsing: accepts colon, dash, dot (Cisco) and bare hex forms in any case; one canonical form out.
import { KilnError } from './kiln-error.js';

const bare = /^[0-9a-f]{12}$/;

/** Returns the canonical `aa:bb:cc:dd:ee:ff` form, or null when `input` is not a MAC address. */
export function tryParseMac(input: string): string | null {
  const s = input.trim().toLowerCase();
  let hex: string;
  if (/^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$/.test(s)) {
    // One separator style per address: mixed `aa:bb-cc...` is a typo, not a MAC.
    if (s.includes(':') && s.includes('-')) return null;
    hex = s.replace(/[:-]/g, '');
  } else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) {
    hex = s.replace(/\./g, '');
  } else if (bare.test(s)) {
    hex = s;
  } else {
    return null;
  }
  return hex.match(/../g)!.join(':');
}

export function parseMac(input: string): string {
  const mac = tryParseMac(input);
  if (mac === null) throw new KilnError('KILN_MAC_INVALID', `not a MAC address: ${JSON.stringify(input.slice(0, 64))}`);
  return mac;
}
