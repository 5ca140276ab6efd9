/**
 * The grant token verifier for backends outside Kubernetes. See docs/verifier.md.
 */
export {
  createGrantVerifier,
  verifyGrant,
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  type GrantVerifier,
  type GrantVerifierOptions,
  type VerifiedGrant,
} from './verifier.ts';
export type { GrantClaims, IntendedUse } from './claims.ts';
export {
  MAX_INTROSPECTION_CACHE_TTL_MS,
  type FetchLike,
  type IntrospectionOptions,
  type IntrospectionOutcome,
} from './introspection.ts';
export { GrantRefused, type RefusalReason } from './refusal.ts';
