// Most-specific group selection, and the save-time rule that two equally specific groups never overlap.
import { isIP } from 'node:net';
import type { Arch, Group, Labels, Selectors } from './types.js';

/** Everything selection may look at for one boot: the stored machine merged with what it reports. */
export interface SelectionFacts {
  /**
   * The MAC this boot came in on (for an explanation without a boot: the machine's first MAC).
   * One value, not all of the machine's MACs: otherwise a machine with two NICs could match two
   * per-MAC groups of equal specificity, a tie the save-time check cannot see.
   */
  mac: string | null;
  uuid?: string | null | undefined;
  serial?: string | null | undefined;
  hostname?: string | null | undefined;
  arch?: Arch | null | undefined;
  platform?: string | null | undefined;
  address?: string | null | undefined;
  labels: Labels;
}

const SCALAR_KEYS = ['uuid', 'serial', 'hostname', 'arch', 'platform'] as const;
/** matchesSelectors tests these keys one by one: a key added above fails to compile here until it does. */
const MATCHED_ONE_BY_ONE: Record<(typeof SCALAR_KEYS)[number], true> = { uuid: true, serial: true, hostname: true, arch: true, platform: true };
void MATCHED_ONE_BY_ONE;

/** Number of selectors; each label counts as one. The default group (no selectors) scores 0. */
export function specificity(s: Selectors): number {
  let n = 0;
  if (s.mac !== undefined) n++;
  for (const k of SCALAR_KEYS) if (s[k] !== undefined) n++;
  if (s.subnet !== undefined) n++;
  n += Object.keys(s.labels ?? {}).length;
  return n;
}

export function matchesSelectors(s: Selectors, f: SelectionFacts): boolean {
  if (s.mac !== undefined && f.mac !== s.mac) return false;
  // Spelled out rather than a loop over SCALAR_KEYS: keyed loads with a variable key were the
  // selection's main cost on the boot path (megamorphic, profiled).
  if (s.uuid !== undefined && (f.uuid ?? undefined) !== s.uuid) return false;
  if (s.serial !== undefined && (f.serial ?? undefined) !== s.serial) return false;
  if (s.hostname !== undefined && (f.hostname ?? undefined) !== s.hostname) return false;
  if (s.arch !== undefined && (f.arch ?? undefined) !== s.arch) return false;
  if (s.platform !== undefined && (f.platform ?? undefined) !== s.platform) return false;
  if (s.subnet !== undefined && (f.address == null || !cidrContains(s.subnet, f.address))) return false;
  for (const [k, v] of Object.entries(s.labels ?? {})) if (f.labels[k] !== v) return false;
  return true;
}

/**
 * The most specific matching group. Ties cannot happen between groups accepted by `findAmbiguousGroup`,
 * but should a store hold one anyway, the name order makes the choice stable.
 */
export function selectGroup<G extends Pick<Group, 'name' | 'selectors'>>(groups: readonly G[], facts: SelectionFacts): G | null {
  let best: G | null = null;
  let bestScore = -1;
  for (const g of groups) {
    if (!matchesSelectors(g.selectors, facts)) continue;
    const score = specificity(g.selectors);
    if (score > bestScore || (score === bestScore && best !== null && g.name < best.name)) {
      best = g;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Groups prepared for selection on the hot path: groups pinned to one MAC (matchbox-style fleets
 * have one per machine) are found by hash lookup, and each list is sorted best first (most specific,
 * then by name), so a boot stops at its first match instead of testing every group.
 */
export interface GroupIndex<G extends Pick<Group, 'name' | 'selectors'>> {
  byMac: Map<string, G[]>;
  rest: G[];
}

/** Best first: higher specificity, then the smaller name (the tie rule of selectGroup). */
function better<G extends Pick<Group, 'name' | 'selectors'>>(a: G, b: G): number {
  return specificity(b.selectors) - specificity(a.selectors) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function indexGroups<G extends Pick<Group, 'name' | 'selectors'>>(groups: readonly G[]): GroupIndex<G> {
  const byMac = new Map<string, G[]>();
  const rest: G[] = [];
  for (const g of groups) {
    const mac = g.selectors.mac;
    if (mac === undefined) rest.push(g);
    else byMac.set(mac, [...(byMac.get(mac) ?? []), g]);
  }
  rest.sort(better);
  for (const list of byMac.values()) list.sort(better);
  return { byMac, rest };
}

function firstMatch<G extends Pick<Group, 'name' | 'selectors'>>(sorted: readonly G[], facts: SelectionFacts): G | null {
  for (const g of sorted) if (matchesSelectors(g.selectors, facts)) return g;
  return null;
}

/** The same choice as selectGroup over all the index's groups. */
export function selectIndexedGroup<G extends Pick<Group, 'name' | 'selectors'>>(index: GroupIndex<G>, facts: SelectionFacts): G | null {
  const pinned = facts.mac === null ? undefined : index.byMac.get(facts.mac);
  const a = pinned === undefined ? null : firstMatch(pinned, facts);
  const b = firstMatch(index.rest, facts);
  if (a === null || b === null) return a ?? b;
  return better(a, b) <= 0 ? a : b;
}

/** Can some machine match both selector sets? Only a key both constrain, with incompatible values, rules it out. */
export function selectorsOverlap(a: Selectors, b: Selectors): boolean {
  if (a.mac !== undefined && b.mac !== undefined && a.mac !== b.mac) return false;
  for (const k of SCALAR_KEYS) {
    if (a[k] !== undefined && b[k] !== undefined && a[k] !== b[k]) return false;
  }
  if (a.subnet !== undefined && b.subnet !== undefined && !cidrsOverlap(a.subnet, b.subnet)) return false;
  const al = a.labels ?? {};
  const bl = b.labels ?? {};
  for (const [k, v] of Object.entries(al)) if (k in bl && bl[k] !== v) return false;
  return true;
}

/** The first other group that would tie with `candidate` for some machine, or null. */
export function findAmbiguousGroup<G extends Pick<Group, 'name' | 'selectors'>>(candidate: G, others: readonly G[]): G | null {
  const score = specificity(candidate.selectors);
  for (const o of others) {
    if (o.name === candidate.name) continue;
    if (specificity(o.selectors) === score && selectorsOverlap(candidate.selectors, o.selectors)) return o;
  }
  return null;
}

// --- CIDR arithmetic on bigints so IPv4 and IPv6 share one code path ---

interface Cidr {
  family: 4 | 6;
  base: bigint;
  bits: number;
}

export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const addr = text.slice(0, slash);
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return null;
  const bits = Number(bitsText);
  const width = family === 4 ? 32 : 128;
  if (bits > width) return null;
  const value = addressToBigint(addr, family);
  return { family, base: value & mask(bits, width), bits };
}

function mask(bits: number, width: number): bigint {
  if (bits === 0) return 0n;
  return ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
}

function addressToBigint(addr: string, family: 4 | 6): bigint {
  if (family === 4) return addr.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  let text = addr;
  // Embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1] !== undefined) {
    const n = addressToBigint(v4[1], 4);
    text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Normalises IPv4-mapped IPv6 (`::ffff:10.0.0.1`, how Node reports v4 peers on dual-stack sockets). */
function clientAddress(address: string): { family: 4 | 6; value: bigint } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const addr = mapped?.[1] ?? address;
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return null;
  return { family, value: addressToBigint(addr, family) };
}

export function cidrContains(cidrText: string, address: string): boolean {
  const c = parseCidr(cidrText);
  const a = clientAddress(address);
  if (c === null || a === null || c.family !== a.family) return false;
  const width = c.family === 4 ? 32 : 128;
  return (a.value & mask(c.bits, width)) === c.base;
}

export function cidrsOverlap(x: string, y: string): boolean {
  const a = parseCidr(x);
  const b = parseCidr(y);
  if (a === null || b === null || a.family !== b.family) return false;
  const width = a.family === 4 ? 32 : 128;
  const bits = Math.min(a.bits, b.bits);
  return (a.base & mask(bits, width)) === (b.base & mask(bits, width));
}
