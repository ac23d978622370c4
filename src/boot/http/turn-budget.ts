// Bounds the artifact bytes handed to sockets in one turn of the event loop. Writing from memory
// chunks never waits for a disk read, so without a bound one turn could write hundreds of MiB to
// hundreds of sockets while script requests queue behind it (storm script p99 went from 1.1 to 1.6 s
// when chunks came from memory). Writers past the budget wait for the next turn, first come first
// served, which also shares the bandwidth evenly between downloads.

export class TurnBudget {
  private spent = 0;
  private readonly waiting: { bytes: number; go: () => void }[] = [];
  private resetScheduled = false;

  constructor(private readonly bytesPerTurn: number) {}

  /** Null when `bytes` may be written now; otherwise a promise that resolves on a later turn when they may. */
  take(bytes: number): Promise<void> | null {
    this.scheduleReset();
    if (this.waiting.length === 0 && this.spent < this.bytesPerTurn) {
      this.spent += bytes;
      return null;
    }
    return new Promise<void>((go) => this.waiting.push({ bytes, go }));
  }

  private scheduleReset(): void {
    if (this.resetScheduled) return;
    this.resetScheduled = true;
    // setImmediate runs after the poll phase: the I/O that arrived this turn is handled first.
    setImmediate(() => {
      this.resetScheduled = false;
      this.spent = 0;
      while (this.waiting.length > 0 && this.spent < this.bytesPerTurn) {
        const w = this.waiting.shift()!;
        this.spent += w.bytes;
        w.go();
      }
      if (this.waiting.length > 0 || this.spent > 0) this.scheduleReset();
    });
  }
}
