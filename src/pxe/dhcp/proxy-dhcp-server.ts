// The proxyDHCP listener: UDP 67 and 4011 sockets that decode, ask decidePxeReply, and send the answer.
import dgram from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { LogLimiter, type PxeLog } from '../log-limiter.js';
import { DhcpDecodeError, DhcpOption, decodeDhcp, encodeDhcp, ipToBytes, type DhcpPacket } from './dhcp-codec.js';
import { decidePxeReply, type PxeClient, type PxePolicyContext, type PxePort } from './pxe-policy.js';

export interface ProxyDhcpOptions extends PxePolicyContext {
  /**
   * Bind address, default 0.0.0.0. On Linux a socket bound to a unicast address does not receive
   * broadcasts, so port 67 only sees DISCOVERs when this stays 0.0.0.0 (or a relay unicasts to us).
   */
  address?: string;
  /** Default 67 and 4011; 0 picks a free port (tests). */
  ports?: { dhcp: number; pxe: number };
  /** Where broadcast replies go, default 255.255.255.255 (a subnet's directed broadcast also works). */
  broadcastAddress?: string;
  /** The client's DHCP port for replies on the 67 path, default 68 (tests use a high port). */
  clientPort?: number;
  /** Called for every request answered; a throwing callback is logged and does not stop the listener. */
  onClient?: (event: PxeClientEvent) => void;
  log: PxeLog;
}

export interface PxeClientEvent extends PxeClient {
  via: PxePort;
  /** What the client was told to boot: a TFTP file name or an HTTP URL. */
  bootFile: string;
}

export interface ProxyDhcpServer {
  /** The bound ports (the real ones when 0 was asked for). */
  ports: { dhcp: number; pxe: number };
  close(): Promise<void>;
}

const DHCP_SERVER_PORT = 67;

export async function startProxyDhcp(opts: ProxyDhcpOptions): Promise<ProxyDhcpServer> {
  // Fail at start, not on the first packet, when the addresses cannot go on the wire.
  ipToBytes(opts.serverIp);
  if (opts.tftpServerIp !== undefined) ipToBytes(opts.tftpServerIp);
  const address = opts.address ?? '0.0.0.0';
  const limiter = new LogLimiter();
  const target = { broadcastAddress: opts.broadcastAddress ?? '255.255.255.255', clientPort: opts.clientPort ?? 68 };

  const sockets: Socket[] = [];
  try {
    const dhcp = await bindSocket(address, opts.ports?.dhcp ?? DHCP_SERVER_PORT, sockets);
    const pxe = await bindSocket(address, opts.ports?.pxe ?? 4011, sockets);
    for (const [via, socket] of [['dhcp', dhcp], ['pxe', pxe]] as const) {
      socket.on('message', (msg, rinfo) => handle(via, socket, msg, rinfo));
      socket.on('error', (err) => opts.log.warn({ err, via }, 'proxyDHCP socket error'));
    }
    return {
      ports: { dhcp: dhcp.address().port, pxe: pxe.address().port },
      close: () => closeSockets(sockets),
    };
  } catch (err) {
    await closeSockets(sockets);
    throw err;
  }

  function handle(via: PxePort, socket: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    try {
      let req: DhcpPacket;
      try {
        req = decodeDhcp(msg);
      } catch (err) {
        if (!(err instanceof DhcpDecodeError)) throw err;
        const fields = limiter.admit('malformed', { from: rinfo.address, via, reason: err.reason, bytes: msg.length });
        if (fields !== null) opts.log.warn(fields, `proxyDHCP dropped a malformed packet: ${err.message}`);
        return;
      }
      const decision = decidePxeReply(req, opts, via);
      if ('ignore' in decision) {
        const fields = limiter.admit('ignored', { from: rinfo.address, via, reason: decision.ignore });
        if (fields !== null) opts.log.debug(fields, 'proxyDHCP ignored a request');
        return;
      }
      const { reply, client } = decision;
      const to = replyTarget(req, via, rinfo, target);
      const bootFile = reply.options.get(DhcpOption.bootfileName)?.toString('latin1') ?? reply.file;
      socket.send(encodeDhcp(reply), to.port, to.address, (err) => {
        if (err === null) return;
        // ENETUNREACH on a broadcast usually means no route for 255.255.255.255 (a namespace without a default route).
        const fields = limiter.admit('send', { err, to, mac: client.mac });
        if (fields !== null) opts.log.warn(fields, 'proxyDHCP could not send a reply');
      });
      opts.log.info({ mac: client.mac, arch: client.arch, vendorClass: client.vendorClass, ipxe: client.isIpxe, via, bootFile, to }, via === 'dhcp' ? 'proxyDHCP offer' : 'proxyDHCP ack');
      if (opts.onClient !== undefined) {
        try {
          opts.onClient({ ...client, via, bootFile });
        } catch (err) {
          opts.log.warn({ err, mac: client.mac }, 'proxyDHCP onClient callback failed');
        }
      }
    } catch (err) {
      // A bug must cost one packet, never the listener.
      const fields = limiter.admit('internal', { err, from: rinfo.address, via });
      if (fields !== null) opts.log.warn(fields, 'proxyDHCP failed to handle a packet');
    }
  }
}

/**
 * Where an answer goes. 4011: back to the sender. 67: to the relay (giaddr) when relayed, to the client's
 * address when it has one (ciaddr), else broadcast, since the client has no address to unicast to yet.
 */
export function replyTarget(
  req: DhcpPacket,
  via: PxePort,
  source: { address: string; port: number },
  opts: { broadcastAddress: string; clientPort: number },
): { address: string; port: number } {
  if (via === 'pxe') return { address: source.address, port: source.port };
  if (req.giaddr !== '0.0.0.0') return { address: req.giaddr, port: DHCP_SERVER_PORT };
  if (req.ciaddr !== '0.0.0.0') return { address: req.ciaddr, port: opts.clientPort };
  return { address: opts.broadcastAddress, port: opts.clientPort };
}

async function bindSocket(address: string, port: number, sockets: Socket[]): Promise<Socket> {
  // reuseAddr: a site DHCP server (or dnsmasq) on the same host may hold port 67 as well.
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ port, address }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  socket.setBroadcast(true);
  return socket;
}

async function closeSockets(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          try {
            s.close(() => resolve());
          } catch {
            resolve(); // never bound, or already closed
          }
        }),
    ),
  );
}
