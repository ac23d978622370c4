import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  indexGroups,
  selectIndexedGroup,
  cidrContains, cidrsOverlap, findAmbiguousGroup, matchesSelectors, parseCidr, selectGroup, selectorsOverlap, specificity,
  type SelectionFacts,
} from './select-group.js';
import type { Selectors } from './types.js';

const MAC_A = '52:54:00:00:00:0a';
const MAC_B = '52:54:00:00:00:0b';
const UUID_A = '4c4c4544-0000-1000-8000-000000000001';

function facts(over: Partial<SelectionFacts> = {}): SelectionFacts {
  return { mac: MAC_A, labels: {}, ...over };
}

function g(name: string, selectors: Selectors): { name: string; selectors: Selectors } {
  return { name, selectors };
}

describe('specificity', () => {
  it('is 0 for the default group', () => {
    expect(specificity({})).toBe(0);
    expect(specificity({ labels: {} })).toBe(0);
  });

  it('counts each selector once and each label once', () => {
    expect(specificity({ mac: MAC_A })).toBe(1);
    expect(specificity({ uuid: UUID_A, serial: 's', hostname: 'h', arch: 'x86_64', platform: 'efi' })).toBe(5);
    expect(specificity({ subnet: '10.0.0.0/8' })).toBe(1);
    expect(specificity({ labels: { rack: 'r1', role: 'db', zone: 'a' } })).toBe(3);
    expect(
      specificity({ mac: MAC_A, uuid: UUID_A, serial: 's', hostname: 'h', arch: 'aarch64', platform: 'efi', subnet: '::/0', labels: { a: '1', b: '2' } }),
    ).toBe(9);
  });

  it('does not weigh a narrower subnet higher than a wider one', () => {
    expect(specificity({ subnet: '10.0.0.5/32' })).toBe(specificity({ subnet: '0.0.0.0/0' }));
  });
});

describe('matchesSelectors', () => {
  it('the empty selector set matches any machine', () => {
    expect(matchesSelectors({}, facts())).toBe(true);
    expect(matchesSelectors({}, { mac: null, labels: {} })).toBe(true);
  });

  it('mac matches any of the machine MACs', () => {
    expect(matchesSelectors({ mac: MAC_B }, facts({ mac: MAC_B }))).toBe(true);
    expect(matchesSelectors({ mac: MAC_B }, facts({ mac: MAC_A }))).toBe(false);
    expect(matchesSelectors({ mac: MAC_A }, facts({ mac: null }))).toBe(false);
  });

  it.each([
    ['uuid', UUID_A, '4c4c4544-0000-1000-8000-000000000002'],
    ['serial', 'SN-1', 'SN-2'],
    ['hostname', 'node1.example.org', 'node2.example.org'],
    ['arch', 'x86_64', 'aarch64'],
    ['platform', 'efi', 'pcbios'],
  ] as const)('%s must be equal, and absent facts do not match', (key, want, other) => {
    const s: Selectors = { [key]: want };
    expect(matchesSelectors(s, facts({ [key]: want }))).toBe(true);
    expect(matchesSelectors(s, facts({ [key]: other }))).toBe(false);
    expect(matchesSelectors(s, facts({ [key]: null }))).toBe(false);
    expect(matchesSelectors(s, facts())).toBe(false);
  });

  it('subnet: IPv4', () => {
    const s = { subnet: '10.0.0.0/24' };
    expect(matchesSelectors(s, facts({ address: '10.0.0.5' }))).toBe(true);
    expect(matchesSelectors(s, facts({ address: '10.0.0.255' }))).toBe(true);
    expect(matchesSelectors(s, facts({ address: '10.0.1.5' }))).toBe(false);
    expect(matchesSelectors(s, facts({ address: null }))).toBe(false);
    expect(matchesSelectors(s, facts())).toBe(false);
  });

  it('subnet: IPv6', () => {
    const s = { subnet: '2001:db8:1::/48' };
    expect(matchesSelectors(s, facts({ address: '2001:db8:1::42' }))).toBe(true);
    expect(matchesSelectors(s, facts({ address: '2001:db8:1:ffff:ffff:ffff:ffff:ffff' }))).toBe(true);
    expect(matchesSelectors(s, facts({ address: '2001:db8:2::42' }))).toBe(false);
    expect(matchesSelectors(s, facts({ address: '10.0.0.5' }))).toBe(false);
  });

  it('subnet: an IPv4-mapped IPv6 client address is matched as IPv4', () => {
    expect(matchesSelectors({ subnet: '10.0.0.0/24' }, facts({ address: '::ffff:10.0.0.5' }))).toBe(true);
    expect(matchesSelectors({ subnet: '10.0.0.0/24' }, facts({ address: '::FFFF:10.0.0.5' }))).toBe(true);
    expect(matchesSelectors({ subnet: '10.0.1.0/24' }, facts({ address: '::ffff:10.0.0.5' }))).toBe(false);
  });

  it('subnet: a malformed client address never matches', () => {
    expect(matchesSelectors({ subnet: '0.0.0.0/0' }, facts({ address: 'not-an-ip' }))).toBe(false);
    expect(matchesSelectors({ subnet: '::/0' }, facts({ address: '' }))).toBe(false);
  });

  it('labels: every selector label must be present with the same value; extra machine labels are fine', () => {
    const s = { labels: { rack: 'r1', role: 'db' } };
    expect(matchesSelectors(s, facts({ labels: { rack: 'r1', role: 'db', zone: 'a' } }))).toBe(true);
    expect(matchesSelectors(s, facts({ labels: { rack: 'r1' } }))).toBe(false);
    expect(matchesSelectors(s, facts({ labels: { rack: 'r1', role: 'DB' } }))).toBe(false);
    expect(matchesSelectors(s, facts({ labels: {} }))).toBe(false);
  });

  it('all selectors must hold at once', () => {
    const s: Selectors = { mac: MAC_A, arch: 'x86_64', subnet: '10.0.0.0/8', labels: { rack: 'r1' } };
    const ok = facts({ arch: 'x86_64', address: '10.1.2.3', labels: { rack: 'r1' } });
    expect(matchesSelectors(s, ok)).toBe(true);
    expect(matchesSelectors(s, { ...ok, arch: 'aarch64' })).toBe(false);
    expect(matchesSelectors(s, { ...ok, address: '11.1.2.3' })).toBe(false);
    expect(matchesSelectors(s, { ...ok, labels: { rack: 'r2' } })).toBe(false);
    expect(matchesSelectors(s, { ...ok, mac: MAC_B })).toBe(false);
  });
});

describe('selectGroup', () => {
  const groups = [
    g('default', {}),
    g('racked', { labels: { rack: 'r1' } }),
    g('racked-x86', { labels: { rack: 'r1' }, arch: 'x86_64' }),
    g('one-machine', { mac: MAC_A, labels: { rack: 'r1' }, arch: 'x86_64' }),
  ];

  it('picks the most specific matching group, whatever the list order', () => {
    const f = facts({ mac: MAC_A, arch: 'x86_64', labels: { rack: 'r1' } });
    expect(selectGroup(groups, f)?.name).toBe('one-machine');
    expect(selectGroup([...groups].reverse(), f)?.name).toBe('one-machine');
    expect(selectGroup(groups, { ...f, mac: MAC_B })?.name).toBe('racked-x86');
    expect(selectGroup(groups, { ...f, mac: MAC_B, arch: 'aarch64' })?.name).toBe('racked');
  });

  it('falls back to the default group (no selectors)', () => {
    expect(selectGroup(groups, facts({ labels: { rack: 'r9' } }))?.name).toBe('default');
  });

  it('returns null when nothing matches and there is no default group', () => {
    expect(selectGroup(groups.slice(1), facts({ labels: { rack: 'r9' } }))).toBeNull();
    expect(selectGroup([], facts())).toBeNull();
  });

  it('breaks a tie (which the save-time rule should prevent) by name, independent of order', () => {
    const tied = [g('b', { arch: 'x86_64' }), g('a', { labels: { rack: 'r1' } })];
    const f = facts({ arch: 'x86_64', labels: { rack: 'r1' } });
    expect(selectGroup(tied, f)?.name).toBe('a');
    expect(selectGroup([...tied].reverse(), f)?.name).toBe('a');
  });
});

describe('selectorsOverlap / findAmbiguousGroup', () => {
  it('equal specificity and overlapping selectors are ambiguous', () => {
    const a = g('a', { arch: 'x86_64' });
    const b = g('b', { labels: { rack: 'r1' } });
    expect(selectorsOverlap(a.selectors, b.selectors)).toBe(true);
    expect(findAmbiguousGroup(a, [b])).toBe(b);
    expect(findAmbiguousGroup(b, [a])).toBe(a);
  });

  it('different values on a shared key are not ambiguous', () => {
    expect(findAmbiguousGroup(g('a', { labels: { rack: 'r1' } }), [g('b', { labels: { rack: 'r2' } })])).toBeNull();
    expect(findAmbiguousGroup(g('a', { arch: 'x86_64' }), [g('b', { arch: 'aarch64' })])).toBeNull();
    expect(findAmbiguousGroup(g('a', { mac: MAC_A }), [g('b', { mac: MAC_B })])).toBeNull();
    for (const key of ['uuid', 'serial', 'hostname', 'platform'] as const) {
      expect(selectorsOverlap({ [key]: 'x' }, { [key]: 'y' })).toBe(false);
      expect(selectorsOverlap({ [key]: 'x' }, { [key]: 'x' })).toBe(true);
    }
  });

  it('one shared key with a different value is enough to rule out an overlap', () => {
    expect(selectorsOverlap({ arch: 'x86_64', labels: { rack: 'r1' } }, { arch: 'x86_64', labels: { rack: 'r2' } })).toBe(false);
    expect(selectorsOverlap({ arch: 'x86_64', labels: { rack: 'r1' } }, { platform: 'efi', labels: { zone: 'z' } })).toBe(true);
  });

  it('disjoint CIDRs are not ambiguous, overlapping ones are', () => {
    expect(findAmbiguousGroup(g('a', { subnet: '10.0.0.0/24' }), [g('b', { subnet: '10.0.1.0/24' })])).toBeNull();
    expect(findAmbiguousGroup(g('a', { subnet: '10.0.0.0/16' }), [g('b', { subnet: '10.0.1.0/24' })])?.name).toBe('b');
    expect(findAmbiguousGroup(g('a', { subnet: '10.0.0.0/24' }), [g('b', { subnet: '2001:db8::/32' })])).toBeNull();
  });

  it('different specificity is never ambiguous', () => {
    expect(findAmbiguousGroup(g('a', {}), [g('b', { arch: 'x86_64' })])).toBeNull();
    expect(findAmbiguousGroup(g('a', { arch: 'x86_64', platform: 'efi' }), [g('b', { arch: 'x86_64' })])).toBeNull();
  });

  it('two default groups are ambiguous', () => {
    expect(findAmbiguousGroup(g('a', {}), [g('b', {})])?.name).toBe('b');
  });

  it('a group is not ambiguous with its own stored version (same name)', () => {
    expect(findAmbiguousGroup(g('a', { arch: 'x86_64' }), [g('a', { arch: 'x86_64' })])).toBeNull();
    expect(findAmbiguousGroup(g('a', {}), [g('a', {}), g('c', {})])?.name).toBe('c');
  });
});

describe('parseCidr / cidrContains / cidrsOverlap', () => {
  it('parses and masks the base address', () => {
    expect(parseCidr('10.1.2.3/8')).toEqual({ family: 4, base: 10n << 24n, bits: 8 });
    expect(parseCidr('::1/128')).toEqual({ family: 6, base: 1n, bits: 128 });
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ family: 6, base: (0xffffn << 32n) | (10n << 24n), bits: 104 });
  });

  it.each(['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/8/8', '/24', 'foo/24', '10.0.0.256/24', '10.0.0.0/2a', ''])(
    'rejects invalid CIDR %j',
    (text) => {
      expect(parseCidr(text)).toBeNull();
      expect(cidrContains(text, '10.0.0.1')).toBe(false);
      expect(cidrsOverlap(text, '0.0.0.0/0')).toBe(false);
      expect(cidrsOverlap('0.0.0.0/0', text)).toBe(false);
    },
  );

  it('/0 contains every address of its family and none of the other', () => {
    expect(cidrContains('0.0.0.0/0', '255.255.255.255')).toBe(true);
    expect(cidrContains('0.0.0.0/0', '0.0.0.0')).toBe(true);
    expect(cidrContains('0.0.0.0/0', '::ffff:192.0.2.1')).toBe(true);
    expect(cidrContains('0.0.0.0/0', '2001:db8::1')).toBe(false);
    expect(cidrContains('::/0', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(true);
    expect(cidrContains('::/0', '10.0.0.1')).toBe(false);
    expect(cidrsOverlap('0.0.0.0/0', '203.0.113.7/32')).toBe(true);
    expect(cidrsOverlap('::/0', '0.0.0.0/0')).toBe(false);
  });

  it('/32 and /128 contain exactly one address', () => {
    expect(cidrContains('10.0.0.5/32', '10.0.0.5')).toBe(true);
    expect(cidrContains('10.0.0.5/32', '10.0.0.4')).toBe(false);
    expect(cidrContains('10.0.0.5/32', '10.0.0.6')).toBe(false);
    expect(cidrContains('2001:db8::5/128', '2001:db8::5')).toBe(true);
    expect(cidrContains('2001:db8::5/128', '2001:db8:0:0:0:0:0:5')).toBe(true);
    expect(cidrContains('2001:db8::5/128', '2001:db8::6')).toBe(false);
    expect(cidrsOverlap('10.0.0.5/32', '10.0.0.5/32')).toBe(true);
    expect(cidrsOverlap('10.0.0.5/32', '10.0.0.6/32')).toBe(false);
    expect(cidrsOverlap('10.0.0.5/32', '10.0.0.0/29')).toBe(true);
    expect(cidrsOverlap('2001:db8::5/128', '2001:db8::/64')).toBe(true);
    expect(cidrsOverlap('2001:db8::5/128', '2001:db9::/32')).toBe(false);
  });

  it('handles prefix lengths that are not octet-aligned', () => {
    expect(cidrContains('10.0.0.0/25', '10.0.0.127')).toBe(true);
    expect(cidrContains('10.0.0.0/25', '10.0.0.128')).toBe(false);
    expect(cidrContains('2001:db8::/33', '2001:db8:7fff::1')).toBe(true);
    expect(cidrContains('2001:db8::/33', '2001:db8:8000::1')).toBe(false);
    expect(cidrsOverlap('10.0.0.0/25', '10.0.0.128/25')).toBe(false);
  });

  it('a host address in the CIDR text is masked', () => {
    expect(cidrContains('10.0.0.77/24', '10.0.0.1')).toBe(true);
    expect(cidrsOverlap('10.0.0.77/24', '10.0.0.200/30')).toBe(true);
  });

  it('handles IPv6 compressed forms at either end and IPv4-mapped CIDRs', () => {
    expect(cidrContains('fe80::/10', 'fe80::1')).toBe(true);
    expect(cidrContains('fe80::/10', 'febf:ffff::1')).toBe(true);
    expect(cidrContains('fe80::/10', 'fec0::1')).toBe(false);
    expect(cidrContains('::1/128', '::1')).toBe(true);
    expect(cidrContains('1::/16', '1::')).toBe(true);
    expect(cidrsOverlap('::ffff:10.0.0.0/120', '::ffff:a00:0/104')).toBe(true);
  });

  it('rejects malformed addresses', () => {
    expect(cidrContains('10.0.0.0/8', '10.0.0')).toBe(false);
    expect(cidrContains('10.0.0.0/8', '10.0.0.1.2')).toBe(false);
    expect(cidrContains('2001:db8::/32', '2001:db8:::1')).toBe(false);
  });
});

// ---------------------------------------------------------------- property

const MACS = ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03'];
const SUBNETS = ['0.0.0.0/0', '10.0.0.0/8', '10.0.0.0/24', '10.0.1.0/24', '10.0.0.5/32', '192.168.0.0/16', '::/0', '2001:db8::/32', '2001:db8:1::/48'];
const ADDRESSES = ['10.0.0.5', '10.0.1.7', '::ffff:10.0.0.5', '192.168.3.4', '172.16.0.1', '2001:db8::1', '2001:db8:1::9', 'fe80::1'];
const LABEL_KEYS = ['rack', 'role', 'zone'];
const LABEL_VALUES = ['a', 'b'];

const arbLabels = fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 3 });

const arbSelectors: fc.Arbitrary<Selectors> = fc.record(
  {
    mac: fc.constantFrom(...MACS),
    uuid: fc.constantFrom('u1', 'u2'),
    serial: fc.constantFrom('s1', 's2'),
    hostname: fc.constantFrom('h1', 'h2'),
    arch: fc.constantFrom('x86_64' as const, 'aarch64' as const),
    platform: fc.constantFrom('efi', 'pcbios'),
    subnet: fc.constantFrom(...SUBNETS),
    labels: arbLabels,
  },
  { requiredKeys: [] },
);

/** Facts of one boot (one booting MAC). */
const arbFacts: fc.Arbitrary<SelectionFacts> = fc.record({
  mac: fc.option(fc.constantFrom(...MACS)),
  uuid: fc.option(fc.constantFrom('u1', 'u2')),
  serial: fc.option(fc.constantFrom('s1', 's2')),
  hostname: fc.option(fc.constantFrom('h1', 'h2')),
  arch: fc.option(fc.constantFrom('x86_64' as const, 'aarch64' as const)),
  platform: fc.option(fc.constantFrom('efi', 'pcbios')),
  address: fc.option(fc.constantFrom(...ADDRESSES)),
  labels: arbLabels,
});

function acceptAll(candidates: readonly Selectors[]): { name: string; selectors: Selectors }[] {
  const accepted: { name: string; selectors: Selectors }[] = [];
  candidates.forEach((selectors, i) => {
    const group = g(`g${String(i).padStart(3, '0')}`, selectors);
    if (findAmbiguousGroup(group, accepted) === null) accepted.push(group);
  });
  return accepted;
}

function mostSpecificMatches(groups: readonly { name: string; selectors: Selectors }[], f: SelectionFacts) {
  const matching = groups.filter((x) => matchesSelectors(x.selectors, f));
  const top = Math.max(-1, ...matching.map((x) => specificity(x.selectors)));
  return matching.filter((x) => specificity(x.selectors) === top);
}

describe('property: accepted groups never tie', () => {
  it('for any machine, at most one matching group has the maximum specificity, and selectGroup picks it', () => {
    fc.assert(
      fc.property(fc.array(arbSelectors, { maxLength: 25 }), fc.array(arbFacts, { minLength: 1, maxLength: 10 }), (candidates, machines) => {
        const accepted = acceptAll(candidates);
        for (const f of machines) {
          const best = mostSpecificMatches(accepted, f);
          expect(best.length).toBeLessThanOrEqual(1);
          expect(selectGroup(accepted, f)).toBe(best[0] ?? null);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('the MAC index picks exactly what a full scan picks', () => {
    fc.assert(
      fc.property(fc.array(arbSelectors, { maxLength: 25 }), fc.array(arbFacts, { minLength: 1, maxLength: 10 }), (candidates, machines) => {
        const accepted = acceptAll(candidates);
        const index = indexGroups(accepted);
        for (const f of machines) expect(selectIndexedGroup(index, f)).toBe(selectGroup(accepted, f));
      }),
      { numRuns: 400 },
    );
  });

  it('selectorsOverlap is symmetric and true whenever some machine matches both', () => {
    fc.assert(
      fc.property(arbSelectors, arbSelectors, arbFacts, (a, b, f) => {
        expect(selectorsOverlap(a, b)).toBe(selectorsOverlap(b, a));
        if (matchesSelectors(a, f) && matchesSelectors(b, f)) expect(selectorsOverlap(a, b)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('a machine with two NICs matches the per-MAC group of the NIC it boots from, never both', () => {
    const a = g('nic-a', { mac: MAC_A });
    const b = g('nic-b', { mac: MAC_B });
    expect(findAmbiguousGroup(b, [a])).toBeNull();
    expect(mostSpecificMatches([a, b], facts({ mac: MAC_B }))).toEqual([b]);
    expect(selectGroup([a, b], facts({ mac: MAC_A }))?.name).toBe('nic-a');
  });
});
