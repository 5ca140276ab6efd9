import { backoffDelay } from './backoff.ts';
import { type Clock, MAX_TIMER_DELAY_MS, systemClock, type Timer } from './clock.ts';
import { MinHeap } from './min-heap.ts';

/** What a handler may ask for after a successful run. */
export interface HandlerResult {
  /** Process the key again this many milliseconds from now (an exact time, not a backoff). */
  requeueAfterMs?: number;
}

export type KeyHandler = (key: string) => Promise<HandlerResult | void>;

/**
 * Hooks for metrics and logs. Keys are given for logs only: they must not become metric labels.
 */
export interface WorkQueueObserver {
  /** The number of keys waiting to be processed changed. */
  depth?(depth: number): void;
  /** add() was called, whether or not the key was already waiting. */
  added?(key: string): void;
  /** A failed key was scheduled to be retried after `delayMs`. */
  retried?(key: string, delayMs: number): void;
  /** A handler run ended; `waitMs` is how long the key waited before the run started. */
  processed?(key: string, run: { durationMs: number; waitMs: number; error?: unknown }): void;
}

export interface Backoff {
  /** Delay before the first retry; each further failure doubles it. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction of each delay drawn at random, so that replicas and keys do not retry in step. */
  jitter: number;
}

export interface WorkQueueOptions {
  clock?: Clock;
  /** Default 50 ms doubling to 5 minutes, jitter 0.5. */
  backoff?: Partial<Backoff>;
  observer?: WorkQueueObserver;
  random?: () => number;
  /** Whether the key belongs in the lane of new keys, asked each time it starts waiting. */
  isNew?: (key: string) => boolean;
}

interface Deadline {
  key: string;
  dueAt: number;
  seq: number;
}

/**
 * A keyed work queue in the manner of client-go's rate-limited delaying queue: a key is waiting at
 * most once, is never processed by two runs at once, and one timer serves every delayed key.
 *
 * Keys wait in two lanes: those that `isNew` names (objects not acted on yet) in the lane of new
 * keys, the others in the lane of known keys; while both lanes hold keys, runs take from them in
 * turn. A new request then does not wait behind a backlog of retries (after an outage, every
 * revocation that came due), and a flood of new keys still leaves half of the runs to the others.
 */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #observer: WorkQueueObserver;
  readonly #random: () => number;
  readonly #isNew: (key: string) => boolean;

  /** Keys waiting to be processed, by lane; a Set keeps insertion order: a deduplicating FIFO. */
  readonly #waiting = new Set<string>();
  readonly #waitingNew = new Set<string>();
  #lastTakenNew = false;
  readonly #enqueuedAt = new Map<string, number>();
  readonly #processing = new Set<string>();
  /** Keys added while being processed: they go back to #waiting when their run ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();

  /** The earliest pending deadline of each key; heap entries not in this map are stale. */
  readonly #deadlines = new Map<string, Deadline>();
  readonly #heap = new MinHeap<Deadline>(
    (a, b) => a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq),
  );
  #seq = 0;
  #timer: Timer | undefined;
  #timerDueAt = 0;

  #handler: KeyHandler | undefined;
  #concurrency = 0;
  #active = 0;
  #shuttingDown = false;
  #drained: Promise<void> | undefined;
  #onIdle: (() => void) | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#backoff = { baseDelayMs: 50, maxDelayMs: 5 * 60_000, jitter: 0.5, ...options.backoff };
    this.#observer = options.observer ?? {};
    this.#random = options.random ?? Math.random;
    this.#isNew = options.isNew ?? (() => false);
  }

  /** Keys waiting to be processed (neither delayed nor in a run). */
  get depth(): number {
    return this.#waiting.size + this.#waitingNew.size;
  }

  /** Keys with a pending addAfter deadline. */
  get delayed(): number {
    return this.#deadlines.size;
  }

  /** Handler runs in progress. */
  get inFlight(): number {
    return this.#active;
  }

  /** Failures of the key since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  add(key: string): void {
    if (this.#shuttingDown) return;
    this.#observer.added?.(key);
    if (!this.#enqueuedAt.has(key)) this.#enqueuedAt.set(key, this.#clock.now());
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#enqueue(key);
    this.#pump();
  }

  /** Adds the key `delayMs` from now; of several pending deadlines of one key the earliest wins. */
  addAfter(key: string, delayMs: number): void {
    if (!Number.isFinite(delayMs)) throw new RangeError(`delay of ${key} is not a finite number: ${delayMs}`);
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const dueAt = this.#clock.now() + delayMs;
    const pending = this.#deadlines.get(key);
    if (pending && pending.dueAt <= dueAt) return;
    const deadline = { key, dueAt, seq: this.#seq++ };
    this.#deadlines.set(key, deadline);
    this.#heap.push(deadline);
    if (this.#heap.size > 2 * this.#deadlines.size + 64) {
      this.#heap.retain((entry) => this.#deadlines.get(entry.key) === entry);
    }
    this.#armTimer();
  }

  /**
   * Adds the key after its exponential backoff: base delay doubled per failure since forget(),
   * less up to `jitter` of it at random.
   */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const { baseDelayMs, maxDelayMs, jitter } = this.#backoff;
    const delayMs = backoffDelay(
      { initialMs: baseDelayMs, maxMs: maxDelayMs, jitter },
      failures,
      this.#random,
    );
    this.#observer.retried?.(key, delayMs);
    this.addAfter(key, delayMs);
  }

  /** Resets the key's backoff; a pending retry still happens. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /**
   * Adds now, with their backoff reset, the keys whose last run failed, instead of when their
   * retry is due: what made them fail (the API server, unreachable) is gone.
   */
  retryFailedNow(): void {
    if (this.#shuttingDown) return;
    for (const key of [...this.#failures.keys()]) {
      this.#failures.delete(key);
      // Its run now decides when it is due next; the retry deadline would only repeat it.
      this.#deadlines.delete(key);
      this.add(key);
    }
    this.#armTimer();
  }

  /**
   * Processes waiting keys with at most `concurrency` handler runs at once. A thrown error retries
   * the key with backoff; success forgets its failures and honours `requeueAfterMs`.
   */
  run(handler: KeyHandler, concurrency: number): void {
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    }
    if (this.#handler) throw new Error('the work queue is already running');
    this.#handler = handler;
    this.#concurrency = concurrency;
    this.#pump();
  }

  /**
   * Starts no more runs, drops later adds and pending deadlines, and resolves once the runs in
   * progress have ended. Keys still waiting are left unprocessed: level-triggered controllers see
   * them again on their next start.
   */
  shutdown(): Promise<void> {
    if (!this.#drained) {
      this.#shuttingDown = true;
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#deadlines.clear();
      this.#heap.retain(() => false);
      this.#drained =
        this.#active === 0 ? Promise.resolve() : new Promise((resolve) => (this.#onIdle = resolve));
    }
    return this.#drained;
  }

  #enqueue(key: string): void {
    if (this.#waiting.has(key) || this.#waitingNew.has(key)) return;
    (this.#isNew(key) ? this.#waitingNew : this.#waiting).add(key);
    this.#observer.depth?.(this.depth);
  }

  /** The lane the next run takes from: the other one than last time, unless it is empty. */
  #nextLane(): Set<string> {
    const takeNew = this.#waitingNew.size > 0 && (!this.#lastTakenNew || this.#waiting.size === 0);
    this.#lastTakenNew = takeNew;
    return takeNew ? this.#waitingNew : this.#waiting;
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler) return;
    while (!this.#shuttingDown && this.#active < this.#concurrency && this.depth > 0) {
      const lane = this.#nextLane();
      const key = lane.values().next().value as string;
      lane.delete(key);
      this.#observer.depth?.(this.depth);
      this.#processing.add(key);
      this.#active++;
      void this.#process(handler, key);
    }
  }

  async #process(handler: KeyHandler, key: string): Promise<void> {
    const startedAt = this.#clock.now();
    const waitMs = startedAt - (this.#enqueuedAt.get(key) ?? startedAt);
    this.#enqueuedAt.delete(key);
    let error: unknown;
    let failed = false;
    let requeueAfterMs: number | undefined;
    try {
      requeueAfterMs = (await handler(key))?.requeueAfterMs;
      if (requeueAfterMs !== undefined && !Number.isFinite(requeueAfterMs)) {
        throw new RangeError(`handler asked to requeue ${key} after ${requeueAfterMs} ms`);
      }
    } catch (thrown) {
      failed = true;
      error = thrown;
    }
    this.#active--;
    this.#processing.delete(key);
    const durationMs = this.#clock.now() - startedAt;
    this.#observer.processed?.(key, failed ? { durationMs, waitMs, error } : { durationMs, waitMs });
    if (failed) {
      this.addRateLimited(key);
    } else {
      this.forget(key);
      if (requeueAfterMs !== undefined) this.addAfter(key, requeueAfterMs);
    }
    if (this.#dirty.delete(key) && !this.#shuttingDown) this.#enqueue(key);
    if (this.#shuttingDown && this.#active === 0) this.#onIdle?.();
    this.#pump();
  }

  /** Keeps the single timer armed for the earliest live deadline. */
  #armTimer(): void {
    let next = this.#heap.peek();
    while (next && this.#deadlines.get(next.key) !== next) {
      this.#heap.pop();
      next = this.#heap.peek();
    }
    if (!next) {
      this.#timer?.cancel();
      this.#timer = undefined;
      return;
    }
    if (this.#timer && this.#timerDueAt === next.dueAt) return;
    this.#timer?.cancel();
    this.#timerDueAt = next.dueAt;
    const delayMs = Math.min(Math.max(next.dueAt - this.#clock.now(), 0), MAX_TIMER_DELAY_MS);
    this.#timer = this.#clock.setTimer(() => this.#onTimer(), delayMs);
  }

  #onTimer(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    for (let next = this.#heap.peek(); next && next.dueAt <= now; next = this.#heap.peek()) {
      this.#heap.pop();
      if (this.#deadlines.get(next.key) !== next) continue;
      this.#deadlines.delete(next.key);
      this.add(next.key);
    }
    this.#armTimer();
  }
}
