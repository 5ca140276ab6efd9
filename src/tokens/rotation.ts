// Signing key rotation as pure functions of a key set and the time: what to add, what to drop,
// and what a compromised key's retirement leaves behind. KeyManager applies them to the Secret.
import { generateSigningKey, KeySet, MAX_TOKEN_LIFETIME_MS, type SigningKey } from './keys.ts';

export interface RotationPolicy {
  /** How long each key signs before the next one takes over. */
  periodMs: number;
  /**
   * How long a new key is published before it signs, so that replicas and verifiers that cache
   * the JWKS have it before they meet a token it signed. Less than `periodMs`.
   */
  publishLeadMs: number;
  /** The longest a token lives: a key stays published this long after it stopped signing. */
  maxTokenLifetimeMs: number;
}

export const defaultRotationPolicy: RotationPolicy = {
  periodMs: 24 * 60 * 60 * 1000,
  publishLeadMs: 60 * 1000,
  maxTokenLifetimeMs: MAX_TOKEN_LIFETIME_MS,
};

export interface Rotation {
  set: KeySet;
  /** Whether `set` differs from the input and so must be written back. */
  changed: boolean;
  /** The kids of keys added: a next key, or a key that signs at once when none could. */
  added: string[];
  /** The kid of a published next key made to sign at once because no key could. */
  promoted?: string;
  /** The kids of keys dropped: every token they signed has expired. */
  dropped: string[];
}

export type GenerateKey = (now: Date) => Promise<SigningKey>;

/**
 * One rotation step at `now`, idempotent: drops keys whose last token has expired, makes sure a
 * key signs now, and once the signing key has signed for `periodMs - publishLeadMs` adds the next
 * key, published at once and signing from `now + publishLeadMs`.
 */
export async function rotate(
  set: KeySet,
  now: Date,
  policy: RotationPolicy,
  generate: GenerateKey = generateSigningKey,
): Promise<Rotation> {
  const dropped = set.keys.filter((key) => !set.isNeeded(key, now, policy.maxTokenLifetimeMs));
  let result: Rotation = {
    set: dropped.length > 0 ? new KeySet(set.keys.filter((key) => !dropped.includes(key))) : set,
    changed: dropped.length > 0,
    added: [],
    dropped: dropped.map((key) => key.kid),
  };

  const ensured = await ensureSigningKey(result.set, now, generate);
  result = {
    ...result,
    set: ensured.set,
    changed: result.changed || ensured.changed,
    added: ensured.added,
    ...(ensured.promoted !== undefined && { promoted: ensured.promoted }),
  };

  const current = result.set.current(now);
  const signingFor = now.getTime() - result.set.signingPeriod(current).from.getTime();
  if (!result.set.next(now) && signingFor >= policy.periodMs - policy.publishLeadMs) {
    const next = { ...(await generate(now)), notBefore: new Date(now.getTime() + policy.publishLeadMs) };
    result = {
      ...result,
      set: new KeySet([...result.set.keys, next]),
      changed: true,
      added: [...result.added, next.kid],
    };
  }
  return result;
}

/**
 * Makes sure a key signs at `now`. When none does (the signing key was retired), the published
 * next key, if any, signs from now (verifiers may already have it); else a new key signs at once.
 */
export async function ensureSigningKey(
  set: KeySet,
  now: Date,
  generate: GenerateKey = generateSigningKey,
): Promise<Rotation> {
  if (set.signingAt(now)) return { set, changed: false, added: [], dropped: [] };
  const next = set.next(now);
  if (next) {
    const promoted = { ...next, notBefore: now };
    return {
      set: new KeySet([...set.keys.filter((key) => key !== next), promoted]),
      changed: true,
      added: [],
      promoted: next.kid,
      dropped: [],
    };
  }
  const key = await generate(now);
  return { set: new KeySet([...set.keys, key]), changed: true, added: [key.kid], dropped: [] };
}

/**
 * Retires the key `kid` at `now` (a compromised key): from now it neither signs nor is published,
 * so every token it signed fails verification. A key already retired keeps its earlier time.
 */
export function retire(set: KeySet, kid: string, now: Date): { set: KeySet; changed: boolean } {
  const key = set.keys.find((candidate) => candidate.kid === kid);
  if (!key) throw new Error(`No signing key has kid ${kid}`);
  if (key.retiredAt && key.retiredAt.getTime() <= now.getTime()) return { set, changed: false };
  const retired = { ...key, retiredAt: now };
  return {
    set: new KeySet(set.keys.map((candidate) => (candidate === key ? retired : candidate))),
    changed: true,
  };
}
