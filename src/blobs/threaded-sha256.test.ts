import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ThreadedSha256 } from './threaded-sha256.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ThreadedSha256', () => {
  it('digests exactly what it was given, in any chunking, on reused threads', async () => {
    for (const [size, chunk] of [[0, 1], [1, 1], [3 * 1024 * 1024 + 17, 65_536], [1024 * 1024, 1024 * 1024], [5_000_000, 1_000_003]] as const) {
      const data = randomBytes(size);
      const h = new ThreadedSha256();
      for (let off = 0; off < size; off += chunk) await h.update(data.subarray(off, off + chunk));
      expect(await h.digest(), `${size} bytes in ${chunk}-byte chunks`).toBe(sha256(data));
      h.release();
    }
  });

  it('asks the caller to wait once 4 MiB are queued, and the bytes it was given stay the caller\'s', async () => {
    const block = randomBytes(1024 * 1024);
    const h = new ThreadedSha256();
    let waits = 0;
    const whole = createHash('sha256');
    for (let i = 0; i < 48; i++) {
      block[0] = i; // the caller reuses its buffer: the hash must have copied it
      whole.update(block);
      const wait = h.update(block);
      if (wait !== null) {
        waits++;
        await wait;
      }
    }
    expect(waits).toBeGreaterThan(0);
    expect(await h.digest()).toBe(whole.digest('hex'));
    h.release();
  });

  it('a hash abandoned halfway leaves no trace in the next one', async () => {
    for (let i = 0; i < 4; i++) {
      const abandoned = new ThreadedSha256();
      await abandoned.update(randomBytes(3 * 1024 * 1024 + 5));
      await new Promise((r) => setTimeout(r, 20)); // let the thread hash what it was sent
      abandoned.release();
      const data = randomBytes(1000);
      const next = new ThreadedSha256();
      void next.update(data);
      expect(await next.digest()).toBe(sha256(data));
      next.release();
    }
  });

  it('a released hash refuses more work', async () => {
    const h = new ThreadedSha256();
    void h.update(Buffer.from('abc'));
    h.release();
    h.release();
    await expect(h.update(Buffer.from('d'))!).rejects.toThrow(/released/);
    await expect(h.digest()).rejects.toThrow(/released/);
    // The next hash (perhaps on a fresh thread) is unaffected.
    const next = new ThreadedSha256();
    void next.update(Buffer.from('abc'));
    expect(await next.digest()).toBe(sha256(Buffer.from('abc')));
    next.release();
  });
});
