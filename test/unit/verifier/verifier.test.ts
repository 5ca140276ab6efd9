import { expect } from 'chai';
import { exportJWK, generateKeyPair } from 'jose';
import { createGrantVerifier, verifyGrant } from '../../../src/verifier/index.ts';
import {
  audience,
  expiresAt,
  forge,
  grantHeader,
  grantPayload,
  issuedAt,
  issuer,
  issuerKeys,
  outcome,
  refusal,
  sendJson,
  startServer,
  target,
  TestClock,
  use,
  validToken,
  verifierOptions,
  type Keys,
  type TestServer,
} from './fixtures.ts';

const at = (date: Date, seconds: number) => new Date(date.getTime() + seconds * 1000);

describe('grant verifier', () => {
  let keys: Keys;
  before(async () => {
    keys = await issuerKeys();
  });

  describe('accepting', () => {
    it('accepts a valid grant token and returns its claims, typed', async () => {
      const verifier = createGrantVerifier(verifierOptions(keys, new TestClock()));
      const grant = await verifier.verify(await validToken(keys), use);

      expect(grant).to.deep.include({
        grantId: '6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04',
        subject: 'system:serviceaccount:batch:etl',
        namespace: 'batch',
        serviceAccountName: 'etl',
        audience,
        actions: ['orders:read'],
        target,
        issuedAt,
        notBefore: issuedAt,
        expiresAt,
        kid: keys.key.kid,
        introspection: 'not_configured',
      });
      expect(grant.payload['hourglass.dev']).to.include({
        purpose: 'OPS-1234 nightly read of the orders table',
      });
    });

    it('accepts an audience given as a one-element list', async () => {
      const token = await forge(
        keys.key.privateKey,
        grantHeader(keys.key.kid),
        grantPayload({ aud: [audience] }),
      );
      const grant = await createGrantVerifier(verifierOptions(keys, new TestClock())).verify(token, use);
      expect(grant.audience).to.equal(audience);
    });

    it('accepts any one of several granted actions', async () => {
      const token = await validToken(keys, { actions: ['orders:read', 'orders:export'] });
      const verifier = createGrantVerifier(verifierOptions(keys, new TestClock()));
      expect(await outcome(verifier.verify(token, { action: 'orders:export', target }))).to.equal('accepted');
    });

    it('verifies one-off with verifyGrant', async () => {
      const grant = await verifyGrant(await validToken(keys), {
        ...verifierOptions(keys, new TestClock()),
        ...use,
      });
      expect(grant.grantId).to.equal('6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04');
    });

    it('treats a glob in a token target the way the policy engine does, within one segment', async () => {
      // Admission keeps globs out of tokens; this pins that the verifier shares the policy matcher.
      const token = await validToken(keys, { target: 'postgres://orders-db/orders_*' });
      const verifier = createGrantVerifier(verifierOptions(keys, new TestClock()));
      const check = (requested: string) =>
        outcome(verifier.verify(token, { action: 'orders:read', target: requested }));
      expect(await check('postgres://orders-db/orders_2025')).to.equal('accepted');
      expect(await check('postgres://orders-db/orders_2025/x')).to.equal('target_not_granted');
    });

    it('refuses a backend asking about an empty segment where the token target has a "*", as the policy engine does', async () => {
      const token = await validToken(keys, { target: 'postgres://orders-db/*' });
      const verifier = createGrantVerifier(verifierOptions(keys, new TestClock()));
      const check = (requested: string) =>
        outcome(verifier.verify(token, { action: 'orders:read', target: requested }));
      expect(await check('postgres://orders-db/orders')).to.equal('accepted');
      expect(await check('postgres://orders-db/')).to.equal('target_not_granted');
    });
  });

  describe('clock leeway', () => {
    const cases: { name: string; now: Date; tolerance?: number; expected: string }[] = [
      {
        name: 'accepts a token 4 s past exp within the default 5 s leeway',
        now: at(expiresAt, 4),
        expected: 'accepted',
      },
      {
        name: 'refuses a token 5 s past exp with the default leeway',
        now: at(expiresAt, 5),
        expected: 'expired',
      },
      {
        name: 'accepts a token 5 s before nbf with the default leeway',
        now: at(issuedAt, -5),
        expected: 'accepted',
      },
      {
        name: 'refuses a token 6 s before nbf with the default leeway',
        now: at(issuedAt, -6),
        expected: 'not_yet_valid',
      },
      { name: 'refuses a token at exp with no leeway', now: expiresAt, tolerance: 0, expected: 'expired' },
      {
        name: 'accepts a token 1 s before exp with no leeway',
        now: at(expiresAt, -1),
        tolerance: 0,
        expected: 'accepted',
      },
      {
        name: 'refuses a token 1 s before nbf with no leeway',
        now: at(issuedAt, -1),
        tolerance: 0,
        expected: 'not_yet_valid',
      },
      {
        name: 'accepts a token 30 s past exp with a 60 s leeway',
        now: at(expiresAt, 30),
        tolerance: 60,
        expected: 'accepted',
      },
    ];
    for (const { name, now, tolerance, expected } of cases) {
      it(name, async () => {
        const clock = new TestClock(now);
        const verifier = createGrantVerifier(
          verifierOptions(keys, clock, { clockToleranceSeconds: tolerance }),
        );
        expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal(expected);
      });
    }

    it('reads the clock at each verification, so a token accepted now expires later', async () => {
      const clock = new TestClock();
      const verifier = createGrantVerifier(verifierOptions(keys, clock));
      const token = await validToken(keys);
      expect(await outcome(verifier.verify(token, use))).to.equal('accepted');
      clock.at = at(expiresAt, 5);
      expect(await outcome(verifier.verify(token, use))).to.equal('expired');
    });
  });

  describe('configuration', () => {
    const clock = new TestClock();
    for (const algorithms of [['HS256'], ['none'], ['ES256', 'HS512'], []]) {
      it(`refuses to be configured with algorithms ${JSON.stringify(algorithms)}`, () => {
        expect(() => createGrantVerifier(verifierOptions(keys, clock, { algorithms }))).to.throw(TypeError);
      });
    }

    it('refuses to be configured with a leeway above five minutes', () => {
      expect(() =>
        createGrantVerifier(verifierOptions(keys, clock, { clockToleranceSeconds: 301 })),
      ).to.throw(RangeError);
    });

    it('refuses to be configured without an audience', () => {
      expect(() => createGrantVerifier(verifierOptions(keys, clock, { audience: '' }))).to.throw(TypeError);
    });

    it('refuses every token when the configured JWKS holds a private key', async () => {
      const privateJwk = { ...(await exportJWK(keys.key.privateKey)), kid: keys.key.kid, alg: 'ES256' };
      const verifier = createGrantVerifier(verifierOptions(keys, clock, { jwks: { keys: [privateJwk] } }));
      expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal('keys_unavailable');
    });

    it('throws, not refuses, when the backend names no action or target', async () => {
      const verifier = createGrantVerifier(verifierOptions(keys, clock));
      const token = await validToken(keys);
      for (const bad of [
        { action: '', target },
        { action: 'orders:read', target: '' },
      ]) {
        const error = await verifier.verify(token, bad).catch((e: unknown) => e);
        expect(error).to.be.instanceOf(TypeError);
      }
    });
  });

  describe('keys from the issuer', () => {
    let server: TestServer;
    let discovery: Record<string, unknown>;
    let issuerUrl: string;

    beforeEach(async () => {
      server = await startServer((request, response) => {
        if (request.path === '/.well-known/openid-configuration') return sendJson(response, discovery);
        if (request.path === '/.well-known/jwks.json') {
          return sendJson(response, keys.jwks);
        }
        sendJson(response, { error: 'not found' }, 404);
      });
      issuerUrl = server.url;
      discovery = {
        issuer: issuerUrl,
        jwks_uri: `${issuerUrl}/.well-known/jwks.json`,
        id_token_signing_alg_values_supported: ['ES256'],
        introspection_endpoint: `${issuerUrl}/introspect`,
      };
    });
    afterEach(() => server.close());

    const discovering = (clock = new TestClock()) =>
      createGrantVerifier({ issuer: issuerUrl, audience, now: clock.now });
    const tokenFrom = (issuerValue: string) => validToken(keys, { issuer: issuerValue });

    it('discovers the JWKS and algorithms from the issuer and accepts its token', async () => {
      const verifier = discovering();
      const grant = await verifier.verify(await tokenFrom(issuerUrl), use);
      expect(grant.kid).to.equal(keys.key.kid);
      expect(server.requests.map((request) => request.path)).to.deep.equal([
        '/.well-known/openid-configuration',
        '/.well-known/jwks.json',
      ]);
    });

    it('fetches discovery and keys once for many verifications', async () => {
      const verifier = discovering();
      const token = await tokenFrom(issuerUrl);
      for (let i = 0; i < 3; i++) await verifier.verify(token, use);
      expect(server.requests).to.have.length(2);
    });

    it('uses a JWKS URL given directly, without discovery', async () => {
      const clock = new TestClock();
      const verifier = createGrantVerifier({
        issuer,
        audience,
        jwks: `${issuerUrl}/.well-known/jwks.json`,
        now: clock.now,
      });
      expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal('accepted');
      expect(server.requests.map((request) => request.path)).to.deep.equal(['/.well-known/jwks.json']);
    });

    it('pins the algorithms the issuer publishes, refusing ES256 when it publishes only EdDSA', async () => {
      discovery.id_token_signing_alg_values_supported = ['EdDSA'];
      expect(await outcome(discovering().verify(await tokenFrom(issuerUrl), use))).to.equal(
        'alg_not_allowed',
      );
    });

    it('ignores HS256 and none when the issuer publishes them', async () => {
      discovery.id_token_signing_alg_values_supported = ['HS256', 'none', 'ES256'];
      const verifier = discovering();
      const hmac = await forge(
        new TextEncoder().encode(JSON.stringify(keys.key.publicJwk)),
        grantHeader(keys.key.kid, { alg: 'HS256' }),
        grantPayload({ iss: issuerUrl }),
      );
      const error = await refusal(verifier.verify(hmac, use));
      expect(error.reason).to.equal('alg_not_allowed');
      expect(error.message).to.match(/the issuer signs with ES256$/);
      expect(await outcome(verifier.verify(await tokenFrom(issuerUrl), use))).to.equal('accepted');
    });

    it('refuses every token when the issuer publishes only symmetric algorithms', async () => {
      discovery.id_token_signing_alg_values_supported = ['HS256'];
      const error = await refusal(discovering().verify(await tokenFrom(issuerUrl), use));
      expect(error.reason).to.equal('keys_unavailable');
      expect(error.message).to.match(/publishes no asymmetric signing algorithm/);
    });

    it('defaults to ES256 when discovery lists no algorithms', async () => {
      delete discovery.id_token_signing_alg_values_supported;
      const rs256 = await forge(
        (await generateKeyPair('RS256')).privateKey,
        grantHeader(keys.key.kid, { alg: 'RS256' }),
        grantPayload({ iss: issuerUrl }),
      );
      const verifier = discovering();
      expect(await outcome(verifier.verify(rs256, use))).to.equal('alg_not_allowed');
      expect(await outcome(verifier.verify(await tokenFrom(issuerUrl), use))).to.equal('accepted');
    });

    it('refuses every token when discovery names another issuer', async () => {
      discovery.issuer = `${issuerUrl}/`;
      const error = await refusal(discovering().verify(await tokenFrom(issuerUrl), use));
      expect(error.reason).to.equal('keys_unavailable');
      expect(error.message).to.match(/names issuer/);
    });

    it('refuses a token signed by a key the issuer has retired from its JWKS', async () => {
      const retired = await validToken({ ...keys, key: keys.retired }, { issuer: issuerUrl });
      expect(await outcome(discovering().verify(retired, use))).to.equal('unknown_kid');
    });

    it('refuses when the JWKS cannot be fetched', async () => {
      discovery.jwks_uri = `${issuerUrl}/missing-jwks.json`;
      const error = await refusal(discovering().verify(await tokenFrom(issuerUrl), use));
      expect(error.reason).to.equal('keys_unavailable');
      expect(error.message).to.match(/key set could not be used/);
    });

    it('refuses without refetching for 5 s after discovery failed, then tries again', async () => {
      const clock = new TestClock();
      let fetches = 0;
      const verifier = createGrantVerifier({
        issuer: issuerUrl,
        audience,
        now: clock.now,
        // The first discovery fails; later ones reach the live server.
        fetch: async (url, init) => {
          fetches++;
          return fetches === 1 ? Promise.reject(new TypeError('fetch failed')) : fetch(url, init);
        },
      });
      const live = await tokenFrom(issuerUrl);
      expect(await outcome(verifier.verify(live, use))).to.equal('keys_unavailable');
      clock.advance(4_999);
      expect(await outcome(verifier.verify(live, use))).to.equal('keys_unavailable');
      expect(fetches).to.equal(1);
      clock.advance(1);
      expect(await outcome(verifier.verify(live, use))).to.equal('accepted');
    });
  });
});
