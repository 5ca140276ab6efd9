import { SignJWT } from 'jose';
import { canSign, type SigningKey } from './keys.ts';
import { GRANT_CLAIM, GRANT_TOKEN_TYPE, type GrantTokenPayload } from './contract.ts';

/** Everything a grant token says, as the controller knows it. */
export interface GrantTokenClaims {
  /** The issuer URL, used verbatim as `iss`. */
  issuer: string;
  /** Namespace of the request and of the subject's service account. */
  namespace: string;
  serviceAccountName: string;
  audience: string;
  /** The grant id, used as `jti`. */
  grantId: string;
  issuedAt: Date;
  expiresAt: Date;
  request: { namespace: string; name: string; uid: string };
  purpose: string;
  actions: readonly string[];
  target: string;
  workload: { kind: 'Pod' | 'Job'; name: string; uid: string };
  /** How many renewals preceded this grant: 0 for the first issue. */
  renewal: number;
}

export function serviceAccountSubject(namespace: string, serviceAccountName: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccountName}`;
}

export function grantTokenPayload(claims: GrantTokenClaims): GrantTokenPayload {
  // Rounding both down keeps exp - iat equal to a whole-second ttl and never extends the grant.
  const iat = Math.floor(claims.issuedAt.getTime() / 1000);
  const exp = Math.floor(claims.expiresAt.getTime() / 1000);
  if (!(exp > iat)) throw new Error('A grant token must expire after it is issued');
  if (!Number.isSafeInteger(claims.renewal) || claims.renewal < 0) {
    throw new Error('A grant token renewal count must be a non-negative integer');
  }
  for (const [field, value] of Object.entries({
    issuer: claims.issuer,
    namespace: claims.namespace,
    serviceAccountName: claims.serviceAccountName,
    audience: claims.audience,
    grantId: claims.grantId,
  })) {
    if (!value) throw new Error(`A grant token needs a non-empty ${field}`);
  }
  const { kind, name, uid } = claims.workload;
  return {
    iss: claims.issuer,
    sub: serviceAccountSubject(claims.namespace, claims.serviceAccountName),
    aud: claims.audience,
    iat,
    nbf: iat,
    exp,
    jti: claims.grantId,
    [GRANT_CLAIM]: {
      request: { namespace: claims.request.namespace, name: claims.request.name, uid: claims.request.uid },
      purpose: claims.purpose,
      actions: [...claims.actions],
      target: claims.target,
      ...(kind === 'Pod' ? { pod: { name, uid } } : { job: { name, uid } }),
      renewal: claims.renewal,
    },
  };
}

/** A compact JWS of the grant's claims, signed by `key`, which must be able to sign at `issuedAt`. */
export async function signGrantToken(key: SigningKey, claims: GrantTokenClaims): Promise<string> {
  if (!canSign(key, claims.issuedAt)) {
    throw new Error(`Signing key ${key.kid} may not sign at ${claims.issuedAt.toISOString()}`);
  }
  const payload = grantTokenPayload(claims);
  return new SignJWT({ ...payload })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: GRANT_TOKEN_TYPE })
    .sign(key.privateKey);
}
