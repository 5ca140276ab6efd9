import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose';

export const SIGNING_ALG = 'ES256';

/** A public signing key as published in the JWKS: always carries `kid`, `alg` and `use`, never `d`. */
export type PublicSigningJwk = JWK & { kid: string; alg: typeof SIGNING_ALG; use: 'sig' };

export interface SigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256) of the public key. */
  readonly kid: string;
  readonly alg: typeof SIGNING_ALG;
  readonly privateKey: CryptoKey;
  readonly publicJwk: Readonly<PublicSigningJwk>;
  readonly createdAt: Date;
  /** The key is published from creation but signs only from this time, so verifiers have fetched it first. */
  readonly notBefore?: Date;
  /** From this time the key neither signs nor is published. */
  readonly retiredAt?: Date;
}

export async function generateSigningKey(now: Date): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  return {
    ...(await publicPartOf(publicKey)),
    privateKey,
    createdAt: now,
  };
}

async function publicPartOf(publicKey: CryptoKey): Promise<Pick<SigningKey, 'kid' | 'alg' | 'publicJwk'>> {
  const { kty, crv, x, y } = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256');
  const publicJwk: PublicSigningJwk = { kty, crv, x, y, kid, alg: SIGNING_ALG, use: 'sig' };
  return { kid, alg: SIGNING_ALG, publicJwk: Object.freeze(publicJwk) };
}

/**
 * The longest a grant token lives: the CRD caps `ttl` at 24h. A key stays published this long after
 * it stopped signing, so every token it signed can still be verified until it expires.
 */
export const MAX_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;

export function isRetired(key: SigningKey, now: Date): boolean {
  return key.retiredAt !== undefined && key.retiredAt.getTime() <= now.getTime();
}

/** Whether `key` may sign at `now`: past its notBefore and not retired. */
export function canSign(key: SigningKey, now: Date): boolean {
  const notBefore = key.notBefore ?? key.createdAt;
  return notBefore.getTime() <= now.getTime() && !isRetired(key, now);
}

/** When a key signs: from `from` until just before `until`; no `until` while nothing ends it yet. */
export interface SigningPeriod {
  readonly from: Date;
  readonly until?: Date;
}

/**
 * An immutable set of signing keys, newest first.
 *
 * Signing moves forward only: a key signs from its notBefore (else its creation) until it is
 * retired or a newer key starts signing, whichever comes first, and never again after that. So
 * when the signing key is retired, the one before it does not come back; a new key must be added
 * (see `ensureSigningKey` in rotation.ts). This keeps each key's last token, and so how long it
 * must stay published, a fact of the set alone.
 */
export class KeySet {
  readonly keys: readonly SigningKey[];
  readonly #periods: ReadonlyMap<string, SigningPeriod>;

  constructor(keys: Iterable<SigningKey>) {
    const sorted = [...keys].sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || a.kid.localeCompare(b.kid),
    );
    const kids = new Set(sorted.map((key) => key.kid));
    if (kids.size !== sorted.length) throw new Error('A key set cannot hold two keys with the same kid');
    this.keys = Object.freeze(sorted);
    this.#periods = signingPeriods(sorted);
  }

  /** When `key` signs. A key whose period is empty (`until <= from`) never signs. */
  signingPeriod(key: SigningKey): SigningPeriod {
    const period = this.#periods.get(key.kid);
    if (!period) throw new Error(`Signing key ${key.kid} is not in this key set`);
    return period;
  }

  /** When `key` stopped (or will stop) signing; undefined while nothing ends its period yet. */
  stoppedSigningAt(key: SigningKey): Date | undefined {
    return this.signingPeriod(key).until;
  }

  /**
   * Until when tokens of `key` may be verified: the last token it signed expires at most
   * `maxTokenLifetimeMs` after it stopped signing. A key that never signed is needed until its
   * period closed. Undefined while the key signs or is still to sign.
   */
  verifiableUntil(key: SigningKey, maxTokenLifetimeMs = MAX_TOKEN_LIFETIME_MS): Date | undefined {
    const { from, until } = this.signingPeriod(key);
    if (until === undefined) return undefined;
    const signed = from.getTime() < until.getTime();
    return signed ? new Date(until.getTime() + maxTokenLifetimeMs) : until;
  }

  /** The key that signs at `now`, if any. */
  signingAt(now: Date): SigningKey | undefined {
    return this.keys.find((key) => within(this.signingPeriod(key), now));
  }

  /** The key that signs at `now`. */
  current(now: Date): SigningKey {
    const key = this.signingAt(now);
    if (!key) throw new Error(`No signing key may sign at ${now.toISOString()}`);
    return key;
  }

  /** The key that signs next after `now`, already published: the earliest that will start signing. */
  next(now: Date): SigningKey | undefined {
    return this.keys
      .filter((key) => {
        const { from, until } = this.signingPeriod(key);
        return from.getTime() > now.getTime() && (until === undefined || until.getTime() > from.getTime());
      })
      .sort((a, b) => this.signingPeriod(a).from.getTime() - this.signingPeriod(b).from.getTime())[0];
  }

  /**
   * Whether `key` is still needed at `now`: it is to sign, signs, or signed a token that may not
   * have expired yet. A retired key is still needed here (it orders the keys around it) but is
   * never published.
   */
  isNeeded(key: SigningKey, now: Date, maxTokenLifetimeMs = MAX_TOKEN_LIFETIME_MS): boolean {
    const until = this.verifiableUntil(key, maxTokenLifetimeMs);
    return until === undefined || until.getTime() > now.getTime();
  }

  /**
   * The JWKS to publish at `now`: every key not retired that signed a token not yet expired,
   * signs, or is the next to sign (published before it signs, so verifiers have it first).
   */
  publicJwks(now: Date, maxTokenLifetimeMs = MAX_TOKEN_LIFETIME_MS): JSONWebKeySet {
    return {
      keys: this.keys
        .filter((key) => !isRetired(key, now) && this.isNeeded(key, now, maxTokenLifetimeMs))
        .map((key) => ({ ...key.publicJwk })),
    };
  }
}

function within({ from, until }: SigningPeriod, now: Date): boolean {
  return from.getTime() <= now.getTime() && (until === undefined || now.getTime() < until.getTime());
}

// Newest first: each key signs until its retirement or until the earliest start of a newer key
// that actually signs (a newer key retired before it started supersedes nothing).
function signingPeriods(newestFirst: readonly SigningKey[]): Map<string, SigningPeriod> {
  const periods = new Map<string, SigningPeriod>();
  let supersededAt: number | undefined;
  for (const key of newestFirst) {
    const from = (key.notBefore ?? key.createdAt).getTime();
    const ends = [key.retiredAt?.getTime(), supersededAt].filter((t): t is number => t !== undefined);
    const until = ends.length > 0 ? Math.min(...ends) : undefined;
    periods.set(key.kid, { from: new Date(from), ...(until !== undefined && { until: new Date(until) }) });
    if (until === undefined || from < until) supersededAt = Math.min(supersededAt ?? from, from);
  }
  return periods;
}

/** The signing key Secret as read: its `data` and the version to write it back at. */
export interface StoredKeySecret {
  data: Record<string, string>;
  resourceVersion: string;
}

/** What the controller's API server code implements over the signing key Secret's `data`. */
export interface KeySecretStore {
  /** The Secret's `data` and resourceVersion, or undefined when the Secret does not exist. */
  read(): Promise<StoredKeySecret | undefined>;
  /** Creates the Secret; throws an error with `code === 409` when it already exists. */
  create(data: Record<string, string>): Promise<void>;
  /**
   * Replaces the Secret's `data` if it is still at `resourceVersion`; throws an error with
   * `code === 409` when another writer changed it since (read again and retry).
   */
  update(data: Record<string, string>, resourceVersion: string): Promise<void>;
}

/**
 * The key set in the store; when there is none, a new one-key set written to the store. When another
 * replica creates the Secret first, its keys win, so all replicas sign with the same key.
 */
export async function loadOrCreateKeySet(store: KeySecretStore, now: Date): Promise<KeySet> {
  const existing = await store.read();
  if (existing) return usableKeySet(existing.data, now);

  const created = new KeySet([await generateSigningKey(now)]);
  try {
    await store.create(await keySetToSecretData(created));
    return created;
  } catch (error) {
    if (!isConflictOrExists(error)) throw error;
  }
  const winner = await store.read();
  if (!winner) throw new Error('The signing key Secret already existed on create but was not found on read');
  return usableKeySet(winner.data, now);
}

async function usableKeySet(data: Record<string, string>, now: Date): Promise<KeySet> {
  const set = await keySetFromSecretData(data);
  set.current(now);
  return set;
}

/** Whether an API error is a 409: AlreadyExists on create, Conflict on update. */
export function isConflictOrExists(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 409;
}

const ENTRY = /^key-([A-Za-z0-9_-]+)\.jwk$/;

export function secretEntryName(kid: string): string {
  return `key-${kid}.jwk`;
}

/** The JSON document stored, base64-encoded, under `key-<kid>.jwk`. */
interface StoredKey {
  /** The private JWK, with kid, alg and use. */
  jwk: JWK;
  createdAt: string;
  notBefore?: string;
  retiredAt?: string;
}

/** A Secret `data` map (base64 values) holding every key of `set`, private parts included. */
export async function keySetToSecretData(set: KeySet): Promise<Record<string, string>> {
  const data: Record<string, string> = {};
  for (const key of set.keys) {
    const { kty, crv, x, y, d } = await exportJWK(key.privateKey);
    const stored: StoredKey = {
      jwk: { kty, crv, x, y, d, kid: key.kid, alg: key.alg, use: 'sig' },
      createdAt: key.createdAt.toISOString(),
      notBefore: key.notBefore?.toISOString(),
      retiredAt: key.retiredAt?.toISOString(),
    };
    data[secretEntryName(key.kid)] = Buffer.from(JSON.stringify(stored)).toString('base64');
  }
  return data;
}

/** The key set in a Secret's `data`. Entries not named `key-<kid>.jwk` are ignored. */
export async function keySetFromSecretData(data: Record<string, string>): Promise<KeySet> {
  const keys: SigningKey[] = [];
  for (const [name, value] of Object.entries(data)) {
    const kid = ENTRY.exec(name)?.[1];
    if (kid !== undefined) keys.push(await signingKeyFromEntry(name, kid, value));
  }
  return new KeySet(keys);
}

// Errors name the entry only: a parser's message could quote the private key.
async function signingKeyFromEntry(name: string, kid: string, value: string): Promise<SigningKey> {
  let stored: StoredKey;
  try {
    stored = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as StoredKey;
  } catch {
    throw new Error(`Signing key Secret entry ${name} is not base64-encoded JSON`);
  }
  const { jwk } = stored ?? {};
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.d) {
    throw new Error(`Signing key Secret entry ${name} does not hold a P-256 private JWK`);
  }
  let privateKey: CryptoKey;
  try {
    privateKey = (await importJWK(jwk, SIGNING_ALG, { extractable: true })) as CryptoKey;
  } catch {
    throw new Error(`Signing key Secret entry ${name} holds an invalid private key`);
  }
  const { kty, crv, x, y } = jwk;
  const publicKey = (await importJWK({ kty, crv, x, y }, SIGNING_ALG, { extractable: true })) as CryptoKey;
  const publicPart = await publicPartOf(publicKey);
  if (publicPart.kid !== kid || (jwk.kid !== undefined && jwk.kid !== kid)) {
    throw new Error(`Signing key Secret entry ${name} holds a key whose thumbprint is ${publicPart.kid}`);
  }
  return {
    ...publicPart,
    privateKey,
    createdAt: parseDate(name, 'createdAt', stored.createdAt),
    ...(stored.notBefore !== undefined && { notBefore: parseDate(name, 'notBefore', stored.notBefore) }),
    ...(stored.retiredAt !== undefined && { retiredAt: parseDate(name, 'retiredAt', stored.retiredAt) }),
  };
}

function parseDate(entry: string, field: string, value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime()))
    throw new Error(`Signing key Secret entry ${entry} has an invalid ${field}`);
  return date;
}
