/**
 * Why a grant token was refused. Machine-readable and stable: backends may branch on it, log it
 * and count it. The accompanying message is for humans and may change.
 */
export type RefusalReason =
  /** Not a compact JWS with a JSON header and payload. */
  | 'malformed'
  /** The header names a key or extension the verifier never honours (`jku`, `x5u`, `jwk`, `x5c`, `crit`). */
  | 'forbidden_header'
  /** `alg` is `none`, symmetric, or not one the issuer publishes. */
  | 'alg_not_allowed'
  /** `typ` is not `hourglass-grant+jwt`. */
  | 'bad_typ'
  /** No published key has the token's `kid` (a retired key, a foreign key, or no `kid` at all). */
  | 'unknown_kid'
  /** The signature does not verify with the published key. */
  | 'bad_signature'
  /** The issuer's discovery document or key set could not be fetched or was unusable. */
  | 'keys_unavailable'
  | 'wrong_issuer'
  /** `aud` does not name this backend, or names more than one audience. */
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  /** A required claim is absent. */
  | 'missing_claim'
  /** A claim is present but has the wrong type or shape. */
  | 'invalid_claim'
  | 'action_not_granted'
  | 'target_not_granted'
  /** Introspection says the grant is no longer active: revoked, superseded or expired. */
  | 'inactive'
  /** Introspection could not answer and the verifier fails closed. */
  | 'introspection_unavailable';

/** A refused grant token. Its message never quotes the token. */
export class GrantRefused extends Error {
  override readonly name = 'GrantRefused';
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export function refuse(reason: RefusalReason, message: string): never {
  throw new GrantRefused(reason, message);
}
