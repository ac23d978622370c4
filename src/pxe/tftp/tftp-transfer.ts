// The sender side of one TFTP read transfer as a state machine: events in (start, ACK, timeout), what to
// send out. It names byte ranges rather than holding data, so the server can read files in chunks.
import type { TftpOptions } from './tftp-codec.js';

export type TransferSend =
  | { kind: 'oack'; options: TftpOptions }
  /** `block` counts from 1 without limit; `wireBlock` is what goes in the packet (rolls over 65535 → 0). */
  | { kind: 'data'; block: number; wireBlock: number; offset: number; length: number };

export type TransferState = 'running' | 'done' | 'failed';

export interface TransferConfig {
  size: number;
  blksize: number;
  windowsize: number;
  /** Retransmissions of the same window before giving up. */
  maxRetries: number;
  oack: TftpOptions | null;
}

export class TftpTransfer {
  /** Number of DATA blocks; the last is shorter than blksize, and empty when the size is a multiple of it. */
  readonly lastBlock: number;
  private readonly cfg: TransferConfig;
  private current: TransferState = 'running';
  private oackPending = false;
  /** Highest block the client has acknowledged, and highest sent in the current window. */
  private acked = 0;
  private sentUpTo = 0;
  private retries = 0;
  private retransmitCount = 0;

  constructor(cfg: TransferConfig) {
    if (!Number.isInteger(cfg.blksize) || cfg.blksize < 1) throw new RangeError(`bad blksize ${cfg.blksize}`);
    if (!Number.isInteger(cfg.windowsize) || cfg.windowsize < 1 || cfg.windowsize > 32768) throw new RangeError(`bad windowsize ${cfg.windowsize}`);
    this.cfg = cfg;
    this.lastBlock = Math.floor(cfg.size / cfg.blksize) + 1;
  }

  get state(): TransferState {
    return this.current;
  }

  /** Retransmissions so far, for the log line at the end. */
  get retransmits(): number {
    return this.retransmitCount;
  }

  start(): TransferSend[] {
    if (this.cfg.oack !== null) {
      this.oackPending = true;
      return [{ kind: 'oack', options: this.cfg.oack }];
    }
    return this.nextWindow();
  }

  onAck(wireBlock: number): TransferSend[] {
    if (this.current !== 'running') return [];
    if (this.oackPending) {
      // ACK 0 acknowledges the OACK (RFC 2347); anything else is noise from an earlier exchange.
      if (wireBlock !== 0) return [];
      this.oackPending = false;
      this.retries = 0;
      return this.nextWindow();
    }
    // Only a block in the outstanding window moves us on. A repeat of an ACK we have already acted on
    // is ignored: answering it would double every packet from then on (the sorcerer's apprentice bug).
    // Our own timeout repeats the window if the client really is stuck.
    const ahead = (wireBlock - (this.acked & 0xffff) + 0x10000) & 0xffff;
    if (ahead === 0 || this.acked + ahead > this.sentUpTo) return [];
    this.acked += ahead;
    this.retries = 0;
    if (this.acked === this.lastBlock) {
      this.current = 'done';
      return [];
    }
    // A partial-window ACK means the client lost the block after it; resend from there (RFC 7440 §4).
    return this.nextWindow();
  }

  onTimeout(): TransferSend[] {
    if (this.current !== 'running') return [];
    if (++this.retries > this.cfg.maxRetries) {
      this.current = 'failed';
      return [];
    }
    this.retransmitCount++;
    if (this.oackPending && this.cfg.oack !== null) return [{ kind: 'oack', options: this.cfg.oack }];
    return this.blocks(this.acked + 1, this.sentUpTo);
  }

  /** The peer gave up (an ERROR packet) or the server is closing. */
  abort(): void {
    if (this.current === 'running') this.current = 'failed';
  }

  private nextWindow(): TransferSend[] {
    this.sentUpTo = Math.min(this.acked + this.cfg.windowsize, this.lastBlock);
    return this.blocks(this.acked + 1, this.sentUpTo);
  }

  private blocks(from: number, to: number): TransferSend[] {
    const out: TransferSend[] = [];
    for (let block = from; block <= to; block++) {
      const offset = (block - 1) * this.cfg.blksize;
      out.push({ kind: 'data', block, wireBlock: block & 0xffff, offset, length: Math.max(0, Math.min(this.cfg.blksize, this.cfg.size - offset)) });
    }
    return out;
  }
}
