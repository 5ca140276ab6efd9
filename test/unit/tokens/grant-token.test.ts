import { expect } from 'chai';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { GRANT_TOKEN_TYPE } from '../../../src/tokens/contract.ts';
import {
  signGrantToken,
  serviceAccountSubject,
  type GrantTokenClaims,
} from '../../../src/tokens/grant-token.ts';
import { generateSigningKey, KeySet, type SigningKey } from '../../../src/tokens/keys.ts';

const now = new Date('2025-03-01T10:00:00Z');
const ttlSeconds = 15 * 60;
const issuer = 'https://hourglass.hourglass-system.svc';

function claims(overrides: Partial<GrantTokenClaims> = {}): GrantTokenClaims {
  return {
    issuer,
    namespace: 'batch',
    serviceAccountName: 'etl',
    audience: 'orders-api',
    grantId: '6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04',
    issuedAt: now,
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000),
    request: { namespace: 'batch', name: 'etl-read-orders', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000001' },
    purpose: 'OPS-1234 nightly read of the orders table',
    actions: ['orders:read'],
    target: 'postgres://orders-db/orders',
    workload: { kind: 'Pod', name: 'etl-7xk2p', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000002' },
    renewal: 0,
    ...overrides,
  };
}

async function verify(token: string, keys: KeySet, at = now) {
  return jwtVerify(token, createLocalJWKSet(keys.publicJwks(at)), {
    algorithms: ['ES256'],
    issuer,
    audience: 'orders-api',
    typ: GRANT_TOKEN_TYPE,
    currentDate: at,
  });
}

async function verificationError(promise: Promise<unknown>): Promise<{ code?: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as { code?: string },
  );
  expect(error, 'expected verification to fail').to.not.equal(undefined);
  return error as { code?: string };
}

describe('grant tokens', () => {
  let key: SigningKey;
  let keys: KeySet;
  before(async () => {
    key = await generateSigningKey(new Date(now.getTime() - 3_600_000));
    keys = new KeySet([key]);
  });

  it('carries exactly the header and claims of the API contract for a pod subject', async () => {
    const token = await signGrantToken(key, claims());
    const { payload, protectedHeader } = await verify(token, keys);

    expect(protectedHeader).to.deep.equal({ alg: 'ES256', kid: key.kid, typ: 'hourglass-grant+jwt' });
    expect(payload).to.deep.equal({
      iss: issuer,
      sub: 'system:serviceaccount:batch:etl',
      aud: 'orders-api',
      iat: 1740823200,
      nbf: 1740823200,
      exp: 1740823200 + ttlSeconds,
      jti: '6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04',
      'hourglass.dev': {
        request: { namespace: 'batch', name: 'etl-read-orders', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000001' },
        purpose: 'OPS-1234 nightly read of the orders table',
        actions: ['orders:read'],
        target: 'postgres://orders-db/orders',
        pod: { name: 'etl-7xk2p', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000002' },
        renewal: 0,
      },
    });
  });

  it('names a Job subject under job and not pod, and carries the renewal count', async () => {
    const token = await signGrantToken(
      key,
      claims({ workload: { kind: 'Job', name: 'etl', uid: 'job-uid' }, renewal: 3 }),
    );
    const { payload } = await verify(token, keys);
    expect(payload['hourglass.dev']).to.deep.include({ job: { name: 'etl', uid: 'job-uid' }, renewal: 3 });
    expect(payload['hourglass.dev']).to.not.have.property('pod');
  });

  it('expires exactly ttl seconds after it is issued, even when issued mid-second', async () => {
    const issuedAt = new Date(now.getTime() + 400);
    const token = await signGrantToken(
      key,
      claims({ issuedAt, expiresAt: new Date(issuedAt.getTime() + ttlSeconds * 1000) }),
    );
    const { payload } = await verify(token, keys);
    expect(payload.exp! - payload.iat!).to.equal(ttlSeconds);
    expect(payload.nbf).to.equal(payload.iat);
  });

  it('does not verify after it expires', async () => {
    const token = await signGrantToken(key, claims());
    const error = await verificationError(verify(token, keys, new Date(now.getTime() + ttlSeconds * 1000)));
    expect(error.code).to.equal('ERR_JWT_EXPIRED');
  });

  it('does not verify with another key, even one published under the same kid', async () => {
    const token = await signGrantToken(key, claims());
    const other = await generateSigningKey(now);

    const unknownKid = await verificationError(verify(token, new KeySet([other])));
    expect(unknownKid.code).to.equal('ERR_JWKS_NO_MATCHING_KEY');

    const impostor: JWK = { ...other.publicJwk, kid: key.kid };
    const forged = await verificationError(
      jwtVerify(token, createLocalJWKSet({ keys: [impostor] }), { currentDate: now }),
    );
    expect(forged.code).to.equal('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('signs with the key it is given, naming it in the header', async () => {
    const newer = await generateSigningKey(now);
    const token = await signGrantToken(newer, claims());
    expect(decodeProtectedHeader(token).kid).to.equal(newer.kid);
    await verify(token, new KeySet([key, newer]));
  });

  it('builds the subject from namespace and service account name', () => {
    expect(serviceAccountSubject('batch', 'etl')).to.equal('system:serviceaccount:batch:etl');
  });

  const refusals: {
    name: string;
    error: RegExp;
    key?: (key: SigningKey) => SigningKey;
    claims?: Partial<GrantTokenClaims>;
  }[] = [
    {
      name: 'refuses a token that expires when it is issued',
      error: /expire after/,
      claims: { expiresAt: now },
    },
    {
      name: 'refuses a token that expires within the second it is issued',
      error: /expire after/,
      claims: { expiresAt: new Date(now.getTime() + 999) },
    },
    { name: 'refuses a negative renewal count', error: /renewal/, claims: { renewal: -1 } },
    { name: 'refuses a fractional renewal count', error: /renewal/, claims: { renewal: 1.5 } },
    { name: 'refuses an empty audience', error: /audience/, claims: { audience: '' } },
    { name: 'refuses an empty issuer', error: /issuer/, claims: { issuer: '' } },
    { name: 'refuses an empty grant id', error: /grantId/, claims: { grantId: '' } },
    {
      name: 'refuses to sign with a retired key',
      error: /may not sign/,
      key: (k) => ({ ...k, retiredAt: now }),
    },
    {
      name: 'refuses to sign with a key before its notBefore',
      error: /may not sign/,
      key: (k) => ({ ...k, notBefore: new Date(now.getTime() + 1000) }),
    },
  ];
  for (const refusal of refusals) {
    it(refusal.name, async () => {
      const signing = refusal.key ? refusal.key(key) : key;
      const error = await signGrantToken(signing, claims(refusal.claims)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, 'expected signing to fail').to.be.instanceOf(Error);
      expect((error as Error).message).to.match(refusal.error);
    });
  }
});
