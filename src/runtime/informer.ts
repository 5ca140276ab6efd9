import {
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ListPromise,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { isTimeout } from '../k8s/errors.ts';
import { backoffDelay, type ExponentialBackoff } from './backoff.ts';
import { CacheIndexes, type IndexFunctions } from './cache-index.ts';
import { type Clock, systemClock, type Timer } from './clock.ts';

/**
 * How one watch request of a ListWatch ended:
 * - idle: client-node ended a watch that had received nothing for 30 s (routine for a quiet
 *   collection, or a connection that went silent) and watches again from its last resourceVersion;
 * - stalled: client-node's 30 s ran out before the watch response even arrived;
 * - closed: the API server ended the watch;
 * - expired: 410 Gone, the resourceVersion was compacted away: the ListWatch lists again;
 * - failed: any other error: the supervisor replaces the ListWatch.
 */
export type WatchEnd = 'idle' | 'stalled' | 'closed' | 'expired' | 'failed';

/** Told about each watch request of a ListWatch. */
export interface WatchObserver {
  /** The API server answered the watch request: events may follow. */
  established(): void;
  ended(end: WatchEnd): void;
}

/** What the supervisor needs to build one client-node ListWatch. */
export interface ListWatchSource<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  watchObserver?: WatchObserver;
}

export type ListWatchFactory<T extends KubernetesObject> = (source: ListWatchSource<T>) => Informer<T>;

export interface InformerBackoff extends ExponentialBackoff {
  /** A ListWatch that ran this long before failing counts as healthy: the backoff starts over. */
  resetAfterMs: number;
}

export interface InformerRestart {
  /**
   * error: the ListWatch failed; stall: one of its requests got no answer in time; watchdog: it
   * gave no sign of life for watchdogMs.
   */
  reason: 'error' | 'stall' | 'watchdog';
  error?: unknown;
  /** When the new ListWatch starts. */
  delayMs: number;
}

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The collection to watch, e.g. `/api/v1/namespaces/ns/configmaps`. */
  path: string;
  /** Lists the same collection as `path`, with the same label selector. */
  list: ListPromise<T>;
  labelSelector?: string;
  /**
   * Called for every object added, updated or deleted (with its last known state), and for every
   * cached object at each resync. Must be cheap and must not throw: map the object to a key and
   * enqueue it.
   */
  onChange: (obj: T) => void;
  /**
   * Removes, in place, what nobody reads from the cached copy (managedFields, a Secret's token),
   * before the object is cached: the cache then holds only what the controller uses.
   */
  strip?: (obj: T) => void;
  /** Secondary indexes over the cache, read with byIndex(). */
  indexes?: IndexFunctions<T>;
  /** Period of the resync that hands every cached object to onChange; 0 turns it off. Default 5 minutes. */
  resyncMs?: number;
  /**
   * How long the ListWatch may go without a sign of life (an object event, a watch request
   * answered, a list starting or ending) before it is replaced; it must exceed the longest list.
   * client-node ends a watch that has been silent for 30 s and watches again, so a healthy
   * ListWatch signals at least every 30 s; a reconnect that gets no answer is no sign of life.
   * Default 90 s.
   */
  watchdogMs?: number;
  /** Restart backoff; default 1 s doubling to 30 s, jitter 0.5, reset after 2 minutes of health. */
  backoff?: Partial<InformerBackoff>;
  /** Told about every restart, for logs and metrics. */
  onRestart?: (restart: InformerRestart) => void;
  /** Told how each watch request of the current ListWatch ended, for metrics. */
  onWatchEnd?: (end: WatchEnd) => void;
  clock?: Clock;
  random?: () => number;
  /** Builds the underlying ListWatch; tests inject a fake. */
  createListWatch?: ListWatchFactory<T>;
}

/**
 * A Watch that, once stopped, opens no new watch and aborts one whose response arrives after the
 * stop. client-node's ListWatch goes on to watch when stop() lands during its list, its reconnect
 * delay or before the watch response (it only aborts a watch it already holds); such a watch
 * would keep a connection, and the process, alive. It also tells an observer how each watch
 * request fared.
 */
class StoppableWatch extends Watch {
  readonly #observer: WatchObserver | undefined;
  #stopped = false;

  constructor(kubeConfig: KubeConfig, observer?: WatchObserver) {
    super(kubeConfig);
    this.#observer = observer;
  }

  stop(): void {
    this.#stopped = true;
  }

  override async watch(
    ...[path, query, callback, done]: Parameters<Watch['watch']>
  ): Promise<AbortController> {
    if (this.#stopped) {
      const controller = new AbortController();
      controller.abort();
      return controller;
    }
    let ended = false;
    let established = false;
    let gone = false;
    const controller = await super.watch(
      path,
      query,
      (phase, object: { code?: unknown }, event) => {
        // client-node forgets its resourceVersion on this event; the API server then ends the watch.
        if (phase === 'ERROR' && object?.code === 410) gone = true;
        callback(phase, object, event);
      },
      (error) => {
        ended = true;
        this.#observer?.ended(watchEnd(error, established, gone));
        done(error);
      },
    );
    // watch() returns once the response arrived (200) or the request failed (done was called).
    if (!ended) {
      established = true;
      this.#observer?.established();
    }
    if (this.#stopped) controller.abort();
    return controller;
  }
}

function watchEnd(error: unknown, established: boolean, gone: boolean): WatchEnd {
  if (!error) return gone ? 'expired' : 'closed';
  const { name, statusCode } = error as { name?: unknown; statusCode?: unknown };
  if (statusCode === 410) return 'expired';
  if (name === 'TimeoutError') return established ? 'idle' : 'stalled';
  return 'failed';
}

/** client-node's ListWatch as makeInformer builds it, but with a Watch that stays stopped. */
export class StoppableListWatch<T extends KubernetesObject> extends ListWatch<T> {
  readonly #watch: StoppableWatch;

  constructor(source: ListWatchSource<T>) {
    const watch = new StoppableWatch(source.kubeConfig, source.watchObserver);
    super(source.path, watch, source.list, false, source.labelSelector);
    this.#watch = watch;
  }

  override stop(): Promise<void> {
    this.#watch.stop();
    return super.stop();
  }
}

/** One underlying ListWatch; its callbacks are ignored once it is retired. */
interface Generation<T extends KubernetesObject> {
  listWatch?: Informer<T>;
  startedAt: number;
  retired: boolean;
}

/**
 * A cache of one collection kept current by client-node's ListWatch, supervised: a ListWatch that
 * fails (client-node gives up after an 'error') or goes silent is replaced with backoff, and every
 * cached object is handed to onChange again at each resync.
 *
 * The cache belongs to the supervisor, not to the ListWatch, so it survives restarts: each new
 * ListWatch starts with a full list, which is applied as a diff (objects gone are reported as
 * deleted with their last known state, unchanged ones are not reported).
 */
export class SupervisedInformer<T extends KubernetesObject> {
  readonly #options: InformerOptions<T>;
  readonly #clock: Clock;
  readonly #backoff: InformerBackoff;
  readonly #resyncMs: number;
  readonly #watchdogMs: number;
  readonly #createListWatch: ListWatchFactory<T>;
  readonly #random: () => number;

  /** namespace ('' when cluster-scoped) → name → object */
  readonly #cache = new Map<string, Map<string, T>>();
  readonly #indexes: CacheIndexes<T>;
  /** UIDs of objects this process deleted → when to stop ignoring late events about them. */
  readonly #deleted = new Map<string, number>();
  #current: Generation<T> | undefined;
  #failures = 0;
  #lastSignOfLife = 0;
  #watchdog: Timer | undefined;
  #restartTimer: Timer | undefined;
  #resyncTimer: Timer | undefined;
  #started = false;
  #stopped = false;

  #isSynced = false;
  readonly #synced: Promise<void>;
  #resolveSynced!: () => void;
  #rejectSynced!: (error: Error) => void;

  constructor(options: InformerOptions<T>) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = {
      initialMs: 1000,
      maxMs: 30_000,
      jitter: 0.5,
      resetAfterMs: 120_000,
      ...options.backoff,
    };
    this.#random = options.random ?? Math.random;
    this.#indexes = new CacheIndexes(options.indexes ?? {});
    this.#resyncMs = options.resyncMs ?? 5 * 60_000;
    this.#watchdogMs = options.watchdogMs ?? 90_000;
    this.#createListWatch = options.createListWatch ?? ((source) => new StoppableListWatch(source));
    this.#synced = new Promise<void>((resolve, reject) => {
      this.#resolveSynced = resolve;
      this.#rejectSynced = reject;
    });
    // Marks the rejection on stop() as handled for callers that never ask synced().
    this.#synced.catch(() => {});
  }

  /** Starts listing and watching in the background; see synced(). */
  start(): void {
    if (this.#started) throw new Error(`informer for ${this.#options.path} was already started`);
    this.#started = true;
    this.#launch();
    if (this.#resyncMs > 0) this.#scheduleResync();
  }

  /**
   * Resolves once the first full list is in the cache; rejects if the informer is stopped first.
   */
  synced(): Promise<void> {
    return this.#synced;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of [this.#watchdog, this.#restartTimer, this.#resyncTimer]) timer?.cancel();
    if (!this.#isSynced)
      this.#rejectSynced(new Error(`informer for ${this.#options.path} stopped before it synced`));
    const current = this.#current;
    this.#current = undefined;
    if (current) await this.#retire(current);
  }

  /**
   * Starts a pending restart now, with the backoff starting over: the API server answers again,
   * so the informer relists at once instead of when its grown backoff runs out.
   */
  retryNow(): void {
    if (this.#stopped || !this.#restartTimer) return;
    this.#restartTimer.cancel();
    this.#restartTimer = undefined;
    this.#failures = 0;
    this.#launch();
  }

  /** The cached object; `namespace` is '' for cluster-scoped objects. */
  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(namespace)?.get(name);
  }

  /** Cached objects of one namespace, or of all when `namespace` is undefined. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#cache.get(namespace)?.values() ?? [])];
    return [...this.#cache.values()].flatMap((objects) => [...objects.values()]);
  }

  /** Cached objects found under `value` in the index of that name (see InformerOptions.indexes). */
  byIndex(index: string, value: string): T[] {
    const objects: T[] = [];
    for (const key of this.#indexes.keys(index, value)) {
      const slash = key.indexOf('/');
      const obj = this.get(key.slice(0, slash), key.slice(slash + 1));
      if (obj) objects.push(obj);
    }
    return objects;
  }

  /**
   * Takes the API server's answer to this process's own write into the cache at once, so the
   * next reconcile does not act on the state before it. Events older than it are ignored.
   */
  recordWrite(obj: T): void {
    this.#upsert(obj);
  }

  /** Drops an object this process deleted; events about it that arrive late are ignored. */
  recordDeletion(obj: T): void {
    const uid = obj.metadata?.uid;
    if (uid) {
      const now = this.#clock.now();
      for (const [deletedUid, until] of this.#deleted) {
        if (until > now) break;
        this.#deleted.delete(deletedUid);
      }
      this.#deleted.set(uid, now + DELETION_MEMORY_MS);
    }
    this.#remove(obj);
  }

  #launch(): void {
    const generation: Generation<T> = { startedAt: this.#clock.now(), retired: false };
    const live = (): boolean => !generation.retired;
    const list = async (): Promise<KubernetesListObject<T>> => {
      if (live()) this.#signOfLife();
      const result = await this.#options.list();
      // Throwing ends the stale ListWatch's chain here instead of letting it go on to watch.
      if (!live()) throw new Error('list finished after the ListWatch was retired');
      if (this.#options.strip) for (const item of result.items ?? []) this.#options.strip(item);
      this.#applyList(result.items ?? [], result.metadata?.resourceVersion);
      this.#signOfLife();
      return result;
    };
    const listWatch = this.#createListWatch({
      kubeConfig: this.#options.kubeConfig,
      path: this.#options.path,
      list,
      labelSelector: this.#options.labelSelector,
      watchObserver: {
        established: () => {
          if (live()) this.#signOfLife();
        },
        ended: (end) => {
          if (live()) this.#options.onWatchEnd?.(end);
        },
      },
    });
    generation.listWatch = listWatch;
    const upsert = (obj: T): void => {
      if (!live()) return;
      this.#signOfLife();
      this.#upsert(obj);
    };
    listWatch.on('add', upsert);
    listWatch.on('update', upsert);
    listWatch.on('delete', (obj) => {
      if (!live()) return;
      this.#signOfLife();
      if (obj.metadata?.uid) this.#deleted.delete(obj.metadata.uid);
      this.#remove(obj);
    });
    const fail = (error: unknown): void => {
      if (live()) this.#restart(generation, isTimeout(error) ? 'stall' : 'error', error);
    };
    listWatch.on('error', fail);
    this.#current = generation;
    this.#signOfLife();
    this.#armWatchdog();
    listWatch.start().catch(fail);
  }

  #restart(generation: Generation<T>, reason: InformerRestart['reason'], error?: unknown): void {
    this.#watchdog?.cancel();
    this.#watchdog = undefined;
    this.#current = undefined;
    void this.#retire(generation);
    if (this.#clock.now() - generation.startedAt >= this.#backoff.resetAfterMs) this.#failures = 0;
    this.#failures++;
    const delayMs = backoffDelay(this.#backoff, this.#failures, this.#random);
    this.#options.onRestart?.(error === undefined ? { reason, delayMs } : { reason, error, delayMs });
    this.#restartTimer = this.#clock.setTimer(() => {
      this.#restartTimer = undefined;
      this.#launch();
    }, delayMs);
  }

  async #retire(generation: Generation<T>): Promise<void> {
    generation.retired = true;
    try {
      await generation.listWatch?.stop();
    } catch {
      // A ListWatch that fails to stop has nothing left that we listen to.
    }
  }

  #signOfLife(): void {
    this.#lastSignOfLife = this.#clock.now();
  }

  #armWatchdog(): void {
    const remainingMs = this.#lastSignOfLife + this.#watchdogMs - this.#clock.now();
    this.#watchdog = this.#clock.setTimer(() => {
      this.#watchdog = undefined;
      const current = this.#current;
      if (!current) return;
      if (this.#clock.now() - this.#lastSignOfLife >= this.#watchdogMs) this.#restart(current, 'watchdog');
      else this.#armWatchdog();
    }, remainingMs);
  }

  #scheduleResync(): void {
    // The cache is empty until the first list, so a resync before it hands nothing over.
    this.#resyncTimer = this.#clock.setTimer(() => {
      for (const obj of this.list()) this.#options.onChange(obj);
      this.#scheduleResync();
    }, this.#resyncMs);
  }

  /**
   * Makes the cache equal to a full list, reporting only what changed; an object this process
   * wrote after the list was taken stays.
   */
  #applyList(items: T[], listVersion: string | undefined): void {
    const listed = new Set(items.map((obj) => cacheKey(obj)));
    for (const [namespace, objects] of this.#cache) {
      for (const [name, obj] of objects) {
        if (listed.has(`${namespace}/${name}`)) continue;
        const writtenSince = (compareVersions(obj.metadata?.resourceVersion, listVersion) ?? 0) > 0;
        if (!writtenSince) this.#remove(obj);
      }
    }
    for (const obj of items) this.#upsert(obj);
    if (!this.#isSynced) {
      this.#isSynced = true;
      this.#resolveSynced();
    }
  }

  #upsert(obj: T): void {
    // First, even for an object not cached: client-node's ListWatch keeps the same object.
    this.#options.strip?.(obj);
    if (obj.metadata?.uid && this.#deleted.has(obj.metadata.uid)) return;
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let objects = this.#cache.get(namespace);
    if (!objects) this.#cache.set(namespace, (objects = new Map()));
    const cached = objects.get(name);
    if (cached) {
      const version = obj.metadata?.resourceVersion;
      const cachedVersion = cached.metadata?.resourceVersion;
      const order = compareVersions(version, cachedVersion);
      if (order === undefined ? version !== undefined && version === cachedVersion : order <= 0) return;
    }
    objects.set(name, obj);
    this.#indexes.update(cacheKey(obj), obj);
    this.#options.onChange(obj);
  }

  /** Removes the object and reports it, once: a relist and the ListWatch may both report a delete. */
  #remove(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const objects = this.#cache.get(namespace);
    if (!objects?.delete(obj.metadata?.name ?? '')) return;
    if (objects.size === 0) this.#cache.delete(namespace);
    this.#indexes.update(cacheKey(obj), undefined);
    this.#options.onChange(obj);
  }
}

/** How long late events about an object this process deleted are ignored. */
const DELETION_MEMORY_MS = 10 * 60_000;

/**
 * Orders two resourceVersions (negative, zero, positive), or undefined when they cannot be
 * compared. The API server's versions are etcd revisions, comparable as integers.
 */
export function compareVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (a === undefined || b === undefined || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

function cacheKey(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}
