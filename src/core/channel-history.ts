// Channel history as a stack: a promote pushes, a rollback pops back to what was current before.
import type { ChannelHistoryEntry } from './types.js';

/** Replays history; returns the stack of versions, current on top. */
export function replayChannel(history: readonly Pick<ChannelHistoryEntry, 'action' | 'toVersion'>[]): string[] {
  const stack: string[] = [];
  for (const e of history) {
    if (e.action === 'promote') {
      stack.push(e.toVersion);
    } else {
      stack.pop();
      // A rollback records where it landed; the stack must agree, so trust the record.
      if (stack[stack.length - 1] !== e.toVersion) stack.push(e.toVersion);
    }
  }
  return stack;
}

/** The version a rollback would land on, or null when there is nothing earlier. */
export function rollbackTarget(history: readonly Pick<ChannelHistoryEntry, 'action' | 'toVersion'>[]): string | null {
  const stack = replayChannel(history);
  return stack.length >= 2 ? stack[stack.length - 2]! : null;
}
