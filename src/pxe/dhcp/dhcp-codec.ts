// DHCPv4 wire codec (RFC 2131/2132): BOOTP header, magic cookie, options with RFC 3396 concatenation
// and RFC 2131 option overload on decode, and the PXE option 43 sub-option encoding. No I/O.

/** Option codes the PXE path reads or writes (RFC 2132, RFC 4578, PXE 2.1). */
export const DhcpOption = {
  pad: 0,
  vendorSpecific: 43,
  overload: 52,
  messageType: 53,
  serverId: 54,
  parameterRequestList: 55,
  maxMessageSize: 57,
  vendorClassId: 60,
  clientId: 61,
  bootfileName: 67,
  userClass: 77,
  clientArch: 93,
  clientNdi: 94,
  clientUuid: 97,
  ipxeEncapsulated: 175,
  end: 255,
} as const;

export const DhcpMessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

export interface DhcpPacket {
  /** 1 = BOOTREQUEST, 2 = BOOTREPLY. */
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The raw 16-byte client hardware address field; the MAC is its first `hlen` bytes. */
  chaddr: Buffer;
  sname: string;
  file: string;
  /** Option values by code, in order of first appearance; repeated options are concatenated (RFC 3396). */
  options: Map<number, Buffer>;
}

export type DhcpDecodeReason =
  | 'truncated-header'
  | 'missing-cookie'
  | 'option-truncated'
  | 'option-overrun'
  | 'bad-hlen'
  | 'bad-overload'
  | 'suboption-overrun';

export class DhcpDecodeError extends Error {
  readonly reason: DhcpDecodeReason;
  constructor(reason: DhcpDecodeReason, message: string) {
    super(message);
    this.name = 'DhcpDecodeError';
    this.reason = reason;
  }
}

/** Raised by encodeDhcp for a packet that cannot be put on the wire (a programming error, not input). */
export class DhcpEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DhcpEncodeError';
  }
}

const MAGIC_COOKIE = 0x63825363;
const HEADER_LENGTH = 236;
const OPTIONS_START = HEADER_LENGTH + 4;
const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;
/** RFC 1542 §3.3: some relays and old PXE ROMs drop BOOTP messages shorter than 300 octets. */
const MIN_PACKET_LENGTH = 300;

export function decodeDhcp(buf: Buffer): DhcpPacket {
  if (buf.length < HEADER_LENGTH) {
    throw new DhcpDecodeError('truncated-header', `packet of ${buf.length} bytes is shorter than the BOOTP header`);
  }
  if (buf.length < OPTIONS_START || buf.readUInt32BE(HEADER_LENGTH) !== MAGIC_COOKIE) {
    throw new DhcpDecodeError('missing-cookie', 'no DHCP magic cookie after the BOOTP header');
  }
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError('bad-hlen', `hardware address length ${hlen} exceeds 16`);

  const chunks = new Map<number, Buffer[]>();
  readOptionArea(buf, OPTIONS_START, buf.length, chunks);
  let sname = readCString(buf, SNAME_OFFSET, SNAME_LENGTH);
  let file = readCString(buf, FILE_OFFSET, FILE_LENGTH);
  const overload = chunks.get(DhcpOption.overload);
  if (overload !== undefined) {
    const v = Buffer.concat(overload);
    if (v.length !== 1 || v[0]! < 1 || v[0]! > 3) throw new DhcpDecodeError('bad-overload', 'option 52 must be one byte, 1 to 3');
    // RFC 3396 §5: the option field first, then `file`, then `sname`.
    if ((v[0]! & 1) !== 0) {
      readOptionArea(buf, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, chunks);
      file = '';
    }
    if ((v[0]! & 2) !== 0) {
      readOptionArea(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, chunks);
      sname = '';
    }
  }
  const options = new Map<number, Buffer>();
  for (const [code, parts] of chunks) options.set(code, parts.length === 1 ? parts[0]! : Buffer.concat(parts));

  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: readIp(buf, 12),
    yiaddr: readIp(buf, 16),
    siaddr: readIp(buf, 20),
    giaddr: readIp(buf, 24),
    // A copy: callers keep packets around, and the socket may reuse the receive buffer.
    chaddr: Buffer.from(buf.subarray(28, 44)),
    sname,
    file,
    options,
  };
}

function readOptionArea(buf: Buffer, start: number, end: number, into: Map<number, Buffer[]>): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === DhcpOption.end) return;
    if (code === DhcpOption.pad) {
      i++;
      continue;
    }
    if (i + 1 >= end) throw new DhcpDecodeError('option-truncated', `option ${code} at offset ${i} has no length byte`);
    const len = buf[i + 1]!;
    if (i + 2 + len > end) throw new DhcpDecodeError('option-overrun', `option ${code} at offset ${i} runs ${i + 2 + len - end} bytes past the end`);
    const parts = into.get(code);
    const value = Buffer.from(buf.subarray(i + 2, i + 2 + len));
    if (parts === undefined) into.set(code, [value]);
    else parts.push(value);
    i += 2 + len;
  }
  // A missing END option is tolerated: several PXE ROMs stop at the padding.
}

export function encodeDhcp(p: DhcpPacket): Buffer {
  const sname = Buffer.from(p.sname, 'latin1');
  const file = Buffer.from(p.file, 'latin1');
  if (sname.length >= SNAME_LENGTH) throw new DhcpEncodeError(`sname is ${sname.length} bytes; at most ${SNAME_LENGTH - 1} fit`);
  if (file.length >= FILE_LENGTH) throw new DhcpEncodeError(`file is ${file.length} bytes; at most ${FILE_LENGTH - 1} fit`);
  if (p.chaddr.length > 16) throw new DhcpEncodeError('chaddr is longer than 16 bytes');
  const header = Buffer.alloc(OPTIONS_START);
  header[0] = p.op;
  header[1] = p.htype;
  header[2] = p.hlen;
  header[3] = p.hops;
  header.writeUInt32BE(p.xid >>> 0, 4);
  header.writeUInt16BE(p.secs, 8);
  header.writeUInt16BE(p.flags, 10);
  writeIp(header, 12, p.ciaddr);
  writeIp(header, 16, p.yiaddr);
  writeIp(header, 20, p.siaddr);
  writeIp(header, 24, p.giaddr);
  p.chaddr.copy(header, 28);
  sname.copy(header, SNAME_OFFSET);
  file.copy(header, FILE_OFFSET);
  header.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);

  const parts: Buffer[] = [header];
  for (const [code, value] of p.options) {
    if (!Number.isInteger(code) || code <= DhcpOption.pad || code >= DhcpOption.end) throw new DhcpEncodeError(`option code ${code} cannot carry data`);
    // We never overload `file`/`sname`, so an option 52 would make the receiver misread them.
    if (code === DhcpOption.overload) throw new DhcpEncodeError('option 52 (overload) is not supported on encode');
    parts.push(encodeLongOption(code, value));
  }
  parts.push(Buffer.from([DhcpOption.end]));
  const length = parts.reduce((n, b) => n + b.length, 0);
  if (length < MIN_PACKET_LENGTH) parts.push(Buffer.alloc(MIN_PACKET_LENGTH - length));
  return Buffer.concat(parts);
}

/** RFC 3396: a value over 255 bytes is split into consecutive instances of the same option. */
function encodeLongOption(code: number, value: Buffer): Buffer {
  if (value.length === 0) return Buffer.from([code, 0]);
  const out: Buffer[] = [];
  for (let i = 0; i < value.length; i += 255) {
    const piece = value.subarray(i, i + 255);
    out.push(Buffer.from([code, piece.length]), piece);
  }
  return Buffer.concat(out);
}

/** Encodes encapsulated sub-options (option 43 for PXE), closed by an END sub-option as PXE 2.1 asks. */
export function encodeSubOptions(sub: ReadonlyMap<number, Buffer>): Buffer {
  const out: Buffer[] = [];
  for (const [code, value] of sub) {
    if (code <= 0 || code >= 255 || value.length > 255) throw new DhcpEncodeError(`sub-option ${code} cannot be encoded`);
    out.push(Buffer.from([code, value.length]), value);
  }
  out.push(Buffer.from([DhcpOption.end]));
  return Buffer.concat(out);
}

export function decodeSubOptions(buf: Buffer): Map<number, Buffer> {
  const chunks = new Map<number, Buffer[]>();
  try {
    readOptionArea(buf, 0, buf.length, chunks);
  } catch (err) {
    if (err instanceof DhcpDecodeError) throw new DhcpDecodeError('suboption-overrun', `bad encapsulated options: ${err.message}`);
    throw err;
  }
  const out = new Map<number, Buffer>();
  for (const [code, parts] of chunks) out.set(code, Buffer.concat(parts));
  return out;
}

function readCString(buf: Buffer, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('latin1');
}

function readIp(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Dotted-quad to 4 bytes; throws DhcpEncodeError on anything else. */
export function ipToBytes(ip: string): Buffer {
  const m = IPV4.exec(ip);
  const bytes = m === null ? [] : m.slice(1).map(Number);
  if (bytes.length !== 4 || bytes.some((b) => b > 255)) throw new DhcpEncodeError(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return Buffer.from(bytes);
}

function writeIp(buf: Buffer, offset: number, ip: string): void {
  ipToBytes(ip).copy(buf, offset);
}
