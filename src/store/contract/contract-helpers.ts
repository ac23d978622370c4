// Small helpers the store contract case files share.
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { ErrorCode } from '../../core/error-catalogue.js';
import { KilnError } from '../../core/kiln-error.js';

/** A fixed time for records whose timestamps the case does not look at. */
export const T = '2030-01-01T00:00:00.000Z';

export const sha = (seed: string): string => createHash('sha256').update(seed).digest('hex');

/** Awaits `p`, asserting it rejects with a KilnError of `code`. */
export async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(KilnError);
  expect((err as KilnError).code).toBe(code);
}
