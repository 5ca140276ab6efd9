// The signing keys of one replica, kept in step with the Secret that all replicas share.
import type { Logger } from '../log.ts';
import { systemClock, type Clock, type Timer } from '../runtime/clock.ts';
import {
  generateSigningKey,
  isConflictOrExists,
  isRetired,
  keySetFromSecretData,
  keySetToSecretData,
  KeySet,
  MAX_TOKEN_LIFETIME_MS,
  type KeySecretStore,
  type SigningKey,
} from './keys.ts';
import { ensureSigningKey, retire, rotate, type Rotation, type RotationPolicy } from './rotation.ts';

export interface KeyManagerOptions {
  store: KeySecretStore;
  periodMs: number;
  publishLeadMs: number;
  maxTokenLifetimeMs?: number;
  /**
   * How often the Secret is read again and rotation checked: how long replicas may disagree
   * about the keys, and so how soon a retired key stops verifying everywhere. Default 5 s.
   */
  reloadMs?: number;
  log: Logger;
  clock?: Clock;
}

// Writers that lose the race read again; more losses in a row than this are a fault, not a race.
const MAX_ATTEMPTS = 5;

/**
 * Holds this replica's key set. Every replica reads the signing key Secret every `reloadMs` and
 * rotates it when due, writing at the resourceVersion it read: when two replicas rotate at once,
 * one write wins and the other gets a 409 and adopts the winner's keys. So all replicas sign with
 * the key the Secret names, within `reloadMs` of any change to it.
 */
export class KeyManager {
  readonly #o: Required<Omit<KeyManagerOptions, 'clock'>> & { clock: Clock };
  #set: KeySet | undefined;
  #resourceVersion: string | undefined;
  #signingKid: string | undefined;
  #timer: Timer | undefined;
  #running = false;
  #pending: Promise<unknown> = Promise.resolve();

  constructor(options: KeyManagerOptions) {
    this.#o = {
      ...options,
      maxTokenLifetimeMs: options.maxTokenLifetimeMs ?? MAX_TOKEN_LIFETIME_MS,
      reloadMs: options.reloadMs ?? 5_000,
      clock: options.clock ?? systemClock,
    };
  }

  get policy(): RotationPolicy {
    const { periodMs, publishLeadMs, maxTokenLifetimeMs } = this.#o;
    return { periodMs, publishLeadMs, maxTokenLifetimeMs };
  }

  /** The key set this replica signs, publishes and verifies with now. */
  current(): KeySet {
    if (!this.#set) throw new Error('The signing keys have not been loaded yet');
    return this.#set;
  }

  /** Loads the keys, creating the Secret when there is none, and rotates them when due. */
  async init(): Promise<KeySet> {
    await this.rotateIfDue();
    return this.current();
  }

  /** Reads the Secret again and adopts its keys as they are. */
  async reload(): Promise<KeySet> {
    const stored = await this.#o.store.read();
    if (!stored) throw new Error('The signing key Secret does not exist');
    this.#adopt(await this.#parse(stored.data, stored.resourceVersion), stored.resourceVersion);
    return this.current();
  }

  /**
   * Reads the Secret, rotates its keys if due (see `rotate`) and writes them back at the version
   * read. Returns whether this replica changed the Secret; either way it then holds its keys.
   */
  async rotateIfDue(): Promise<boolean> {
    const { store, log } = this.#o;
    for (let attempt = 1; ; attempt++) {
      const now = this.#now();
      const stored = await store.read();
      try {
        if (!stored) {
          const created = new KeySet([await generateSigningKey(now)]);
          await store.create(await keySetToSecretData(created));
          log.info('Created signing key Secret', { kid: created.current(now).kid });
          this.#adopt(created, undefined);
          return true;
        }
        const set = await this.#parse(stored.data, stored.resourceVersion);
        const rotation = await rotate(set, now, this.policy);
        if (!rotation.changed) {
          this.#adopt(set, stored.resourceVersion);
          return false;
        }
        await store.update(await keySetToSecretData(rotation.set), stored.resourceVersion);
        logRotation(log, 'Rotated signing keys', rotation, now);
        this.#adopt(rotation.set, undefined);
        return true;
      } catch (error) {
        if (!isConflictOrExists(error) || attempt >= MAX_ATTEMPTS) throw error;
        log.debug('Signing key Secret changed while rotating; reading it again', { attempt });
      }
    }
  }

  /** Rotates when due, then every `reloadMs` until `stop()`. Errors keep the last keys and retry. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops the timer; waits for a reload in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#timer?.cancel();
    await this.settled();
  }

  /** Resolves once the reload in flight, if any, has finished. */
  async settled(): Promise<void> {
    await this.#pending;
  }

  #schedule(): void {
    if (!this.#running) return;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#pending = this.rotateIfDue()
        .catch((error: unknown) =>
          this.#o.log.warn('Failed to reload signing keys', { error: String(error) }),
        )
        .finally(() => this.#schedule());
    }, this.#o.reloadMs);
  }

  #now(): Date {
    return new Date(this.#o.clock.now());
  }

  // The Secret changes at most once a rotation period; parse it again only when it did.
  async #parse(data: Record<string, string>, resourceVersion: string): Promise<KeySet> {
    if (this.#set && resourceVersion !== '' && resourceVersion === this.#resourceVersion) return this.#set;
    return keySetFromSecretData(data);
  }

  #adopt(set: KeySet, resourceVersion: string | undefined): void {
    const before = this.#signingKid;
    const now = this.#now();
    const previous = this.#set;
    if (previous && previous !== set) {
      for (const key of set.keys.filter((candidate) => isRetired(candidate, now))) {
        const known = previous.keys.find((candidate) => candidate.kid === key.kid);
        if (!known || !isRetired(known, now)) {
          this.#o.log.info('Stopped trusting retired signing key', {
            kid: key.kid,
            retiredAt: key.retiredAt,
          });
        }
      }
    }
    this.#set = set;
    this.#resourceVersion = resourceVersion;
    this.#signingKid = set.signingAt(now)?.kid;
    if (before === undefined) {
      this.#o.log.info('Loaded signing keys', { signing: this.#signingKid, keys: set.keys.length });
    } else if (this.#signingKid !== before) {
      this.#o.log.info('Switched signing key', { kid: this.#signingKid, previous: before });
    }
  }
}

/**
 * The compromised-key drill: retires `kid` in the Secret at once and, if it was the signing key,
 * makes another key sign (the published next key, else a new one) in the same write. Every
 * replica stops publishing the retired key, and so stops verifying its tokens, within its reload
 * period. Returns the retired key and the key that signs now.
 */
export async function retireKey(
  store: KeySecretStore,
  kid: string,
  now: () => Date = () => new Date(),
): Promise<{ retired: SigningKey; signing: SigningKey; rotation: Rotation }> {
  for (let attempt = 1; ; attempt++) {
    const stored = await store.read();
    if (!stored) throw new Error('The signing key Secret does not exist');
    const at = now();
    const retired = retire(await keySetFromSecretData(stored.data), kid, at);
    const rotation = await ensureSigningKey(retired.set, at);
    const result = {
      retired: rotation.set.keys.find((key) => key.kid === kid) as SigningKey,
      signing: rotation.set.current(at),
      rotation,
    };
    if (!retired.changed && !rotation.changed) return result;
    try {
      await store.update(await keySetToSecretData(rotation.set), stored.resourceVersion);
      return result;
    } catch (error) {
      if (!isConflictOrExists(error) || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

function logRotation(log: Logger, message: string, rotation: Rotation, now: Date): void {
  const next = rotation.set.next(now);
  log.info(message, {
    signing: rotation.set.current(now).kid,
    ...(next && { next: next.kid, nextSignsFrom: rotation.set.signingPeriod(next).from.toISOString() }),
    ...(rotation.added.length > 0 && { added: rotation.added }),
    ...(rotation.promoted && { promoted: rotation.promoted }),
    ...(rotation.dropped.length > 0 && { dropped: rotation.dropped }),
  });
}
