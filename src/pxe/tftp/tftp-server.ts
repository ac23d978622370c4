// The read-only TFTP listener: RRQs on one port, each transfer on its own ephemeral socket (its TID),
// driven by TftpTransfer and fed from a virtual-file hook or from files under the root, read per window.
import dgram from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';
import { open, realpath } from 'node:fs/promises';
import { LogLimiter, type PxeLog } from '../log-limiter.js';
import { BLKSIZE_MAX, BLKSIZE_MIN, negotiateTftpOptions } from './negotiate-tftp-options.js';
import { normalizeTftpPath, resolveTftpPath } from './resolve-tftp-path.js';
import { TftpDecodeError, TftpErrorCode, TftpOpcode, blockHeader, decodeTftp, encodeTftp, type TftpPacket } from './tftp-codec.js';
import { TftpTransfer, type TransferSend } from './tftp-transfer.js';

export interface TftpServerOptions {
  /** Bind address, default 0.0.0.0. Transfer sockets bind the same address. */
  address?: string;
  /** Default 69; 0 picks a free port (tests). */
  port?: number;
  /** Directory served read-only; null serves only what `resolve` supplies. */
  root: string | null;
  /** Generated files (e.g. `autoexec.ipxe`), asked first with the root-relative path; null falls through to the root. */
  resolve?: (path: string) => Promise<Buffer | null>;
  /** Largest blksize agreed to, default 1468 (a 1500-byte Ethernet MTU without IP fragmentation). */
  maxBlksize?: number;
  /** Largest windowsize agreed to (RFC 7440), default 64. */
  maxWindowsize?: number;
  /** Retransmission timeout when the client does not negotiate one, default 1000 ms. */
  timeoutMs?: number;
  /** Retransmissions of one window before the transfer is abandoned, default 5. */
  retries?: number;
  /** Concurrent transfers beyond this are refused with an ERROR, default 1000. */
  maxTransfers?: number;
  /** Called once per RRQ when it ends, however it ends. */
  onTransfer?: (event: TftpTransferEvent) => void;
  log: PxeLog;
}

export interface TftpTransferEvent {
  /** The root-relative path, or the name as requested when it was refused. */
  path: string;
  from: { address: string; port: number };
  outcome: 'done' | 'failed' | 'aborted-by-client' | 'not-found' | 'denied' | 'refused';
  size: number | null;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
  activeTransfers(): number;
}

/** Where a transfer's bytes come from. */
interface BlockSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

interface Session {
  /** The RRQ that started it, to tell a retransmission from a new request on the same client port. */
  request: Buffer;
  abort(outcome: 'failed' | 'aborted-by-client'): Promise<void>;
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const address = opts.address ?? '0.0.0.0';
  const limits = {
    maxBlksize: opts.maxBlksize ?? 1468,
    maxWindowsize: opts.maxWindowsize ?? 64,
    timeoutMs: opts.timeoutMs ?? 1000,
  };
  const retries = opts.retries ?? 5;
  const maxTransfers = opts.maxTransfers ?? 1000;
  if (!Number.isInteger(limits.maxBlksize) || limits.maxBlksize < BLKSIZE_MIN || limits.maxBlksize > BLKSIZE_MAX) throw new RangeError(`maxBlksize must be ${BLKSIZE_MIN}..${BLKSIZE_MAX}`);
  if (!Number.isInteger(limits.maxWindowsize) || limits.maxWindowsize < 1 || limits.maxWindowsize > 64) throw new RangeError('maxWindowsize must be 1..64');
  // Resolved once: the jail check compares real paths, so the root itself may be a symlink.
  const rootReal = opts.root === null ? null : await realpath(opts.root);
  const limiter = new LogLimiter();
  const sessions = new Map<string, Session>();
  let closed = false;

  const main = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    main.once('error', reject);
    main.bind({ port: opts.port ?? 69, address }, () => {
      main.off('error', reject);
      resolve();
    });
  });
  main.on('error', (err) => opts.log.warn({ err }, 'TFTP socket error'));
  main.on('message', (msg, rinfo) => {
    try {
      onRequest(msg, rinfo);
    } catch (err) {
      warnLimited('internal', { err, from: rinfo.address }, 'TFTP failed to handle a request');
    }
  });

  return {
    port: main.address().port,
    activeTransfers: () => sessions.size,
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.all([new Promise<void>((resolve) => main.close(() => resolve())), ...[...sessions.values()].map((s) => s.abort('failed'))]);
    },
  };

  function warnLimited(key: string, fields: Record<string, unknown>, msg: string): void {
    const admitted = limiter.admit(key, fields);
    if (admitted !== null) opts.log.warn(admitted, msg);
  }

  /** Best effort: an ERROR that does not arrive is like one that was ignored. Resolves once sent, so the socket may close. */
  function sendError(socket: Socket, to: { address: string; port: number }, code: number, message: string): Promise<void> {
    return new Promise((resolve) => {
      try {
        socket.send(encodeTftp({ op: 'error', code, message }), to.port, to.address, () => resolve());
      } catch {
        resolve(); // the socket closed under us (server shutdown): there is nobody left to tell
      }
    });
  }

  function onRequest(msg: Buffer, rinfo: RemoteInfo): void {
    let pkt: TftpPacket;
    try {
      pkt = decodeTftp(msg);
    } catch (err) {
      if (!(err instanceof TftpDecodeError)) throw err;
      warnLimited('malformed', { from: rinfo.address, reason: err.reason, bytes: msg.length }, `TFTP dropped a malformed packet: ${err.message}`);
      // Never answer an ERROR (RFC 1350), nor something too short to be TFTP at all.
      if (err.opcode !== null && err.opcode !== TftpOpcode.error) {
        void sendError(main, rinfo, TftpErrorCode.illegalOperation, err.reason === 'unknown-opcode' ? 'illegal TFTP operation' : 'malformed request');
      }
      return;
    }
    switch (pkt.op) {
      case 'rrq':
        startSession(pkt.filename, pkt.mode, pkt.options, rinfo, msg);
        return;
      case 'wrq':
        warnLimited('write', { from: rinfo.address, file: pkt.filename }, 'TFTP refused a write request');
        void sendError(main, rinfo, TftpErrorCode.accessViolation, 'access violation: read-only server');
        return;
      case 'error':
        return;
      case 'data':
      case 'ack':
      case 'oack':
        void sendError(main, rinfo, TftpErrorCode.illegalOperation, 'illegal TFTP operation');
        return;
    }
  }

  function startSession(filename: string, mode: string, requested: Map<string, string>, rinfo: RemoteInfo, msg: Buffer): void {
    const from = { address: rinfo.address, port: rinfo.port };
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = sessions.get(key);
    if (existing !== undefined) {
      // The same RRQ again is a retransmission, which the running transfer answers. A different one from the
      // same port is a new request (OVMF reuses its port after aborting a tsize probe): it replaces the old.
      if (existing.request.equals(msg)) return;
      void existing.abort('aborted-by-client');
    }
    const report = (path: string, outcome: TftpTransferEvent['outcome'], size: number | null): void => {
      if (opts.onTransfer === undefined) return;
      try {
        opts.onTransfer({ path, from, outcome, size });
      } catch (err) {
        opts.log.warn({ err }, 'TFTP onTransfer callback failed');
      }
    };
    // Netascii is accepted and served as octet: boot files are binary, and converting line ends would corrupt them.
    if (mode !== 'octet' && mode !== 'netascii') {
      void sendError(main, rinfo, TftpErrorCode.illegalOperation, `unsupported mode ${mode}`);
      report(filename, 'refused', null);
      return;
    }
    if (sessions.size >= maxTransfers) {
      warnLimited('busy', { from: rinfo.address, active: sessions.size }, 'TFTP refused a transfer: too many active');
      void sendError(main, rinfo, TftpErrorCode.notDefined, 'server busy, try again');
      report(filename, 'refused', null);
      return;
    }
    const relative = normalizeTftpPath(filename);
    if (relative === null) {
      warnLimited('denied', { from: rinfo.address, file: filename }, 'TFTP refused a path outside the root');
      void sendError(main, rinfo, TftpErrorCode.accessViolation, 'access violation');
      report(filename, 'denied', null);
      return;
    }
    const file: string = relative;

    // Registered before the first await so that duplicates and close() see it.
    let source: BlockSource | null = null;
    let socket: Socket | null = null;
    let timer: NodeJS.Timeout | null = null;
    let transfer: TftpTransfer | null = null;
    let finished = false;
    let queue = Promise.resolve();
    let done: Promise<void> | null = null;
    const started = Date.now();
    const session: Session = {
      request: Buffer.from(msg),
      abort: async (outcome) => {
        await finish(outcome);
        // Let a step that is still opening the file or binding the socket see `finished` and clean up.
        await queue;
      },
    };
    sessions.set(key, session);

    const enqueue = (step: () => Promise<void>): void => {
      queue = queue.then(step).catch(async (err: unknown) => {
        warnLimited('transfer', { err, from: rinfo.address, file }, 'TFTP transfer failed');
        if (socket !== null && !finished) await sendError(socket, from, TftpErrorCode.notDefined, 'read error');
        return finish('failed');
      });
    };

    enqueue(async () => {
      const opened = await openSource(file);
      if (finished) {
        await opened.source?.close();
        return;
      }
      if (opened.source === null) {
        if (opened.outcome === 'denied') warnLimited('denied', { from: rinfo.address, file, reason: opened.reason }, 'TFTP refused a path');
        else opts.log.debug({ from: rinfo.address, file }, 'TFTP file not found');
        void sendError(main, rinfo, opened.outcome === 'denied' ? TftpErrorCode.accessViolation : TftpErrorCode.fileNotFound, opened.outcome === 'denied' ? 'access violation' : 'file not found');
        report(file, opened.outcome, null);
        if (sessions.get(key) === session) sessions.delete(key);
        finished = true;
        return;
      }
      source = opened.source;
      const negotiated = negotiateTftpOptions(requested, source.size, limits);
      transfer = new TftpTransfer({ size: source.size, blksize: negotiated.blksize, windowsize: negotiated.windowsize, maxRetries: retries, oack: negotiated.oack });
      const bound = await bindTransferSocket();
      if (finished) {
        bound.close();
        return;
      }
      socket = bound;
      socket.on('message', (m, r) => onTransferPacket(m, r, negotiated.timeoutMs));
      socket.on('error', (err) => opts.log.debug({ err, file }, 'TFTP transfer socket error'));
      opts.log.debug({ from: rinfo.address, file, size: source.size, blksize: negotiated.blksize, windowsize: negotiated.windowsize }, 'TFTP transfer started');
      await transmit(transfer.start(), negotiated.timeoutMs);
    });

    function onTransferPacket(msg: Buffer, r: RemoteInfo, timeoutMs: number): void {
      if (r.address !== from.address || r.port !== from.port) {
        // RFC 1350 §4: tell a stranger it has the wrong TID, and carry on.
        if (socket !== null && (msg.length < 2 || msg.readUInt16BE(0) !== TftpOpcode.error)) void sendError(socket, r, TftpErrorCode.unknownTransferId, 'unknown transfer ID');
        return;
      }
      let pkt: TftpPacket;
      try {
        pkt = decodeTftp(msg);
      } catch {
        return;
      }
      if (pkt.op === 'ack') {
        enqueue(async () => {
          if (transfer !== null) await transmit(transfer.onAck(pkt.block), timeoutMs);
        });
      } else if (pkt.op === 'error') {
        // OVMF and others probe with tsize and then abort; that is normal, not a failure worth a warning.
        opts.log.debug({ from: from.address, file, code: pkt.code, message: pkt.message }, 'TFTP client ended the transfer');
        transfer?.abort();
        enqueue(() => finish('aborted-by-client'));
      }
    }

    async function transmit(sends: TransferSend[], timeoutMs: number): Promise<void> {
      if (finished || transfer === null || socket === null || source === null) return;
      if (transfer.state !== 'running') {
        if (transfer.state === 'failed') await sendError(socket, from, TftpErrorCode.notDefined, 'transfer timed out');
        await finish(transfer.state);
        return;
      }
      if (sends.length === 0) return;
      const data = sends.filter((s) => s.kind === 'data');
      // One read per window: a window is at most 64 blocks, so memory stays bounded whatever the file size.
      let chunk: Buffer = Buffer.alloc(0);
      let base = 0;
      if (data.length > 0) {
        base = data[0]!.offset;
        const end = data[data.length - 1]!.offset + data[data.length - 1]!.length;
        chunk = await source.read(base, end - base);
        if (finished) return;
      }
      const s = socket;
      for (const item of sends) {
        if (item.kind === 'oack') s.send(encodeTftp({ op: 'oack', options: item.options }), from.port, from.address);
        else s.send([blockHeader(TftpOpcode.data, item.wireBlock), chunk.subarray(item.offset - base, item.offset - base + item.length)], from.port, from.address);
      }
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        enqueue(async () => {
          if (transfer !== null) await transmit(transfer.onTimeout(), timeoutMs);
        });
      }, timeoutMs);
    }

    function finish(outcome: 'done' | 'failed' | 'aborted-by-client'): Promise<void> {
      if (done !== null) return done;
      finished = true;
      if (timer !== null) clearTimeout(timer);
      if (sessions.get(key) === session) sessions.delete(key);
      const size = source?.size ?? null;
      if (transfer !== null) {
        const fields = { from: from.address, file, size, outcome, retransmits: transfer.retransmits, ms: Date.now() - started };
        if (outcome === 'done') opts.log.info(fields, 'TFTP transfer complete');
        else opts.log.debug(fields, 'TFTP transfer ended');
        report(file, outcome, size);
      }
      const s = socket;
      const src = source;
      done = Promise.all([
        s === null ? undefined : new Promise<void>((resolve) => s.close(() => resolve())),
        src?.close().catch(() => undefined),
      ]).then(() => undefined);
      return done;
    }
  }

  async function openSource(relative: string): Promise<{ source: BlockSource; outcome: 'done' } | { source: null; outcome: 'not-found' } | { source: null; outcome: 'denied'; reason: string }> {
    const virtual = opts.resolve === undefined ? null : await opts.resolve(relative);
    if (virtual !== null) return { source: bufferSource(virtual), outcome: 'done' };
    if (rootReal === null) return { source: null, outcome: 'not-found' };
    const resolved = await resolveTftpPath(rootReal, relative);
    if (resolved.kind === 'not-found') return { source: null, outcome: 'not-found' };
    if (resolved.kind === 'denied') return { source: null, outcome: 'denied', reason: resolved.reason };
    try {
      return { source: await fileSource(resolved.path), outcome: 'done' };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { source: null, outcome: 'not-found' };
      return { source: null, outcome: 'denied', reason: code ?? String(err) };
    }
  }

  async function bindTransferSocket(): Promise<Socket> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: 0, address }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return socket;
  }
}

function bufferSource(buf: Buffer): BlockSource {
  return { size: buf.length, read: async (offset, length) => buf.subarray(offset, offset + length), close: async () => undefined };
}

async function fileSource(path: string): Promise<BlockSource> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    return {
      size: st.size,
      read: async (offset, length) => {
        const buf = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) throw new Error('file shrank during the transfer');
          got += bytesRead;
        }
        return buf;
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}
