import { type Clock, systemClock, type Timer } from './clock.ts';

export interface ReachabilityObserver {
  /** A probe confirmed that the API server does not answer; `error` is the failure that raised the doubt. */
  lost?(error: unknown): void;
  /** The API server answers again after `outageMs` (from the first failed probe). */
  recovered?(outageMs: number): void;
}

export interface ReachabilityOptions {
  /** Asks the API server whether it is ready; resolves true when it is. Must bound its own wait. */
  probe: () => Promise<boolean>;
  /** Whether a failed call may mean the API server is unreachable (rather than refusing the call). */
  mayBeOutage: (error: unknown) => boolean;
  /** Pause between probes while the API server does not answer; jittered by half. Default 250 ms. */
  probeIntervalMs?: number;
  /**
   * After a probe found the API server ready, failures are not probed again for this long, so
   * that a burst of 5xx from a healthy API server costs one probe. Default 1 s.
   */
  quietMs?: number;
  observer?: ReachabilityObserver;
  clock?: Clock;
  random?: () => number;
}

/**
 * Notices at once when the API server answers again after an outage, so that what backed off
 * during it (informer restarts, failed keys) can retry now instead of after its grown backoff.
 *
 * A failure that may mean an outage starts probing readiness; only a failed probe confirms the
 * outage, so a call refused by a healthy API server never leads to a recovery (whose listeners
 * retry without backoff). Once confirmed, it probes every probeIntervalMs until the API server is
 * ready, then tells every listener.
 */
export class ApiServerReachability {
  readonly #options: ReachabilityOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #probeIntervalMs: number;
  readonly #listeners: (() => void)[] = [];
  #state: 'reachable' | 'suspect' | 'unreachable' = 'reachable';
  #lostAt = 0;
  #quietUntil = 0;
  #cause: unknown;
  #timer: Timer | undefined;
  #stopped = false;

  constructor(options: ReachabilityOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#probeIntervalMs = options.probeIntervalMs ?? 250;
  }

  /** False from a failed probe until a probe finds the API server ready again. */
  get reachable(): boolean {
    return this.#state !== 'unreachable';
  }

  /** Calls `listener` each time the API server answers again after a confirmed outage. */
  onRecovered(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Tells of a failed API call; one that may mean an outage is checked with a probe. */
  reportFailure(error: unknown): void {
    if (this.#stopped || this.#state !== 'reachable' || this.#clock.now() < this.#quietUntil) return;
    if (!this.#options.mayBeOutage(error)) return;
    this.#state = 'suspect';
    this.#cause = error;
    void this.#probe();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }

  async #probe(): Promise<void> {
    let ready = false;
    try {
      ready = await this.#options.probe();
    } catch {
      // Not ready.
    }
    if (this.#stopped) return;
    if (ready) {
      const wasOut = this.#state === 'unreachable';
      this.#state = 'reachable';
      this.#quietUntil = this.#clock.now() + (this.#options.quietMs ?? 1000);
      if (!wasOut) return;
      this.#options.observer?.recovered?.(this.#clock.now() - this.#lostAt);
      for (const listener of this.#listeners) listener();
      return;
    }
    if (this.#state === 'suspect') {
      this.#state = 'unreachable';
      this.#lostAt = this.#clock.now();
      this.#options.observer?.lost?.(this.#cause);
    }
    const delayMs = this.#probeIntervalMs * (0.5 + this.#random());
    this.#timer = this.#clock.setTimer(() => void this.#probe(), delayMs);
  }
}
