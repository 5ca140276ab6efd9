import { errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { checkCovers, grantClaimsOf, REQUIRED_CLAIMS, type GrantClaims, type IntendedUse } from './claims.ts';
import { checkHeader, quote, type GrantHeader } from './header.ts';
import {
  createIntrospector,
  type FetchLike,
  type IntrospectionOptions,
  type IntrospectionOutcome,
} from './introspection.ts';
import { issuerKeysResolver } from './issuer.ts';
import { GrantRefused } from './refusal.ts';

export interface GrantVerifierOptions {
  /** The issuer URL, exactly as the tokens' `iss` and the discovery document's `issuer`. */
  issuer: string;
  /** This backend's audience: the token's one `aud` must be exactly this. */
  audience: string;
  /**
   * The issuer's keys: a JWKS URL (fetched and cached by jose, refetched for an unknown `kid`) or a
   * local key set. Default: the `jwks_uri` of the issuer's discovery document.
   */
  jwks?: string | URL | JSONWebKeySet;
  /**
   * The algorithms accepted in `alg`. Default: the discovery document's
   * `id_token_signing_alg_values_supported` when keys are discovered, otherwise ES256. Symmetric
   * algorithms and `none` are never accepted.
   */
  algorithms?: readonly string[];
  /** Leeway for `exp` and `nbf`, in seconds, for clock skew between issuer and backend. Default 5, at most 300. */
  clockToleranceSeconds?: number;
  /** Also ask the issuer whether the grant is still active (RFC 7662), to see revocations before `exp`. */
  introspection?: IntrospectionOptions;
  /** Used for discovery and remote key sets. Default: the global fetch. */
  fetch?: FetchLike;
  /** The current time. Default: the system clock. */
  now?: () => Date;
}

/** A token that was accepted for an intended use. */
export interface VerifiedGrant extends GrantClaims {
  /** The `kid` of the key that signed it. */
  kid: string;
  /** `unavailable` only when introspection failed and `failOpen` is set. */
  introspection: IntrospectionOutcome;
}

export interface GrantVerifier {
  /**
   * Resolves the grant when `token` is a valid grant token for this issuer and audience that allows
   * `use`; otherwise rejects with a {@link GrantRefused} naming the reason.
   */
  verify(token: string, use: IntendedUse): Promise<VerifiedGrant>;
}

export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
export const MAX_CLOCK_TOLERANCE_SECONDS = 300;

export function createGrantVerifier(options: GrantVerifierOptions): GrantVerifier {
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required');
  if (typeof options.audience !== 'string' || options.audience === '') {
    throw new TypeError('audience is required');
  }
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!(clockTolerance >= 0 && clockTolerance <= MAX_CLOCK_TOLERANCE_SECONDS)) {
    throw new RangeError(`clockToleranceSeconds must be between 0 and ${MAX_CLOCK_TOLERANCE_SECONDS}`);
  }
  const now = options.now ?? (() => new Date());
  const issuerKeys = issuerKeysResolver({
    issuer: options.issuer,
    jwks: options.jwks,
    algorithms: options.algorithms,
    fetch: options.fetch,
    now: () => now().getTime(),
  });
  const introspect = options.introspection
    ? createIntrospector(options.introspection, () => now().getTime())
    : undefined;

  return {
    async verify(token, use) {
      if (typeof use?.action !== 'string' || use.action === '') throw new TypeError('use.action is required');
      if (typeof use.target !== 'string' || use.target === '') throw new TypeError('use.target is required');

      const { keys, algorithms } = await issuerKeys();
      const header = checkHeader(token, algorithms);
      let payload;
      try {
        ({ payload } = await jwtVerify(token, keysOrUnavailable(keys), {
          algorithms: [...algorithms],
          issuer: options.issuer,
          audience: options.audience,
          requiredClaims: [...REQUIRED_CLAIMS],
          clockTolerance,
          currentDate: now(),
        }));
      } catch (error) {
        throw refusalFor(error, {
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance,
          header,
        });
      }
      const claims = grantClaimsOf(payload);
      checkCovers(claims, use);
      const introspection = introspect ? await introspect(token, claims.grantId) : 'not_configured';
      return { ...claims, kid: header.kid, introspection };
    },
  };
}

/** One-off verification. A backend verifying many tokens should keep one verifier: it caches keys. */
export function verifyGrant(
  token: string,
  options: GrantVerifierOptions & IntendedUse,
): Promise<VerifiedGrant> {
  const { action, target, ...verifierOptions } = options;
  return createGrantVerifier(verifierOptions).verify(token, { action, target });
}

// jose reports a failed key-set fetch as a generic error; it becomes a refusal that says so.
function keysOrUnavailable(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (error) {
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof errors.JOSENotSupported
      ) {
        throw error;
      }
      throw new GrantRefused(
        'keys_unavailable',
        `The issuer's key set could not be used: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
}

interface Expected {
  issuer: string;
  audience: string;
  clockTolerance: number;
  header: GrantHeader;
}

function refusalFor(error: unknown, expected: Expected): unknown {
  if (error instanceof GrantRefused) return error;
  if (error instanceof errors.JWTExpired) {
    return new GrantRefused(
      'expired',
      `The token expired at ${isoTime(error.payload.exp)} (clock tolerance ${expected.clockTolerance}s)`,
    );
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const { claim, payload } = error;
    if (error.reason === 'missing')
      return new GrantRefused('missing_claim', `The token has no ${claim} claim`);
    if (error.reason === 'invalid') {
      return new GrantRefused('invalid_claim', `The token's ${claim} claim is not a number`);
    }
    switch (claim) {
      case 'iss':
        return new GrantRefused(
          'wrong_issuer',
          `The token was issued by ${quote(payload.iss)}, not ${quote(expected.issuer)}`,
        );
      case 'aud':
        return new GrantRefused(
          'wrong_audience',
          `The token is for audience ${quote(payload.aud)}, not ${quote(expected.audience)}`,
        );
      case 'nbf':
        return new GrantRefused(
          'not_yet_valid',
          `The token is not valid before ${isoTime(payload.nbf)} (clock tolerance ${expected.clockTolerance}s)`,
        );
      default:
        return new GrantRefused('invalid_claim', `The token's ${claim} claim is invalid`);
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new GrantRefused('bad_signature', 'The token signature does not verify with the published key');
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return new GrantRefused(
      'unknown_kid',
      `The issuer publishes no ${expected.header.alg} key with kid ${quote(expected.header.kid)}: it is retired or foreign`,
    );
  }
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return new GrantRefused(
      'unknown_kid',
      `The issuer publishes several keys with kid ${quote(expected.header.kid)}; none is trusted`,
    );
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return new GrantRefused('alg_not_allowed', "The token's alg is not one the issuer signs with");
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return new GrantRefused('malformed', `The token is malformed: ${error.message}`);
  }
  return error;
}

function isoTime(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds)
    ? new Date(seconds * 1000).toISOString()
    : quote(seconds);
}
