import { describe, expect, it } from 'vitest';
import { TftpTransfer, type TransferConfig, type TransferSend } from './tftp-transfer.js';

const make = (over: Partial<TransferConfig>): TftpTransfer =>
  new TftpTransfer({ size: 1000, blksize: 512, windowsize: 1, maxRetries: 3, oack: null, ...over });

/** Block numbers of the DATA packets in a batch, or 'oack'. */
const blocks = (sends: TransferSend[]): (number | 'oack')[] => sends.map((s) => (s.kind === 'oack' ? 'oack' : s.block));

describe('TftpTransfer, lock-step (windowsize 1)', () => {
  it('sends a short final block and finishes on its ACK', () => {
    const t = make({ size: 1000 });
    expect(t.start()).toEqual([{ kind: 'data', block: 1, wireBlock: 1, offset: 0, length: 512 }]);
    expect(t.onAck(1)).toEqual([{ kind: 'data', block: 2, wireBlock: 2, offset: 512, length: 488 }]);
    expect(t.state).toBe('running');
    expect(t.onAck(2)).toEqual([]);
    expect(t.state).toBe('done');
  });

  it('ends a file of an exact multiple of blksize with an empty block', () => {
    const t = make({ size: 1024 });
    expect(t.lastBlock).toBe(3);
    t.start();
    t.onAck(1);
    expect(t.onAck(2)).toEqual([{ kind: 'data', block: 3, wireBlock: 3, offset: 1024, length: 0 }]);
    t.onAck(3);
    expect(t.state).toBe('done');
  });

  it('sends one empty block for an empty file', () => {
    const t = make({ size: 0 });
    expect(t.start()).toEqual([{ kind: 'data', block: 1, wireBlock: 1, offset: 0, length: 0 }]);
    t.onAck(1);
    expect(t.state).toBe('done');
  });

  it('resends the block when the ACK is lost, and moves on when it comes', () => {
    const t = make({ size: 2000 });
    t.start();
    expect(blocks(t.onTimeout())).toEqual([1]);
    expect(blocks(t.onAck(1))).toEqual([2]);
    expect(t.retransmits).toBe(1);
  });

  it('does not answer a duplicate ACK (sorcerer’s apprentice)', () => {
    const t = make({ size: 2000 });
    t.start();
    expect(blocks(t.onAck(1))).toEqual([2]);
    expect(t.onAck(1)).toEqual([]);
    expect(t.onAck(0)).toEqual([]);
    expect(blocks(t.onAck(2))).toEqual([3]);
  });

  it('ignores ACKs for blocks not sent yet', () => {
    const t = make({ size: 5000 });
    t.start();
    expect(t.onAck(5)).toEqual([]);
    expect(t.state).toBe('running');
  });

  it('gives up after the bounded number of retries', () => {
    const t = make({ maxRetries: 3 });
    t.start();
    for (let i = 0; i < 3; i++) expect(blocks(t.onTimeout())).toEqual([1]);
    expect(t.onTimeout()).toEqual([]);
    expect(t.state).toBe('failed');
    expect(t.onAck(1)).toEqual([]);
  });

  it('resets the retry budget on progress', () => {
    const t = make({ size: 2000, maxRetries: 2 });
    t.start();
    t.onTimeout();
    t.onTimeout();
    t.onAck(1);
    t.onTimeout();
    t.onTimeout();
    expect(t.state).toBe('running');
  });
});

describe('TftpTransfer with an OACK', () => {
  const oack = new Map([['blksize', '512']]);

  it('starts with the OACK and sends DATA 1 on ACK 0', () => {
    const t = make({ oack });
    expect(t.start()).toEqual([{ kind: 'oack', options: oack }]);
    expect(t.onAck(1)).toEqual([]);
    expect(blocks(t.onAck(0))).toEqual([1]);
    // A late duplicate ACK 0 after data started is ignored.
    expect(t.onAck(0)).toEqual([]);
  });

  it('resends the OACK on timeout', () => {
    const t = make({ oack });
    t.start();
    expect(blocks(t.onTimeout())).toEqual(['oack']);
  });

  it('stops when the client aborts after the OACK (tsize probe)', () => {
    const t = make({ oack });
    t.start();
    t.abort();
    expect(t.state).toBe('failed');
    expect(t.onAck(0)).toEqual([]);
  });
});

describe('TftpTransfer with windowsize 4', () => {
  // 11 blocks: 10 full and a short one.
  const size = 10 * 512 + 100;

  it('sends a window per ACK of its last block', () => {
    const t = make({ size, windowsize: 4 });
    expect(blocks(t.start())).toEqual([1, 2, 3, 4]);
    expect(blocks(t.onAck(4))).toEqual([5, 6, 7, 8]);
    expect(blocks(t.onAck(8))).toEqual([9, 10, 11]);
    const last = t.onAck(11);
    expect(last).toEqual([]);
    expect(t.state).toBe('done');
  });

  it('restarts after the last block the client has when it ACKs part of a window', () => {
    const t = make({ size, windowsize: 4 });
    t.start();
    t.onAck(4);
    // Block 7 was lost: the client ACKs 6.
    expect(blocks(t.onAck(6))).toEqual([7, 8, 9, 10]);
    // The stale ACK 4 and a repeat of 6 change nothing.
    expect(t.onAck(4)).toEqual([]);
    expect(t.onAck(6)).toEqual([]);
  });

  it('resends the whole outstanding window on timeout', () => {
    const t = make({ size, windowsize: 4 });
    t.start();
    expect(blocks(t.onTimeout())).toEqual([1, 2, 3, 4]);
    t.onAck(2);
    expect(blocks(t.onTimeout())).toEqual([3, 4, 5, 6]);
  });

  it('handles the final short window and the exact-multiple empty block', () => {
    const t = make({ size: 4 * 512, windowsize: 4 });
    expect(blocks(t.start())).toEqual([1, 2, 3, 4]);
    const tail = t.onAck(4);
    expect(tail).toEqual([{ kind: 'data', block: 5, wireBlock: 5, offset: 2048, length: 0 }]);
    t.onAck(5);
    expect(t.state).toBe('done');
  });
});

describe('TftpTransfer past 65535 blocks', () => {
  it.each([1, 7, 64])('rolls the wire block number over to 0 (windowsize %i)', (windowsize) => {
    const size = 70_000 * 8 + 3;
    const t = make({ size, blksize: 8, windowsize });
    expect(t.lastBlock).toBe(70_001);
    let batch = t.start();
    const wire = new Map<number, number>();
    let rounds = 0;
    while (t.state === 'running') {
      const last = batch[batch.length - 1];
      if (last === undefined || last.kind !== 'data') throw new Error('expected data');
      for (const s of batch) if (s.kind === 'data') wire.set(s.block, s.wireBlock);
      batch = t.onAck(last.wireBlock);
      rounds++;
    }
    expect(t.state).toBe('done');
    expect(rounds).toBe(Math.ceil(70_001 / windowsize));
    expect(wire.get(65_535)).toBe(65_535);
    expect(wire.get(65_536)).toBe(0);
    expect(wire.get(65_537)).toBe(1);
    expect(wire.get(70_001)).toBe(70_001 - 65_536);
  });

  it('ignores a stale ACK from before the wrap', () => {
    const t = make({ size: 70_000 * 8, blksize: 8 });
    t.start();
    for (let b = 1; b <= 65_536; b++) t.onAck(b & 0xffff);
    // Block 65537 (wire 1) is outstanding; an old ACK 65535 must not count as progress.
    expect(t.onAck(65_535)).toEqual([]);
    expect(t.onAck(1)).toEqual([expect.objectContaining({ block: 65_538, wireBlock: 2 })]);
  });
});
