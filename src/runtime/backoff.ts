/** An exponential backoff whose delays carry jitter, so that many clients do not retry in step. */
export interface ExponentialBackoff {
  /** Delay after the first failure; doubled for each further failure. */
  initialMs: number;
  maxMs: number;
  /**
   * Fraction of each delay drawn at random: a delay d becomes uniform in [d × (1 − jitter), d], so
   * maxMs stays the longest wait.
   */
  jitter: number;
}

/** The delay after the `failures`-th failure in a row (1 for the first). */
export function backoffDelay(
  backoff: ExponentialBackoff,
  failures: number,
  random: () => number = Math.random,
): number {
  const { initialMs, maxMs, jitter } = backoff;
  const delay = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures, 1) - 1, 52));
  return delay * (1 - Math.min(Math.max(jitter, 0), 1) * random());
}
