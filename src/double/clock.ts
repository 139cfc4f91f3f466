/** The double's clock: real time (or a test's clock) plus `advanceTime` offsets. */

export interface Stamp {
  ms: number;
  /** sub-millisecond nanoseconds, 0..999999 */
  ns: number;
}

export class Clock {
  private offsetMs = 0;
  private source: (() => number) | null = null;

  /** The double's current time in ms since the epoch (real time + advanceTime offsets). */
  now(): number {
    return (this.source?.() ?? Date.now()) + this.offsetMs;
  }

  setSource(now: (() => number) | null): void {
    this.source = now;
  }

  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }

  stamp(): Stamp {
    return { ms: this.now(), ns: Number(process.hrtime.bigint() % 1000000n) };
  }
}


