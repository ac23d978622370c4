import { describe, expect, it } from 'vitest';
import { KilnError } from '../kiln-error.js';
import { parseDebootstrapSpec } from './debootstrap-spec.js';

function problems(text: string): string[] {
  try {
    parseDebootstrapSpec(text, 'x86_64');
  } catch (err) {
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('KILN_RECIPE_INVALID');
    return (err as KilnError).details?.problems as string[];
  }
  throw new Error('expected KILN_RECIPE_INVALID');
}

describe('parseDebootstrapSpec', () => {
  it('fills in the defaults: Debian mirror, minbase, main, the kernel for the arch', () => {
    expect(parseDebootstrapSpec('suite: bookworm', 'x86_64')).toEqual({
      suite: 'bookworm', mirror: 'http://deb.debian.org/debian', variant: 'minbase', components: ['main'], packages: [], exclude: [], kernelPackage: 'linux-image-amd64', postInstall: '',
    });
    expect(parseDebootstrapSpec('{"suite": "trixie", "kernelPackage": null}', 'aarch64').kernelPackage).toBeNull();
    expect(parseDebootstrapSpec('suite: trixie', 'aarch64').kernelPackage).toBe('linux-image-arm64');
  });

  it('takes YAML or JSON with every field', () => {
    const yaml = `
suite: bookworm
mirror: https://mirror.example.org/debian/
variant: buildd
components: [main, contrib, non-free-firmware]
packages: [openssh-server, systemd-sysv, busybox, busybox]
exclude: [vim-tiny]
kernelPackage: linux-image-cloud-amd64
postInstall: |
  echo hello >/etc/motd
`;
    expect(parseDebootstrapSpec(yaml, 'x86_64')).toEqual({
      suite: 'bookworm', mirror: 'https://mirror.example.org/debian/', variant: 'buildd', components: ['main', 'contrib', 'non-free-firmware'],
      packages: ['openssh-server', 'systemd-sysv', 'busybox'], exclude: ['vim-tiny'], kernelPackage: 'linux-image-cloud-amd64', postInstall: 'echo hello >/etc/motd\n',
    });
  });

  it('reports every problem at once', () => {
    const p = problems(`
suite: "bookworm; rm -rf /"
mirror: "http://x/ --keyring=/etc/shadow"
variant: tiny
components: []
packages: [ok, "a,b", "--include=x", 3]
kernelPackage: "Linux"
postInstall: [not, a, script]
extra: true
`);
    expect(p.map((x) => x.split(':')[0])).toEqual(['unknown key "extra" (known', 'suite', 'mirror', 'variant', 'components', 'packages', 'kernelPackage', 'postInstall']);
  });

  it('refuses what is not a mapping, broken YAML and aliases', () => {
    expect(problems('- a\n- b')).toEqual(['want a mapping with at least `suite`']);
    expect(problems('suite: [')[0]).toMatch(/^not YAML or JSON/);
    expect(problems('a: &x [1]\nb: *x\nsuite: bookworm')[0]).toMatch(/^not YAML or JSON/);
    expect(problems('')).toEqual(['want a mapping with at least `suite`']);
  });
});
