import type { Clock, Timer } from '../../../src/runtime/clock.ts';

interface PendingTimer {
  dueAt: number;
  seq: number;
  callback: () => void;
}

/** A clock that moves only when a test advances it; timers fire in due order at their due time. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<PendingTimer>();
  /** Every delay a timer was armed with, in order. */
  readonly armedDelays: number[] = [];

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    this.armedDelays.push(delayMs);
    const timer = { dueAt: this.#now + Math.max(delayMs, 0), seq: this.#seq++, callback };
    this.#timers.add(timer);
    return { cancel: () => this.#timers.delete(timer) };
  }

  /** Timers not yet fired nor cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing due timers one by one and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    let firedAtThisInstant = 0;
    for (;;) {
      await settle();
      const next = [...this.#timers]
        .filter((timer) => timer.dueAt <= until)
        .sort((a, b) => a.dueAt - b.dueAt || a.seq - b.seq)[0];
      if (!next) break;
      this.#timers.delete(next);
      firedAtThisInstant = next.dueAt === this.#now ? firedAtThisInstant + 1 : 0;
      if (firedAtThisInstant > 1000) throw new Error('timers keep re-arming themselves without time passing');
      this.#now = next.dueAt;
      next.callback();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets every pending promise callback run (none of the code under test waits on real I/O). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve and reject exposed, to end a fake handler run when a test says so. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
