import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LogLimiter, type PxeLog } from './log-limiter.js';

describe('LogLimiter', () => {
  it('lets a burst through per key, then reports how many it dropped when the window turns', () => {
    let now = 0;
    const limiter = new LogLimiter({ burst: 2, windowMs: 1000, now: () => now });
    expect(limiter.admit('bad', { n: 1 })).toEqual({ n: 1 });
    expect(limiter.admit('bad', { n: 2 })).toEqual({ n: 2 });
    expect(limiter.admit('bad', { n: 3 })).toBeNull();
    expect(limiter.admit('bad', { n: 4 })).toBeNull();
    expect(limiter.admit('other', { n: 5 })).toEqual({ n: 5 });
    now = 1000;
    expect(limiter.admit('bad', { n: 6 })).toEqual({ n: 6, suppressed: 2 });
    expect(limiter.admit('bad', { n: 7 })).toEqual({ n: 7 });
  });

  it('takes a pino logger as a PxeLog', () => {
    const log: PxeLog = pino({ level: 'silent' });
    expect(() => log.warn({ a: 1 }, 'x')).not.toThrow();
  });
});
