import type { JWTPayload } from 'jose';
import { GRANT_CLAIM, matchesTarget } from '../tokens/contract.ts';
import { quote } from './header.ts';
import { refuse } from './refusal.ts';

/** The claims jose must find present before it checks their values. */
export const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti'] as const;

const SERVICE_ACCOUNT_SUBJECT = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** What a verified grant token says, typed. */
export interface GrantClaims {
  /** `jti`: the grant id. */
  grantId: string;
  /** `sub`: `system:serviceaccount:<namespace>:<name>`. */
  subject: string;
  namespace: string;
  serviceAccountName: string;
  /** The one audience, which is this backend's. */
  audience: string;
  actions: readonly string[];
  target: string;
  issuedAt: Date;
  notBefore: Date;
  expiresAt: Date;
  /** Every claim of the token, for fields this verifier does not check (purpose, request, workload). */
  payload: JWTPayload;
}

/** What the backend is about to do. Both are literal: no globs. */
export interface IntendedUse {
  action: string;
  target: string;
}

/**
 * The grant's claims, once jose has verified the signature, `iss`, that `aud` includes ours, the
 * presence of every required claim and the times. Refuses what jose does not check: more than one
 * audience, and the types of `jti`, `sub` and the `hourglass.dev` claim.
 */
export function grantClaimsOf(payload: JWTPayload): GrantClaims {
  const audience = singleAudience(payload.aud);
  const grantId = nonEmptyString(payload.jti, 'jti');
  const subject = nonEmptyString(payload.sub, 'sub');
  const [, namespace, serviceAccountName] = SERVICE_ACCOUNT_SUBJECT.exec(subject) ?? [];
  if (namespace === undefined || serviceAccountName === undefined) {
    refuse('invalid_claim', `The token's sub ${quote(subject)} is not a service account`);
  }

  const grant = payload[GRANT_CLAIM];
  if (grant === undefined) refuse('missing_claim', `The token has no ${GRANT_CLAIM} claim`);
  if (typeof grant !== 'object' || grant === null || Array.isArray(grant)) {
    refuse('invalid_claim', `The token's ${GRANT_CLAIM} claim is not an object`);
  }
  const { actions, target } = grant as { actions?: unknown; target?: unknown };
  if (actions === undefined) refuse('missing_claim', `The token has no ${GRANT_CLAIM}.actions claim`);
  if (
    !Array.isArray(actions) ||
    actions.length === 0 ||
    !actions.every((action) => typeof action === 'string' && action.length > 0)
  ) {
    refuse('invalid_claim', `The token's ${GRANT_CLAIM}.actions is not a non-empty list of action names`);
  }
  if (target === undefined) refuse('missing_claim', `The token has no ${GRANT_CLAIM}.target claim`);

  return {
    grantId,
    subject,
    namespace,
    serviceAccountName,
    audience,
    actions: Object.freeze([...(actions as string[])]),
    target: nonEmptyString(target, `${GRANT_CLAIM}.target`),
    // jose has checked that these are numbers and present.
    issuedAt: new Date((payload.iat as number) * 1000),
    notBefore: new Date((payload.nbf as number) * 1000),
    expiresAt: new Date((payload.exp as number) * 1000),
    payload,
  };
}

/**
 * Refuses unless the grant covers `use`. The action must be one of the token's actions, literally.
 * The target goes through the policy engine's matcher with the token's target as the pattern.
 * Tokens carry literal targets (admission refuses wildcards), so in practice this is equality; a
 * `*` in a requested target matches nothing but a `*` in the token's.
 */
export function checkCovers(grant: GrantClaims, use: IntendedUse): void {
  if (!grant.actions.includes(use.action)) {
    refuse(
      'action_not_granted',
      `The grant allows ${grant.actions.map(quote).join(', ')}, not ${quote(use.action)}`,
    );
  }
  if (!matchesTarget(grant.target, use.target)) {
    refuse('target_not_granted', `The grant is for target ${quote(grant.target)}, not ${quote(use.target)}`);
  }
}

function singleAudience(aud: unknown): string {
  const audiences = typeof aud === 'string' ? [aud] : aud;
  if (!Array.isArray(audiences) || audiences.length !== 1 || typeof audiences[0] !== 'string') {
    refuse(
      'wrong_audience',
      `The token names ${Array.isArray(audiences) ? audiences.length : 'no'} audiences; a grant token names exactly one`,
    );
  }
  return audiences[0];
}

function nonEmptyString(value: unknown, claim: string): string {
  if (value === undefined) refuse('missing_claim', `The token has no ${claim} claim`);
  if (typeof value !== 'string' || value.length === 0) {
    refuse('invalid_claim', `The token's ${claim} claim is not a non-empty string`);
  }
  return value;
}
