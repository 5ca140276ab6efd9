/** A pending timer; cancelling one that already fired does nothing. */
export interface Timer {
  cancel(): void;
}

/** Time as the runtime sees it: injectable so tests can move it by hand. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimer(callback: () => void, delayMs: number): Timer;
}

/** Node's setTimeout delays above this (about 24.8 days) fire after 1 ms instead. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const handle = setTimeout(callback, Math.min(Math.max(delayMs, 0), MAX_TIMER_DELAY_MS));
    return { cancel: () => clearTimeout(handle) };
  },
};
