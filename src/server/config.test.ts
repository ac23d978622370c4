import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseListen, SETTINGS } from './config.js';

const dir = () => mkdtempSync(join(tmpdir(), 'kiln-config-'));

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({ env: {}, flags: {}, cwd: dir() });
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.dataDir).toBe('./kiln-data');
    expect(c.backlog).toBe(4096);
    expect(c.boot.listen).toBeNull();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('layers defaults < kiln.yaml < KILN_* env < flags', () => {
    const cwd = dir();
    writeFileSync(join(cwd, 'kiln.yaml'), 'listen: 127.0.0.1:9000\nbacklog: 100\nlogLevel: debug\nboot:\n  retries: 7\n  signUrls: true\n');
    const fileOnly = loadConfig({ env: {}, flags: {}, cwd });
    expect(fileOnly).toMatchObject({ listen: { host: '127.0.0.1', port: 9000 }, backlog: 100, logLevel: 'debug', boot: { retries: 7, signUrls: true } });
    const withEnv = loadConfig({ env: { KILN_BACKLOG: '200', KILN_BOOT_RETRIES: '8' }, flags: {}, cwd });
    expect(withEnv).toMatchObject({ backlog: 200, boot: { retries: 8 } });
    const withFlags = loadConfig({ env: { KILN_BACKLOG: '200' }, flags: { backlog: '300', listen: '[::1]:7000' }, cwd });
    expect(withFlags).toMatchObject({ backlog: 300, listen: { host: '::1', port: 7000 }, boot: { retries: 7 } });
  });

  it('reports every problem at once', () => {
    const cwd = dir();
    writeFileSync(join(cwd, 'kiln.yaml'), 'listne: 1\nboot:\n  retries: many\n');
    let err: unknown;
    try {
      loadConfig({ env: { KILN_BACKLOG: '-1', KILN_PUBLIC_URL: 'ftp://x' }, flags: { listen: 'nonsense', logLevel: 'loud' }, cwd });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const needle of ['unknown key listne', 'boot.retries', 'backlog', 'publicUrl', 'listen (from --listen)', 'logLevel']) expect(problems).toContain(needle);
    expect((err as ConfigError).problems).toHaveLength(6);
  });

  it('refuses a boot listener on the admin port', () => {
    expect(() => loadConfig({ env: {}, flags: { listen: '0.0.0.0:8080', 'boot.listen': '10.0.0.1:8080' }, cwd: dir() })).toThrow(/boot.listen/);
  });

  it('reads an explicit file and complains when it is missing', () => {
    expect(() => loadConfig({ file: '/nonexistent/kiln.yaml', env: {}, flags: {}, cwd: dir() })).toThrow(ConfigError);
  });

  it('parses listen addresses', () => {
    expect(parseListen(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('[fe80::1]:69')).toEqual({ host: 'fe80::1', port: 69 });
    expect(parseListen('host:99999')).toBeNull();
    expect(parseListen('8080')).toBeNull();
  });

  it('scale-out settings: PostgreSQL URL, S3 bucket and prefix, artifact delivery', () => {
    const c = loadConfig({
      env: { KILN_DATABASE_URL: 'postgres://kiln:s%40cret@db.example:5432/kiln?sslmode=require', KILN_BLOB_URL: 's3://kiln-artifacts/prod/eu/', KILN_S3_FORCE_PATH_STYLE: 'true' },
      flags: { 'boot.artifactDelivery': 'redirect', 'database.poolMax': '20' },
      cwd: dir(),
    });
    expect(c.database).toMatchObject({ url: 'postgres://kiln:s%40cret@db.example:5432/kiln?sslmode=require', poolMax: 20, migrate: true });
    expect(c.blobs).toMatchObject({ url: { bucket: 'kiln-artifacts', prefix: 'prod/eu' }, s3: { forcePathStyle: true, endpoint: null } });
    expect(c.boot).toMatchObject({ artifactDelivery: 'redirect', presignTtlSeconds: 900 });
    const d = loadConfig({ env: {}, flags: {}, cwd: dir() });
    expect(d.database.url).toBeNull();
    expect(d.blobs.url).toBeNull();
    expect(d.boot.artifactDelivery).toBe('proxy');
  });

  it('refuses bad scale-out settings, never echoing a database password', () => {
    let err: unknown;
    try {
      loadConfig({
        env: { KILN_DATABASE_URL: 'mysql://root:hunter2@db/kiln', KILN_BLOB_URL: 's3://A_Bucket', KILN_S3_ACCESS_KEY_ID: 'AKIA' },
        flags: { 'boot.artifactDelivery': 'teleport' },
        cwd: dir(),
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const needle of ['database.url', 'blobs.url', 'boot.artifactDelivery', 'set both or neither']) expect(problems).toContain(needle);
    expect(problems).not.toContain('hunter2');
    expect(() => loadConfig({ env: {}, flags: { 'boot.artifactDelivery': 'redirect' }, cwd: dir() })).toThrow(/redirect needs an S3 blob store/);
  });

  it('gives every setting a distinct KILN_* variable and flag', () => {
    expect(new Set(SETTINGS.map((s) => s.env)).size).toBe(SETTINGS.length);
    expect(new Set(SETTINGS.map((s) => s.flag)).size).toBe(SETTINGS.length);
    for (const s of SETTINGS) expect(s.env).toMatch(/^KILN_[A-Z0-9_]+$/);
  });
});
