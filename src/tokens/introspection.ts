import { createLocalJWKSet, jwtVerify } from 'jose';
import type { AccessRequest } from '../api/types.ts';
import { GRANT_CLAIM, GRANT_TOKEN_TYPE, type GrantClaim, type GrantTokenPayload } from './contract.ts';
import { SIGNING_ALG, type KeySet } from './keys.ts';
import type { RevokedGrants } from './revocations.ts';

export interface IntrospectionDeps {
  issuer: string;
  keys: () => KeySet;
  /** The AccessRequest whose live or last grant has this id, from the controller's cache. */
  requestByGrantId: (grantId: string) => AccessRequest | undefined;
  revoked: RevokedGrants;
  now: () => Date;
}

export type Introspection =
  { active: false } | ({ active: true; scope: string; token_type: 'hourglass-grant' } & GrantTokenPayload);

/**
 * RFC 7662 for grant tokens: active only while the signature verifies, the token has not expired,
 * and its grant id is the live grant of a Granted request. Revoked, superseded (renewed), expired
 * and unknown tokens are all just `active: false`, as the RFC asks.
 */
export async function introspect(token: string, deps: IntrospectionDeps): Promise<Introspection> {
  const now = deps.now();
  let payload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(deps.keys().publicJwks(now)), {
      issuer: deps.issuer,
      typ: GRANT_TOKEN_TYPE,
      algorithms: [SIGNING_ALG],
      currentDate: now,
    }));
  } catch {
    return { active: false };
  }
  const jti = payload.jti;
  const claim = payload[GRANT_CLAIM] as GrantClaim | undefined;
  if (!jti || !claim || deps.revoked.has(jti, now)) return { active: false };
  const request = deps.requestByGrantId(jti);
  const grant = request?.status?.grant;
  const live =
    request?.status?.phase === 'Granted' &&
    request.metadata.uid === claim.request.uid &&
    grant?.id === jti &&
    Date.parse(grant.expiresAt ?? '') > now.getTime();
  if (!live) return { active: false };
  return {
    active: true,
    scope: claim.actions.join(' '),
    token_type: 'hourglass-grant',
    iss: String(payload.iss),
    sub: String(payload.sub),
    aud: Array.isArray(payload.aud) ? String(payload.aud[0]) : String(payload.aud),
    iat: Number(payload.iat),
    nbf: Number(payload.nbf),
    exp: Number(payload.exp),
    jti,
    [GRANT_CLAIM]: claim,
  };
}
