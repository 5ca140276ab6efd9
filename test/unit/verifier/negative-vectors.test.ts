import { expect } from 'chai';
import { exportSPKI, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { GrantRefused, type RefusalReason } from '../../../src/verifier/refusal.ts';
import { createGrantVerifier, type GrantVerifierOptions } from '../../../src/verifier/verifier.ts';
import {
  base64urlJson,
  expiresAt,
  fakeIntrospection,
  forge,
  forgeBytes,
  grantHeader,
  grantPayload,
  introspectionAnswer,
  issuedAt,
  issuerKeys,
  TestClock,
  use,
  validToken,
  verifierOptions,
  type Keys,
} from './fixtures.ts';

interface Vector {
  name: string;
  reason: RefusalReason;
  token(keys: Keys): Promise<string>;
  /** When the backend verifies; default a minute into the grant's life. */
  at?: Date;
  verifier?: Partial<GrantVerifierOptions>;
  use?: Partial<typeof use>;
  /** What the message must say, where the reason alone could hide a wrong cause. */
  message?: RegExp;
}

const seconds = (date: Date, s: number) => new Date(date.getTime() + s * 1000);
const grantClaim = grantPayload()['hourglass.dev'] as Record<string, unknown>;
const introspecting = (answer: () => Response | Promise<Response>) => ({
  introspection: {
    url: 'https://hourglass.test/introspect',
    bearerToken: () => 'k8s',
    fetch: fakeIntrospection(answer).fetch,
  },
});

const vectors: Vector[] = [
  {
    name: 'refuses alg none with an empty signature',
    reason: 'alg_not_allowed',
    token: async ({ key }) =>
      `${base64urlJson(grantHeader(key.kid, { alg: 'none' }))}.${base64urlJson(grantPayload())}.`,
  },
  {
    name: 'refuses HS256 keyed with the bytes of the published public key (PEM)',
    reason: 'alg_not_allowed',
    token: async ({ key }) => {
      const publicKey = (await importJWK({ ...key.publicJwk }, 'ES256', { extractable: true })) as CryptoKey;
      const pem = await exportSPKI(publicKey);
      return forge(new TextEncoder().encode(pem), grantHeader(key.kid, { alg: 'HS256' }), grantPayload());
    },
  },
  {
    name: 'refuses HS256 keyed with the published JWK JSON',
    reason: 'alg_not_allowed',
    token: async ({ key }) =>
      forge(
        new TextEncoder().encode(JSON.stringify(key.publicJwk)),
        grantHeader(key.kid, { alg: 'HS256' }),
        grantPayload(),
      ),
  },
  {
    name: 'refuses an RS256 token naming the issuer kid while ES256 is pinned',
    reason: 'alg_not_allowed',
    token: async ({ key }) =>
      forge(
        (await generateKeyPair('RS256')).privateKey,
        grantHeader(key.kid, { alg: 'RS256' }),
        grantPayload(),
      ),
  },
  {
    name: 'refuses an RS256 token even when RS256 is also accepted, because no RSA key is published',
    reason: 'unknown_kid',
    verifier: { algorithms: ['ES256', 'RS256'] },
    token: async ({ key }) =>
      forge(
        (await generateKeyPair('RS256')).privateKey,
        grantHeader(key.kid, { alg: 'RS256' }),
        grantPayload(),
      ),
  },
  {
    name: 'refuses an EdDSA token while ES256 is pinned',
    reason: 'alg_not_allowed',
    token: async ({ key }) =>
      forge(
        (await generateKeyPair('EdDSA')).privateKey,
        grantHeader(key.kid, { alg: 'EdDSA' }),
        grantPayload(),
      ),
  },
  {
    name: 'refuses a kid that the issuer never published',
    reason: 'unknown_kid',
    token: async ({ retired }) =>
      forge(retired.privateKey, grantHeader('not-a-published-kid'), grantPayload()),
  },
  {
    name: 'refuses a token signed by a retired key that is no longer in the JWKS',
    reason: 'unknown_kid',
    token: async ({ retired }) => validToken({ key: retired, retired, jwks: { keys: [] } }),
  },
  {
    name: 'refuses a token whose header names no kid',
    reason: 'unknown_kid',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid, { kid: undefined }), grantPayload()),
  },
  {
    name: 'refuses a token naming the published kid but signed by another key',
    reason: 'bad_signature',
    token: async ({ key, retired }) => forge(retired.privateKey, grantHeader(key.kid), grantPayload()),
  },
  {
    name: 'refuses a jku header pointing at a key set of the attacker',
    reason: 'forbidden_header',
    token: async ({ key }) =>
      forge(key.privateKey, grantHeader(key.kid, { jku: 'https://attacker.test/jwks.json' }), grantPayload()),
  },
  {
    name: 'refuses an x5u header',
    reason: 'forbidden_header',
    token: async ({ key }) =>
      forge(key.privateKey, grantHeader(key.kid, { x5u: 'https://attacker.test/cert.pem' }), grantPayload()),
  },
  {
    name: 'refuses an embedded jwk header, even though the token verifies with that key',
    reason: 'forbidden_header',
    token: async ({ retired }) =>
      forge(retired.privateKey, grantHeader(retired.kid, { jwk: { ...retired.publicJwk } }), grantPayload()),
  },
  {
    name: 'refuses an x5c header',
    reason: 'forbidden_header',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid, { x5c: ['MIIB'] }), grantPayload()),
  },
  {
    name: 'refuses a crit header demanding an extension',
    reason: 'forbidden_header',
    token: async ({ key }) =>
      forgeBytes(
        key.privateKey,
        grantHeader(key.kid, { crit: ['urn:example:scope'], 'urn:example:scope': 'all' }),
        new TextEncoder().encode(JSON.stringify(grantPayload())),
        { 'urn:example:scope': true },
      ),
  },
  {
    name: 'refuses typ JWT',
    reason: 'bad_typ',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid, { typ: 'JWT' }), grantPayload()),
  },
  {
    name: 'refuses a token without typ',
    reason: 'bad_typ',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid, { typ: undefined }), grantPayload()),
  },
  {
    name: 'refuses a token for another audience',
    reason: 'wrong_audience',
    token: async (keys) => validToken(keys, { audience: 'billing-api' }),
  },
  {
    name: 'refuses a token without aud',
    reason: 'missing_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ aud: undefined })),
  },
  {
    name: 'refuses a token naming two audiences, ours among them',
    reason: 'wrong_audience',
    token: async ({ key }) =>
      forge(key.privateKey, grantHeader(key.kid), grantPayload({ aud: ['orders-api', 'billing-api'] })),
  },
  {
    name: 'refuses a token with an empty audience list',
    reason: 'wrong_audience',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ aud: [] })),
  },
  {
    name: 'refuses a token from another issuer',
    reason: 'wrong_issuer',
    token: async (keys) => validToken(keys, { issuer: 'https://hourglass.other-cluster.svc' }),
  },
  {
    name: 'refuses an issuer that differs only by a trailing slash',
    reason: 'wrong_issuer',
    token: async (keys) => validToken(keys, { issuer: 'https://hourglass.hourglass-system.svc/' }),
  },
  {
    name: 'refuses a token past exp by exactly the clock tolerance',
    reason: 'expired',
    at: seconds(expiresAt, 5),
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses a token whose nbf is beyond the clock tolerance in the future',
    reason: 'not_yet_valid',
    at: seconds(issuedAt, -6),
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses a token without jti',
    reason: 'missing_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ jti: undefined })),
  },
  {
    name: 'refuses a token without sub',
    reason: 'missing_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ sub: undefined })),
  },
  {
    name: 'refuses a token without nbf',
    reason: 'missing_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ nbf: undefined })),
  },
  {
    name: 'refuses a token without exp',
    reason: 'missing_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ exp: undefined })),
  },
  {
    name: 'refuses a token without the hourglass.dev claim',
    reason: 'missing_claim',
    token: async ({ key }) =>
      forge(key.privateKey, grantHeader(key.kid), grantPayload({ 'hourglass.dev': undefined })),
  },
  {
    name: 'refuses a token whose actions is a string instead of a list',
    reason: 'invalid_claim',
    token: async ({ key }) =>
      forge(
        key.privateKey,
        grantHeader(key.kid),
        grantPayload({ 'hourglass.dev': { ...grantClaim, actions: 'orders:read' } }),
      ),
  },
  {
    name: 'refuses a token whose sub is not a service account',
    reason: 'invalid_claim',
    token: async ({ key }) => forge(key.privateKey, grantHeader(key.kid), grantPayload({ sub: 'alice' })),
  },
  {
    name: 'refuses a token whose exp is a string',
    reason: 'invalid_claim',
    token: async ({ key }) =>
      forge(key.privateKey, grantHeader(key.kid), grantPayload({ exp: '2099-01-01' })),
  },
  {
    name: 'refuses a payload tampered to add an action',
    reason: 'bad_signature',
    use: { action: 'orders:write' },
    token: async (keys) => {
      const [header, , signature] = (await validToken(keys)).split('.');
      const widened = grantPayload({
        'hourglass.dev': { ...grantClaim, actions: ['orders:read', 'orders:write'] },
      });
      return `${header}.${base64urlJson(widened)}.${signature}`;
    },
  },
  {
    name: 'refuses a truncated signature',
    reason: 'bad_signature',
    token: async (keys) => (await validToken(keys)).slice(0, -4),
  },
  {
    name: 'refuses a signature moved from another token',
    reason: 'bad_signature',
    token: async (keys) => {
      const [header, payload] = (await validToken(keys)).split('.');
      const signature = (await validToken(keys, { grantId: 'another-grant' })).split('.')[2];
      return `${header}.${payload}.${signature}`;
    },
  },
  {
    name: 'refuses something that is not a JWT',
    reason: 'malformed',
    token: async () => 'Bearer not-a-token',
  },
  {
    name: 'refuses a five-part JWE',
    reason: 'malformed',
    token: async ({ key }) =>
      `${base64urlJson(grantHeader(key.kid, { alg: 'dir', enc: 'A256GCM' }))}.a.b.c.d`,
  },
  {
    name: 'refuses a signed payload that is not a JSON object',
    reason: 'malformed',
    token: async ({ key }) =>
      forgeBytes(key.privateKey, grantHeader(key.kid), new TextEncoder().encode('["orders:read"]')),
  },
  {
    name: 'refuses an action the grant does not allow',
    reason: 'action_not_granted',
    use: { action: 'orders:write' },
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses an action that differs only in case',
    reason: 'action_not_granted',
    use: { action: 'Orders:Read' },
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses an action the token names only as "*", since actions match literally',
    reason: 'action_not_granted',
    token: async (keys) => validToken(keys, { actions: ['*'] }),
  },
  {
    name: 'refuses a sibling target',
    reason: 'target_not_granted',
    use: { target: 'postgres://orders-db/customers' },
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses a target below the granted one',
    reason: 'target_not_granted',
    use: { target: 'postgres://orders-db/orders/archive' },
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses a backend that asks about a glob instead of a literal target',
    reason: 'target_not_granted',
    use: { target: 'postgres://orders-db/*' },
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses a revoked grant that introspection reports inactive',
    reason: 'inactive',
    verifier: introspecting(() => introspectionAnswer({ active: false })),
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses when introspection is unreachable, failing closed by default',
    reason: 'introspection_unavailable',
    message: /could not answer: fetch failed/,
    verifier: introspecting(() => Promise.reject(new TypeError('fetch failed'))),
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses when introspection answers 401',
    reason: 'introspection_unavailable',
    message: /HTTP 401/,
    verifier: introspecting(() => introspectionAnswer({ error: 'unauthorized' }, 401)),
    token: async (keys) => validToken(keys),
  },
  {
    name: 'refuses when introspection answers without a boolean active',
    reason: 'introspection_unavailable',
    message: /no boolean "active"/,
    verifier: introspecting(() => introspectionAnswer({ active: 'true' })),
    token: async (keys) => validToken(keys),
  },
];

describe('grant verifier negative vectors', () => {
  let keys: Keys;
  before(async () => {
    keys = await issuerKeys();
  });

  it('accepts the unaltered token with the defaults every vector starts from', async () => {
    const verifier = createGrantVerifier(verifierOptions(keys, new TestClock()));
    const grant = await verifier.verify(await validToken(keys), use);
    expect(grant.grantId).to.equal('6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04');
  });

  it('has at least twenty vectors covering every refusal reason', () => {
    expect(vectors.length).to.be.at.least(20);
    const reasons = new Set(vectors.map((vector) => vector.reason));
    const everyReason: RefusalReason[] = [
      'malformed',
      'forbidden_header',
      'alg_not_allowed',
      'bad_typ',
      'unknown_kid',
      'bad_signature',
      'wrong_issuer',
      'wrong_audience',
      'expired',
      'not_yet_valid',
      'missing_claim',
      'invalid_claim',
      'action_not_granted',
      'target_not_granted',
      'inactive',
      'introspection_unavailable',
    ];
    expect([...reasons].sort()).to.deep.equal(everyReason.sort());
  });

  for (const vector of vectors) {
    it(`${vector.name} (${vector.reason})`, async () => {
      const token = await vector.token(keys);
      const clock = new TestClock(vector.at);
      const verifier = createGrantVerifier(verifierOptions(keys, clock, vector.verifier));
      const error = await verifier.verify(token, { ...use, ...vector.use }).then(
        () => expect.fail('the token was accepted'),
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(GrantRefused);
      const refused = error as GrantRefused;
      expect(refused.reason, refused.message).to.equal(vector.reason);
      expect(refused.message).to.match(vector.message ?? /\S/);
      expect(refused.message).to.not.include(token.split('.')[2] || token);
    });
  }
});
