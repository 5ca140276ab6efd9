import {
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ListPromise,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { type Clock, systemClock, type Timer } from './clock.ts';

/** What the supervisor needs to build one client-node ListWatch. */
export interface ListWatchSource<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
}

export type ListWatchFactory<T extends KubernetesObject> = (source: ListWatchSource<T>) => Informer<T>;

export interface InformerBackoff {
  /** Delay before the first restart after a failure; doubled for each further failure. */
  initialMs: number;
  maxMs: number;
  /** A ListWatch that ran this long before failing counts as healthy: the backoff starts over. */
  resetAfterMs: number;
}

export interface InformerRestart {
  reason: 'error' | 'watchdog';
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
  /** Period of the resync that hands every cached object to onChange; 0 turns it off. Default 5 minutes. */
  resyncMs?: number;
  /**
   * How long the ListWatch may go without a sign of life (an object event, a (re)connect, a list
   * starting or ending) before it is replaced; it must exceed the longest list. client-node asks
   * for no bookmarks but ends a watch that has been silent for 30 s and reconnects (after at most
   * 30 s of backoff), so a healthy ListWatch signals at least once a minute. Default 3 minutes.
   */
  watchdogMs?: number;
  backoff?: Partial<InformerBackoff>;
  /** Told about every restart, for logs and metrics. */
  onRestart?: (restart: InformerRestart) => void;
  clock?: Clock;
  /** Builds the underlying ListWatch; tests inject a fake. */
  createListWatch?: ListWatchFactory<T>;
}

/**
 * A Watch that, once stopped, opens no new watch and aborts one whose response arrives after the
 * stop. client-node's ListWatch goes on to watch when stop() lands during its list, its reconnect
 * delay or before the watch response (it only aborts a watch it already holds); such a watch
 * would keep a connection, and the process, alive.
 */
class StoppableWatch extends Watch {
  #stopped = false;

  stop(): void {
    this.#stopped = true;
  }

  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    const controller = this.#stopped ? new AbortController() : await super.watch(...args);
    if (this.#stopped) controller.abort();
    return controller;
  }
}

/** client-node's ListWatch as makeInformer builds it, but with a Watch that stays stopped. */
export class StoppableListWatch<T extends KubernetesObject> extends ListWatch<T> {
  readonly #watch: StoppableWatch;

  constructor(source: ListWatchSource<T>) {
    const watch = new StoppableWatch(source.kubeConfig);
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

  /** namespace ('' when cluster-scoped) → name → object */
  readonly #cache = new Map<string, Map<string, T>>();
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
    this.#backoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 120_000, ...options.backoff };
    this.#resyncMs = options.resyncMs ?? 5 * 60_000;
    this.#watchdogMs = options.watchdogMs ?? 3 * 60_000;
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

  /** The cached object; `namespace` is '' for cluster-scoped objects. */
  get(namespace: string, name: string): T | undefined {
    return this.#cache.get(namespace)?.get(name);
  }

  /** Cached objects of one namespace, or of all when `namespace` is undefined. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#cache.get(namespace)?.values() ?? [])];
    return [...this.#cache.values()].flatMap((objects) => [...objects.values()]);
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
    listWatch.on('connect', () => {
      if (live()) this.#signOfLife();
    });
    listWatch.on('error', (error) => {
      if (live()) this.#restart(generation, 'error', error);
    });
    this.#current = generation;
    this.#signOfLife();
    this.#armWatchdog();
    listWatch.start().catch((error: unknown) => {
      if (live()) this.#restart(generation, 'error', error);
    });
  }

  #restart(generation: Generation<T>, reason: InformerRestart['reason'], error?: unknown): void {
    this.#watchdog?.cancel();
    this.#watchdog = undefined;
    this.#current = undefined;
    void this.#retire(generation);
    const { initialMs, maxMs, resetAfterMs } = this.#backoff;
    if (this.#clock.now() - generation.startedAt >= resetAfterMs) this.#failures = 0;
    this.#failures++;
    const delayMs = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures - 1, 52));
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
    this.#options.onChange(obj);
  }

  /** Removes the object and reports it, once: a relist and the ListWatch may both report a delete. */
  #remove(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const objects = this.#cache.get(namespace);
    if (!objects?.delete(obj.metadata?.name ?? '')) return;
    if (objects.size === 0) this.#cache.delete(namespace);
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
