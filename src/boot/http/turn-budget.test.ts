import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TurnBudget } from './turn-budget.js';

describe('TurnBudget', () => {
  it('lets writes through at once until the turn\'s budget is spent, then one turn\'s worth per turn, first come first served', async () => {
    const budget = new TurnBudget(100);
    expect(budget.take(60)).toBeNull();
    expect(budget.take(60)).toBeNull(); // the budget was not yet spent when this was asked
    const order: string[] = [];
    const waits = ['a', 'b', 'c', 'd'].map((name) => budget.take(60)!.then(() => order.push(name)));
    for (const w of waits) expect(w).toBeInstanceOf(Promise);
    // A turn's immediates run in order: the budget's reset, then ours.
    await nextTurn();
    expect(order).toEqual(['a', 'b']);
    expect(budget.take(1)).not.toBeNull(); // c and d still wait: a newcomer queues behind them
    await nextTurn();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    await Promise.all(waits);
  });

  it('starts every turn with the whole budget', async () => {
    const budget = new TurnBudget(50);
    expect(budget.take(50)).toBeNull();
    expect(budget.take(1)).not.toBeNull();
    await nextTurn();
    await nextTurn();
    expect(budget.take(50)).toBeNull();
  });
});
