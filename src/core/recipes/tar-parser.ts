// A streaming tar reader: entry headers (ustar, GNU long names, PAX paths) from chunks as they come,
// data skipped or, for entries the caller asks for, kept (small files such as an OCI index.json).
// Recipe uploads are checked with it without storing anything first, and OCI layers are listed with it
// for their whiteouts and symlink checks; it never writes anything anywhere.

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo' | 'other';

export interface TarEntry {
  /** Normalised: no leading `./` or `/`, no trailing `/`; '' is the archive's root directory. */
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  /** Symlink target as written, or a hard link's target entry (normalised like `name`). */
  linkname: string;
  /** The entry's bytes when `keep(name)` asked for them, else undefined. */
  data?: Buffer;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

const BLOCK = 512;
const TYPES: Record<string, TarEntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo' };
/** Longest GNU long name / PAX header this reader accepts; real ones are a few hundred bytes. */
const MAX_META = 1024 * 1024;

/** `./a//b/` → `a/b`; `/` and `./` → ''. Keeps `..` components (callers decide about them). */
export function normalizeTarName(name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.join('/');
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function octal(buf: Buffer, start: number, length: number): number {
  // GNU base-256 for sizes of 8 GiB and more: the high bit of the first byte is set.
  if ((buf[start]! & 0x80) !== 0) {
    let v = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const text = cString(buf, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`not a tar archive: bad number ${JSON.stringify(text.slice(0, 20))} in a header`);
  return parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = octal(header, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(data.toString('utf8', pos, space));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw new TarFormatError('not a tar archive: malformed PAX header');
    const record = data.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

type State =
  | { kind: 'header' }
  | { kind: 'data'; entry: TarEntry; remaining: number; padding: number; keep: Buffer[] | null }
  | { kind: 'meta'; type: 'L' | 'K' | 'x' | 'g'; remaining: number; padding: number; parts: Buffer[] }
  | { kind: 'end' };

/**
 * Feed it bytes with `write`, then call `end`. `onEntry` sees every entry in order; `keep(name)`
 * decides whose bytes are collected into `entry.data` (delivered once the entry is complete).
 */
export class TarParser {
  private pending: Buffer = Buffer.alloc(0);
  private state: State = { kind: 'header' };
  private longName: string | null = null;
  private longLink: string | null = null;
  private pax: Record<string, string> = {};
  private entries = 0;
  private bytes = 0;

  constructor(
    private readonly onEntry: (entry: TarEntry) => void,
    private readonly keep: (name: string) => boolean = () => false,
  ) {}

  /** Entries seen so far. */
  get count(): number {
    return this.entries;
  }

  write(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let pos = 0;
    for (;;) {
      const s = this.state;
      if (s.kind === 'end') {
        pos = this.pending.length; // trailing zero blocks and padding
        break;
      }
      if (s.kind === 'header') {
        if (this.pending.length - pos < BLOCK) break;
        this.header(this.pending.subarray(pos, pos + BLOCK));
        pos += BLOCK;
        continue;
      }
      const available = this.pending.length - pos;
      if (s.remaining > 0) {
        if (available === 0) break;
        const take = Math.min(available, s.remaining);
        const piece = this.pending.subarray(pos, pos + take);
        if (s.kind === 'data') s.keep?.push(Buffer.from(piece));
        else s.parts.push(Buffer.from(piece));
        s.remaining -= take;
        pos += take;
        continue;
      }
      if (available < s.padding) {
        s.padding -= available;
        pos += available;
        break;
      }
      pos += s.padding;
      s.padding = 0;
      if (s.kind === 'data') this.finishEntry(s.entry, s.keep);
      else this.finishMeta(s.type, Buffer.concat(s.parts));
      this.state = { kind: 'header' };
    }
    this.pending = this.pending.subarray(pos);
  }

  /** Checks the archive ended cleanly (at an entry boundary). */
  end(): void {
    const s = this.state;
    if (s.kind === 'data' || s.kind === 'meta') throw new TarFormatError('the tar archive is truncated (it ends inside an entry)');
    if (s.kind === 'header' && this.pending.length !== 0 && this.pending.some((b) => b !== 0)) throw new TarFormatError('the tar archive is truncated (it ends inside a header)');
    if (this.entries === 0) throw new TarFormatError(this.bytes === 0 ? 'the archive is empty' : 'not a tar archive: it has no entries');
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.state = { kind: 'end' };
      return;
    }
    if (!checksumOk(block)) throw new TarFormatError(this.entries === 0 ? 'not a tar archive (no valid header at the start)' : 'corrupt tar archive: a header checksum does not match');
    const typeflag = String.fromCharCode(block[156]!);
    const size = octal(block, 124, 12);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g') {
      if (size > MAX_META) throw new TarFormatError('a tar metadata header is larger than 1 MiB');
      this.state = { kind: 'meta', type: typeflag, remaining: size, padding, parts: [] };
      if (size === 0) this.finishMetaNow();
      return;
    }
    const magic = block.toString('latin1', 257, 263);
    let name = cString(block, 0, 100);
    // POSIX ustar splits long names into prefix/name; GNU tar ("ustar  ") uses those bytes otherwise.
    if (magic === 'ustar\0') {
      const prefix = cString(block, 345, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    if (this.longName !== null) name = this.longName;
    if (this.pax.path !== undefined) name = this.pax.path;
    let linkname = this.longLink ?? cString(block, 157, 100);
    if (this.pax.linkpath !== undefined) linkname = this.pax.linkpath;
    const paxSize = this.pax.size !== undefined ? Number(this.pax.size) : null;
    this.longName = null;
    this.longLink = null;
    this.pax = {};
    const type = TYPES[typeflag] ?? (typeflag === 'S' ? 'file' : 'other');
    const dataSize = paxSize !== null && Number.isInteger(paxSize) ? paxSize : size;
    const entry: TarEntry = {
      name: normalizeTarName(name),
      type,
      size: dataSize,
      mode: octal(block, 100, 8),
      linkname: type === 'hardlink' ? normalizeTarName(linkname) : linkname,
    };
    // Links, directories and devices carry no data whatever their size field says (POSIX).
    const carries = type === 'file' || type === 'other' ? dataSize : 0;
    const pad = (BLOCK - (carries % BLOCK)) % BLOCK;
    const keep = carries <= MAX_META && this.keep(entry.name) ? [] : null;
    this.state = { kind: 'data', entry, remaining: carries, padding: pad, keep };
    if (carries === 0) {
      this.finishEntry(entry, keep);
      this.state = { kind: 'header' };
    }
  }

  private finishMetaNow(): void {
    const s = this.state;
    if (s.kind !== 'meta') return;
    this.finishMeta(s.type, Buffer.alloc(0));
    this.state = { kind: 'header' };
  }

  private finishMeta(type: 'L' | 'K' | 'x' | 'g', data: Buffer): void {
    if (type === 'L') this.longName = cString(data, 0, data.length);
    else if (type === 'K') this.longLink = cString(data, 0, data.length);
    else if (type === 'x') this.pax = parsePax(data);
    // 'g' (global PAX) sets defaults nobody relies on for paths; ignored.
  }

  private finishEntry(entry: TarEntry, keep: Buffer[] | null): void {
    this.entries++;
    if (keep !== null) entry.data = Buffer.concat(keep);
    this.onEntry(entry);
  }
}

/** What a name means for an OCI layer: a whiteout of `target` (`.wh.<name>`), an opaque directory, or nothing. */
export function whiteoutOf(name: string): { kind: 'whiteout'; target: string } | { kind: 'opaque'; dir: string } | null {
  const slash = name.lastIndexOf('/');
  const dir = slash === -1 ? '' : name.slice(0, slash);
  const base = name.slice(slash + 1);
  if (base === '.wh..wh..opq') return { kind: 'opaque', dir };
  if (base.startsWith('.wh.') && base.length > 4) return { kind: 'whiteout', target: dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}` };
  return null;
}
