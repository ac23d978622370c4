// TFTP wire codec (RFC 1350, options per RFC 2347): RRQ, WRQ, DATA, ACK, ERROR and OACK. No I/O.

export const TftpOpcode = { rrq: 1, wrq: 2, data: 3, ack: 4, error: 5, oack: 6 } as const;

/** RFC 1350 §5 and RFC 2347 error codes. */
export const TftpErrorCode = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionRefused: 8,
} as const;

/** Option names are lower-cased (RFC 2347: case-insensitive); values are kept as sent. */
export type TftpOptions = Map<string, string>;

export type TftpPacket =
  | { op: 'rrq' | 'wrq'; filename: string; mode: string; options: TftpOptions }
  | { op: 'data'; block: number; data: Buffer }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'oack'; options: TftpOptions };

export type TftpDecodeReason = 'truncated' | 'unknown-opcode' | 'unterminated-string' | 'bad-encoding' | 'empty-filename';

export class TftpDecodeError extends Error {
  readonly reason: TftpDecodeReason;
  /** The opcode when it could be read, so a server can avoid answering an ERROR with an ERROR. */
  readonly opcode: number | null;
  constructor(reason: TftpDecodeReason, message: string, opcode: number | null) {
    super(message);
    this.name = 'TftpDecodeError';
    this.reason = reason;
    this.opcode = opcode;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeTftp(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError('truncated', 'packet shorter than an opcode', null);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case TftpOpcode.rrq:
    case TftpOpcode.wrq: {
      const strings = readStrings(buf, 2, opcode);
      const [filename, mode, ...rest] = strings;
      if (filename === undefined || mode === undefined) throw new TftpDecodeError('truncated', 'request without filename and mode', opcode);
      if (filename === '') throw new TftpDecodeError('empty-filename', 'request with an empty filename', opcode);
      return { op: opcode === TftpOpcode.rrq ? 'rrq' : 'wrq', filename, mode: mode.toLowerCase(), options: readOptions(rest) };
    }
    case TftpOpcode.data:
      if (buf.length < 4) throw new TftpDecodeError('truncated', 'DATA without a block number', opcode);
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case TftpOpcode.ack:
      // Some clients pad ACKs; only the block number matters.
      if (buf.length < 4) throw new TftpDecodeError('truncated', 'ACK without a block number', opcode);
      return { op: 'ack', block: buf.readUInt16BE(2) };
    case TftpOpcode.error: {
      if (buf.length < 4) throw new TftpDecodeError('truncated', 'ERROR without a code', opcode);
      // The message is informational; accept a missing NUL and odd bytes rather than lose the code.
      const end = buf.indexOf(0, 4);
      return { op: 'error', code: buf.readUInt16BE(2), message: buf.subarray(4, end === -1 ? buf.length : end).toString('latin1') };
    }
    case TftpOpcode.oack:
      return { op: 'oack', options: readOptions(readStrings(buf, 2, opcode)) };
    default:
      throw new TftpDecodeError('unknown-opcode', `unknown opcode ${opcode}`, opcode);
  }
}

function readStrings(buf: Buffer, start: number, opcode: number): string[] {
  const out: string[] = [];
  let i = start;
  while (i < buf.length) {
    const end = buf.indexOf(0, i);
    if (end === -1) throw new TftpDecodeError('unterminated-string', `string at offset ${i} has no NUL terminator`, opcode);
    try {
      out.push(utf8.decode(buf.subarray(i, end)));
    } catch {
      throw new TftpDecodeError('bad-encoding', `string at offset ${i} is not UTF-8`, opcode);
    }
    i = end + 1;
  }
  return out;
}

function readOptions(strings: string[]): TftpOptions {
  const options: TftpOptions = new Map();
  // Unpaired trailing strings are padding some clients add; the first of duplicate names wins.
  for (let i = 0; i + 1 < strings.length; i += 2) {
    const name = strings[i]!.toLowerCase();
    if (name !== '' && !options.has(name)) options.set(name, strings[i + 1]!);
  }
  return options;
}

export function encodeTftp(p: TftpPacket): Buffer {
  switch (p.op) {
    case 'rrq':
    case 'wrq':
      return Buffer.concat([opcodeBytes(p.op === 'rrq' ? TftpOpcode.rrq : TftpOpcode.wrq), cstring(p.filename), cstring(p.mode), optionBytes(p.options)]);
    case 'data':
      return Buffer.concat([blockHeader(TftpOpcode.data, p.block), p.data]);
    case 'ack':
      return blockHeader(TftpOpcode.ack, p.block);
    case 'error':
      return Buffer.concat([blockHeader(TftpOpcode.error, p.code), cstring(p.message)]);
    case 'oack':
      return Buffer.concat([opcodeBytes(TftpOpcode.oack), optionBytes(p.options)]);
  }
}

/** The 4-byte DATA/ACK/ERROR header alone, so a sender can send it with a file slice and skip a copy. */
export function blockHeader(opcode: number, block: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(opcode, 0);
  b.writeUInt16BE(block, 2);
  return b;
}

function opcodeBytes(opcode: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(opcode, 0);
  return b;
}

function cstring(s: string): Buffer {
  // A NUL inside would end the string early on the other side.
  return Buffer.from(`${s.replaceAll('\0', '')}\0`, 'utf8');
}

function optionBytes(options: TftpOptions): Buffer {
  return Buffer.concat([...options].flatMap(([k, v]) => [cstring(k), cstring(v)]));
}
