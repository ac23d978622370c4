// A private boot network in two network namespaces, for Kiln's own proxyDHCP and TFTP against real firmware:
//   <id>-lan: bridge br0 with QEMU's taps and a plain address-only DHCP server (dnsmasq, plus an IPv6 RA)
//   <id>-srv: Kiln, on lab0 10.77.0.1/24 (a veth into br0), and api0: a /30 veth to the root namespace so
//             the test process reaches Kiln's admin API (nothing is routed or forwarded).
// Names carry the creating pid, so a run killed half-way is swept by the next one.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../../src/demo/run-command.js';
import { alive } from './process-alive.js';

export const LAB_SUBNET_PREFIX = '10.77.0';
export const LAB_SERVER_IP = `${LAB_SUBNET_PREFIX}.1`;
const LAB_DHCP_IP = `${LAB_SUBNET_PREFIX}.2`;
const LAB_IPV6_PREFIX = 'fd77:4b1e:e2e::';
const NS_PATTERN = /^kiln-e2e-(\d+)-[0-9a-f]+-(srv|lan)$/;

export interface NetnsLab {
  /** Namespace Kiln runs in (`ip netns exec`). */
  serverNs: string;
  /** Namespace of the bridge, the DHCP server and QEMU. */
  lanNs: string;
  /** Kiln's address on the boot network (DHCP server id, TFTP and HTTP for the guests). */
  serverIp: string;
  /** Kiln's end of the /30 from the root namespace: where its admin API listens. */
  apiIp: string;
  /** Tap devices on the bridge in lanNs, one per concurrent guest. */
  taps: string[];
  /** dnsmasq's log (DHCP offers and acks), for failure messages. */
  dhcpLog(): string;
  destroy(): Promise<void>;
}

const ip = (...args: string[]) => runCommand('ip', args);

async function nsPids(ns: string): Promise<number[]> {
  const { stdout } = await runCommand('ip', ['netns', 'pids', ns], { allowFailure: true });
  return stdout.split('\n').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0);
}


async function deleteNamespace(ns: string): Promise<void> {
  // Only processes this harness started live in its namespaces; a namespace with a live process stays up.
  for (const pid of await nsPids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await runCommand('ip', ['netns', 'del', ns], { allowFailure: true });
}

/** Removes labs whose creating process is gone (a worker killed mid-run cannot clean up after itself). */
async function sweepStaleLabs(): Promise<void> {
  const { stdout } = await runCommand('ip', ['netns', 'list'], { allowFailure: true });
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NS_PATTERN.exec(name);
    if (m !== null && !alive(Number(m[1]))) await deleteNamespace(name);
  }
}

/** A /30 in 10.0.0.0/8 that no route or address in the root namespace covers. */
async function pickApiSubnet(): Promise<{ host: string; kiln: string }> {
  const { stdout } = await runCommand('ip', ['-4', '-j', 'route', 'show', 'table', 'all']);
  const routes = (JSON.parse(stdout) as { dst: string }[]).map((r) => r.dst).filter((d) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(d));
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const overlaps = (base: number) =>
    routes.some((r) => {
      const [addr, len] = r.split('/');
      const bits = Number(len ?? 32);
      const size = 2 ** (32 - bits);
      const start = Math.floor(toInt(addr!) / size) * size;
      return base < start + size && start < base + 4;
    });
  for (let i = 0; i < 100; i++) {
    const second = randomInt(200, 250);
    const third = randomInt(0, 256);
    const fourth = randomInt(0, 64) * 4;
    const base = toInt(`10.${second}.${third}.${fourth}`);
    if (!overlaps(base) && second !== 77) return { host: `10.${second}.${third}.${fourth + 1}`, kiln: `10.${second}.${third}.${fourth + 2}` };
  }
  throw new Error('no free /30 in 10.200.0.0/13 for the admin API link');
}

export async function createNetnsLab(opts: { taps: number }): Promise<NetnsLab> {
  await sweepStaleLabs();
  const id = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const serverNs = `kiln-e2e-${id}-srv`;
  const lanNs = `kiln-e2e-${id}-lan`;
  const hostVeth = `ke${randomBytes(5).toString('hex')}`; // IFNAMSIZ: 15 characters at most
  const taps = Array.from({ length: opts.taps }, (_, i) => `tap${i}`);
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-e2e-lab-'));
  let dnsmasq: ChildProcess | null = null;
  let dnsmasqLog = '';
  let apiIp = '';

  const destroy = async () => {
    if (dnsmasq !== null && dnsmasq.exitCode === null && dnsmasq.signalCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      dnsmasq.kill('SIGTERM');
      await exited;
    }
    await deleteNamespace(lanNs);
    await deleteNamespace(serverNs);
    // Deleting Kiln's namespace removes api0 and with it its peer; this only covers a half-built lab.
    await runCommand('ip', ['link', 'del', hostVeth], { allowFailure: true });
    await rm(tmp, { recursive: true, force: true });
  };

  try {
    const api = await pickApiSubnet();
    apiIp = api.kiln;
    await ip('netns', 'add', serverNs);
    await ip('netns', 'add', lanNs);
    for (const ns of [serverNs, lanNs]) await ip('-n', ns, 'link', 'set', 'lo', 'up');

    await ip('-n', lanNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await ip('-n', lanNs, 'addr', 'add', `${LAB_DHCP_IP}/24`, 'dev', 'br0');
    await ip('-n', lanNs, 'addr', 'add', `${LAB_IPV6_PREFIX}2/64`, 'dev', 'br0', 'nodad');
    await ip('-n', lanNs, 'link', 'set', 'br0', 'up');

    await ip('-n', serverNs, 'link', 'add', 'lab0', 'type', 'veth', 'peer', 'name', 'srv0', 'netns', lanNs);
    await ip('-n', lanNs, 'link', 'set', 'srv0', 'master', 'br0', 'up');
    await ip('-n', serverNs, 'addr', 'add', `${LAB_SERVER_IP}/24`, 'dev', 'lab0');
    await ip('-n', serverNs, 'link', 'set', 'lab0', 'up');
    // Node cannot bind a socket to a device: its limited broadcasts need this route, or send() fails ENETUNREACH.
    await ip('-n', serverNs, 'route', 'add', '255.255.255.255/32', 'dev', 'lab0');

    for (const tap of taps) {
      await ip('-n', lanNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
      await ip('-n', lanNs, 'link', 'set', tap, 'master', 'br0', 'up');
    }

    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'api0', 'netns', serverNs);
    await ip('addr', 'add', `${api.host}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await ip('-n', serverNs, 'addr', 'add', `${api.kiln}/30`, 'dev', 'api0');
    await ip('-n', serverNs, 'link', 'set', 'api0', 'up');

    // Addresses only, no boot options: finding the boot file is Kiln's proxyDHCP's job. The RA matters:
    // without one, iPXE waits about 13 s for IPv6 autoconfiguration on every boot (lab notes).
    const proc = spawn('ip', [
      'netns', 'exec', lanNs, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces',
      `--dhcp-range=${LAB_SUBNET_PREFIX}.100,${LAB_SUBNET_PREFIX}.199,255.255.255.0,1h`, `--dhcp-range=${LAB_IPV6_PREFIX},ra-only`, '--enable-ra',
      `--dhcp-leasefile=${join(tmp, 'leases')}`, `--pid-file=${join(tmp, 'dnsmasq.pid')}`, '--user=root', '--log-dhcp', '--log-facility=-',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    dnsmasq = proc;
    const onLog = (d: Buffer) => (dnsmasqLog = (dnsmasqLog + d.toString()).slice(-128 * 1024));
    proc.stdout.on('data', onLog);
    proc.stderr.on('data', onLog);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dnsmasq did not start:\n${dnsmasqLog}`)), 10_000);
      const check = () => {
        if (/DHCP, IP range/.test(dnsmasqLog)) {
          clearTimeout(t);
          resolve();
        }
      };
      proc.stderr.on('data', check);
      proc.stdout.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`dnsmasq exited with ${code}:\n${dnsmasqLog}`));
      });
    });
  } catch (err) {
    await destroy();
    throw err;
  }

  return { serverNs, lanNs, serverIp: LAB_SERVER_IP, apiIp, taps, dhcpLog: () => dnsmasqLog, destroy };
}
