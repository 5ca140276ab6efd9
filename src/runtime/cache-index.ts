/** Index name → the values an object is found under (none: it is not in that index). */
export type IndexFunctions<T> = Readonly<Record<string, (obj: T) => readonly string[]>>;

/**
 * Secondary indexes over a cache, in the manner of client-go's Indexer: kept by the cache on each
 * change of an object, so an entry lives exactly as long as its object is cached.
 */
export class CacheIndexes<T> {
  readonly #functions: IndexFunctions<T>;
  /** index → value → keys of the objects found under it */
  readonly #entries = new Map<string, Map<string, Set<string>>>();
  /** index → key → the values its object is found under */
  readonly #valuesOf = new Map<string, Map<string, readonly string[]>>();

  constructor(functions: IndexFunctions<T>) {
    this.#functions = functions;
    for (const index of Object.keys(functions)) {
      this.#entries.set(index, new Map());
      this.#valuesOf.set(index, new Map());
    }
  }

  /** The object cached under `key` is now `obj`; undefined when it left the cache. */
  update(key: string, obj: T | undefined): void {
    for (const [index, valuesOf] of Object.entries(this.#functions)) {
      const entries = this.#entries.get(index)!;
      const keysValues = this.#valuesOf.get(index)!;
      const before = keysValues.get(key) ?? [];
      const after = obj === undefined ? [] : valuesOf(obj);
      for (const value of before) {
        if (after.includes(value)) continue;
        const keys = entries.get(value);
        keys?.delete(key);
        if (keys?.size === 0) entries.delete(value);
      }
      for (const value of after) {
        let keys = entries.get(value);
        if (!keys) entries.set(value, (keys = new Set()));
        keys.add(key);
      }
      if (after.length) keysValues.set(key, after);
      else keysValues.delete(key);
    }
  }

  /** Keys of the cached objects found under `value` in `index`. */
  keys(index: string, value: string): ReadonlySet<string> {
    const entries = this.#entries.get(index);
    if (!entries) throw new Error(`no index named ${index}`);
    return entries.get(value) ?? NONE;
  }
}

const NONE: ReadonlySet<string> = new Set();
