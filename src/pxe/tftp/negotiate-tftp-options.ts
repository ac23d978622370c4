// Option negotiation for a read request: blksize (RFC 2348), timeout and tsize (RFC 2349), windowsize
// (RFC 7440). Unknown or invalid options are left out of the OACK, which RFC 2347 allows.
import type { TftpOptions } from './tftp-codec.js';

export interface TftpLimits {
  /** Largest block we agree to; larger requests are answered with this value. */
  maxBlksize: number;
  maxWindowsize: number;
  /** Retransmission timeout when the client does not ask for one. */
  timeoutMs: number;
}

export interface NegotiatedTransfer {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The OACK to send first, or null when no option was accepted (the transfer starts with DATA 1). */
  oack: TftpOptions | null;
}

export const BLKSIZE_MIN = 8;
export const BLKSIZE_MAX = 65464;
export const DEFAULT_BLKSIZE = 512;

export function negotiateTftpOptions(requested: TftpOptions, fileSize: number, limits: TftpLimits): NegotiatedTransfer {
  const oack: TftpOptions = new Map();
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs = limits.timeoutMs;

  const b = parseDecimal(requested.get('blksize'));
  if (b !== null && b >= BLKSIZE_MIN && b <= BLKSIZE_MAX) {
    blksize = Math.min(b, limits.maxBlksize);
    oack.set('blksize', String(blksize));
  }
  const t = parseDecimal(requested.get('timeout'));
  if (t !== null && t >= 1 && t <= 255) {
    timeoutMs = t * 1000;
    oack.set('timeout', String(t));
  }
  // RFC 2349 says a read request carries tsize 0; whatever the value, the answer is the real size.
  if (requested.has('tsize')) oack.set('tsize', String(fileSize));
  const w = parseDecimal(requested.get('windowsize'));
  if (w !== null && w >= 1 && w <= 65535) {
    windowsize = Math.min(w, limits.maxWindowsize);
    oack.set('windowsize', String(windowsize));
  }
  return { blksize, windowsize, timeoutMs, oack: oack.size > 0 ? oack : null };
}

function parseDecimal(v: string | undefined): number | null {
  if (v === undefined || !/^\d{1,10}$/.test(v)) return null;
  return Number(v);
}
