// RFC 9110 Range parsing for `bytes` ranges: single, multiple, suffix and open-ended.
import type { ByteRange } from '../../core/ports.js';

export type RangeRequest = { kind: 'full' } | { kind: 'ranges'; ranges: ByteRange[] } | { kind: 'unsatisfiable' };

/** More parts than this is abuse (RFC 9110 §14.2 allows ignoring such a Range). */
const MAX_PARTS = 64;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  // A Range we do not understand is ignored, as RFC 9110 asks: send the whole representation.
  if (m === null) return { kind: 'full' };
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0 || specs.length > MAX_PARTS) return { kind: 'full' };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (r === null || (r[1] === '' && r[2] === '')) return { kind: 'full' };
    let start: number;
    let end: number;
    if (r[1] === '') {
      const suffix = Number(r[2]);
      if (suffix === 0) continue;
      start = Math.max(0, size - suffix);
      end = size - 1;
    } else {
      start = Number(r[1]);
      end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1);
      if (r[2] !== '' && Number(r[2]) < start) return { kind: 'full' };
      if (start >= size) continue;
    }
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return { kind: 'full' };
    ranges.push({ start, end });
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  // Overlapping parts multiply the work for nothing; serve such requests whole.
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start <= sorted[i - 1]!.end) return { kind: 'full' };
  return { kind: 'ranges', ranges };
}
