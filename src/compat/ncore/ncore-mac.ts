// ncore-api's MAC forms: lower case, `:` (and URL-encoded `%3a`) removed, then 12 characters for a MAC
// or 7 for a `gXXXXXX` host name that matches any MAC ending in those six hex digits.

export type NcoreNode =
  /** `mac`: Kiln's colon form; `bare`: ncore's 12-character form, used in its responses. */
  | { kind: 'mac'; mac: string; bare: string }
  /** `suffix`: the colon form of the last three octets (`aa:bb:cc`). */
  | { kind: 'hostname'; suffix: string; hostname: string };

const HEX12 = /^[0-9a-f]{12}$/;
const HEX6 = /^[0-9a-f]{6}$/;

/**
 * Null when ncore would answer 400 "Invalid mac_address". Unlike ncore, the characters must be hex:
 * Kiln stores real MAC addresses, so `test_mac`-style ids are refused (documented).
 */
export function parseNcoreNode(input: string, opts: { hostname: boolean }): NcoreNode | null {
  const s = input.toLowerCase().replaceAll('%3a', '').replaceAll(':', '');
  if (s.length === 7 && opts.hostname) {
    const six = s.slice(1);
    return HEX6.test(six) ? { kind: 'hostname', suffix: pairs(six), hostname: s } : null;
  }
  return HEX12.test(s) ? { kind: 'mac', mac: pairs(s), bare: s } : null;
}

/** ncore's host name for a MAC: `g` and the last six hex digits. */
export function ncoreHostname(mac: string): string {
  return `g${mac.replaceAll(':', '').slice(-6)}`;
}

export function bareMac(mac: string): string {
  return mac.replaceAll(':', '');
}

function pairs(hex: string): string {
  return hex.match(/../g)!.join(':');
}
