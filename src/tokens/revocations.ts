/**
 * Grant ids made inactive before their token's exp (revoked or superseded by a renewal), kept
 * until that exp so introspection can refuse them. Expired entries are dropped whenever the set
 * has doubled since it was last pruned, so it stays within twice the ids still unexpired; past
 * `capacity`, the entries that expire soonest go first.
 */
export class RevokedGrants {
  readonly #expiries = new Map<string, number>();
  readonly #capacity: number;
  #pruneAtSize = MIN_PRUNE_SIZE;

  constructor(capacity = 100_000) {
    this.#capacity = capacity;
  }

  add(grantId: string, expiresAt: Date, now: Date): void {
    if (expiresAt.getTime() <= now.getTime()) return;
    this.#expiries.set(grantId, expiresAt.getTime());
    if (this.#expiries.size > this.#capacity || this.#expiries.size >= this.#pruneAtSize) this.prune(now);
  }

  has(grantId: string, now: Date): boolean {
    const expiry = this.#expiries.get(grantId);
    return expiry !== undefined && expiry > now.getTime();
  }

  get size(): number {
    return this.#expiries.size;
  }

  /** Drops expired entries, then the soonest-expiring ones while over capacity. */
  prune(now: Date): void {
    for (const [id, expiry] of this.#expiries) if (expiry <= now.getTime()) this.#expiries.delete(id);
    this.#pruneAtSize = Math.max(MIN_PRUNE_SIZE, 2 * this.#expiries.size);
    if (this.#expiries.size <= this.#capacity) return;
    const bySoonest = [...this.#expiries].sort((a, b) => a[1] - b[1]);
    for (const [id] of bySoonest.slice(0, this.#expiries.size - this.#capacity)) this.#expiries.delete(id);
  }
}

const MIN_PRUNE_SIZE = 1024;
