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

export function isRetired(key: SigningKey, now: Date): boolean {
  return key.retiredAt !== undefined && key.retiredAt.getTime() <= now.getTime();
}

/** Whether `key` may sign at `now`: past its notBefore and not retired. */
export function canSign(key: SigningKey, now: Date): boolean {
  const notBefore = key.notBefore ?? key.createdAt;
  return notBefore.getTime() <= now.getTime() && !isRetired(key, now);
}

/** An immutable set of signing keys, newest first. */
export class KeySet {
  readonly keys: readonly SigningKey[];

  constructor(keys: Iterable<SigningKey>) {
    const sorted = [...keys].sort(
      (a, b) => b.createdAt.getTime() - a.createdAt.getTime() || a.kid.localeCompare(b.kid),
    );
    const kids = new Set(sorted.map((key) => key.kid));
    if (kids.size !== sorted.length) throw new Error('A key set cannot hold two keys with the same kid');
    this.keys = Object.freeze(sorted);
  }

  /** The key that signs at `now`: the newest one that may sign. */
  current(now: Date): SigningKey {
    const key = this.keys.find((candidate) => canSign(candidate, now));
    if (!key) throw new Error(`No signing key may sign at ${now.toISOString()}`);
    return key;
  }

  /** The JWKS to publish at `now`: every key not retired, including keys that do not sign yet. */
  publicJwks(now: Date): JSONWebKeySet {
    return { keys: this.keys.filter((key) => !isRetired(key, now)).map((key) => ({ ...key.publicJwk })) };
  }
}

/** What the controller's API server code implements over the signing key Secret's `data`. */
export interface KeySecretStore {
  /** The Secret's `data`, or undefined when the Secret does not exist. */
  read(): Promise<Record<string, string> | undefined>;
  /** Creates the Secret; throws an error with `code === 409` when it already exists. */
  create(data: Record<string, string>): Promise<void>;
}

/**
 * The key set in the store; when there is none, a new one-key set written to the store. When another
 * replica creates the Secret first, its keys win, so all replicas sign with the same key.
 */
export async function loadOrCreateKeySet(store: KeySecretStore, now: Date): Promise<KeySet> {
  const existing = await store.read();
  if (existing) return usableKeySet(existing, now);

  const created = new KeySet([await generateSigningKey(now)]);
  try {
    await store.create(await keySetToSecretData(created));
    return created;
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
  }
  const winner = await store.read();
  if (!winner) throw new Error('The signing key Secret already existed on create but was not found on read');
  return usableKeySet(winner, now);
}

async function usableKeySet(data: Record<string, string>, now: Date): Promise<KeySet> {
  const set = await keySetFromSecretData(data);
  set.current(now);
  return set;
}

function isAlreadyExists(error: unknown): boolean {
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
