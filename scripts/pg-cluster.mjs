// A private, throwaway PostgreSQL cluster: initdb into a temp directory, listening on loopback only
// (a random port, its socket in the same directory). Tests use it, and so does `npm run bench`.
// Plain JavaScript so that the bench (which runs without a build step for its own files) can load it;
// types are in pg-cluster.d.mts.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The newest installed PostgreSQL's bin directory (Debian layout), or null when there is none. */
export function findPgBin() {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return null;
}

/** Why PostgreSQL tests cannot run here, or null when they can. */
export function pgUnavailableReason() {
  if (findPgBin() === null) return 'PostgreSQL is not installed (Debian package `postgresql`; `npm test` as root installs it)';
  if (userInfo().uid === 0 && !existsSync('/usr/sbin/runuser')) return 'running as root needs runuser to start PostgreSQL as the postgres user';
  return null;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}


/** @returns {Promise<import('./pg-cluster.d.mts').PgCluster>} */
export async function startPgCluster() {
  const bin = findPgBin();
  if (bin === null) throw new Error(pgUnavailableReason() ?? 'no PostgreSQL');
  const dir = await mkdtemp(join(tmpdir(), 'kiln-pg-'));
  const data = join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  // initdb and postgres refuse to run as root: run them as the package's postgres user.
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const exec = (cmd, args) => (asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : run(join(bin, cmd), args));
  await exec('initdb', ['-D', data, '-U', 'kiln', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  // Durability settings off: test clusters are thrown away, and fsync dominates on these disks.
  const options = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories=${dir}`, '-c fsync=off',
    '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=300', '-c shared_buffers=64MB',
  ].join(' ');
  const start = async () => {
    await exec('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', join(dir, 'server.log'), '-o', options]);
  };
  const stop = async (mode = 'fast') => {
    await exec('pg_ctl', ['stop', '-w', '-t', '60', '-m', mode, '-D', data]);
  };
  await start();
  const url = (database = 'postgres') => `postgres://kiln@127.0.0.1:${port}/${database}`;
  let n = 0;
  return {
    port,
    dataDir: data,
    url,
    async createDatabase(prefix = 'kiln') {
      const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${n++}`;
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`create database "${name}"`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop,
    start,
    async destroy() {
      await stop('immediate').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
