import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { renderSshdConfig } from './customize-container.js';
import { advertisedHost, DEFAULT_CUSTOMIZE_SETTINGS, parsePortRange } from './customize-settings.js';

describe('customize settings', () => {
  it('parses port ranges and refuses what is not one', () => {
    expect(parsePortRange('32200-32299')).toEqual({ first: 32200, last: 32299 });
    expect(parsePortRange(' 2222 ')).toEqual({ first: 2222, last: 2222 });
    for (const bad of ['', '0-10', '10-5', '1-65536', 'a-b', '1,2']) expect(parsePortRange(bad), bad).toBeNull();
  });

  it('come from the config, with every problem reported', () => {
    const c = loadConfig({ env: { KILN_CUSTOMIZE_PORTS: '40000-40009', KILN_CUSTOMIZE_ADDRESS: '0.0.0.0' }, flags: { 'customize.host': 'build1.example.org' }, cwd: '/nonexistent' });
    expect(c.customize).toEqual({ address: '0.0.0.0', host: 'build1.example.org', ports: { first: 40000, last: 40009 }, sshd: '/usr/sbin/sshd' });
    expect(loadConfig({ env: {}, flags: {}, cwd: '/nonexistent' }).customize).toEqual(DEFAULT_CUSTOMIZE_SETTINGS);
    expect(() => loadConfig({ env: { KILN_CUSTOMIZE_PORTS: '9-1', KILN_CUSTOMIZE_ADDRESS: 'localhost' }, flags: {}, cwd: '/nonexistent' })).toThrow(/customize\.ports[\s\S]*customize\.address/);
  });

  it('tells users the configured host, else the address, else the host name for a wildcard', () => {
    expect(advertisedHost(DEFAULT_CUSTOMIZE_SETTINGS, 'worker1')).toBe('127.0.0.1');
    expect(advertisedHost({ ...DEFAULT_CUSTOMIZE_SETTINGS, address: '0.0.0.0' }, 'worker1')).toBe('worker1');
    expect(advertisedHost({ ...DEFAULT_CUSTOMIZE_SETTINGS, address: '::', host: 'b.example' }, 'worker1')).toBe('b.example');
  });

  it('renders an sshd_config that lets only root in with a key, chrooted, and refuses unsafe values', () => {
    const text = renderSshdConfig({ address: '::1', port: 32201, pidFile: '/var/lib/kiln/work/j.1/session/sshd.pid' });
    expect(text).toContain('ListenAddress [::1]:32201\n');
    expect(text).toContain('PasswordAuthentication no\n');
    expect(text).toContain('ChrootDirectory /run/sshd/root\n');
    expect(() => renderSshdConfig({ address: '127.0.0.1', port: 1, pidFile: '/tmp/a b/sshd.pid' })).toThrow(/sshd_config/);
  });
});
