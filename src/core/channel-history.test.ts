import { describe, expect, it } from 'vitest';
import { replayChannel, rollbackTarget } from './channel-history.js';
import type { ChannelAction } from './types.js';

type Entry = { action: ChannelAction; toVersion: string };

const promote = (v: string): Entry => ({ action: 'promote', toVersion: v });

/** Applies a rollback the way ImageService does: to the target computed from the history so far. */
function rollback(history: Entry[]): Entry[] {
  const target = rollbackTarget(history);
  if (target === null) throw new Error('no previous version');
  return [...history, { action: 'rollback', toVersion: target }];
}

describe('replayChannel / rollbackTarget', () => {
  it('an empty history has no current version and nothing to roll back to', () => {
    expect(replayChannel([])).toEqual([]);
    expect(rollbackTarget([])).toBeNull();
  });

  it('a single promote has no previous version', () => {
    const h = [promote('v1')];
    expect(replayChannel(h)).toEqual(['v1']);
    expect(rollbackTarget(h)).toBeNull();
  });

  it('promote v1, v2, v3: current is v3 and a rollback lands on v2', () => {
    const h = [promote('v1'), promote('v2'), promote('v3')];
    expect(replayChannel(h)).toEqual(['v1', 'v2', 'v3']);
    expect(rollbackTarget(h)).toBe('v2');
  });

  it('rollback twice walks back v3 → v2 → v1, then there is no previous', () => {
    let h = [promote('v1'), promote('v2'), promote('v3')];
    h = rollback(h);
    expect(h.at(-1)).toEqual({ action: 'rollback', toVersion: 'v2' });
    expect(replayChannel(h)).toEqual(['v1', 'v2']);
    expect(rollbackTarget(h)).toBe('v1');
    h = rollback(h);
    expect(h.at(-1)).toEqual({ action: 'rollback', toVersion: 'v1' });
    expect(replayChannel(h)).toEqual(['v1']);
    expect(rollbackTarget(h)).toBeNull();
  });

  it('a promote after a rollback stacks on the version rolled back to', () => {
    let h = [promote('v1'), promote('v2'), promote('v3')];
    h = rollback(h); // at v2
    h = [...h, promote('v4')];
    expect(replayChannel(h)).toEqual(['v1', 'v2', 'v4']);
    expect(rollbackTarget(h)).toBe('v2');
    h = rollback(h); // at v2
    expect(rollbackTarget(h)).toBe('v1');
  });

  it('a rolled-back version is not returned to by a later rollback', () => {
    let h = [promote('v1'), promote('v2')];
    h = rollback(h); // v2 was bad, at v1
    h = [...h, promote('v3')];
    expect(rollbackTarget(h)).toBe('v1');
  });

  it('trusts a rollback record that disagrees with the stack', () => {
    const h: Entry[] = [promote('v1'), promote('v2'), promote('v3'), { action: 'rollback', toVersion: 'v1' }];
    expect(replayChannel(h).at(-1)).toBe('v1');
  });
});
