import { expect } from 'chai';
import { createGrantVerifier, type GrantVerifier } from '../../../src/verifier/index.ts';
import type { IntrospectionOptions } from '../../../src/verifier/introspection.ts';
import {
  closedPortUrl,
  fakeIntrospection,
  introspectionAnswer,
  issuerKeys,
  outcome,
  refusal,
  sendJson,
  startServer,
  TestClock,
  use,
  validToken,
  verifierOptions,
  type Keys,
  type TestServer,
} from './fixtures.ts';

const introspectUrl = 'https://hourglass.test/introspect';

describe('grant verifier introspection', () => {
  let keys: Keys;
  let clock: TestClock;
  before(async () => {
    keys = await issuerKeys();
  });
  beforeEach(() => {
    clock = new TestClock();
  });

  function verifierWith(introspection: Partial<IntrospectionOptions>): GrantVerifier {
    return createGrantVerifier(
      verifierOptions(keys, clock, {
        introspection: { url: introspectUrl, bearerToken: () => 'k8s-token', ...introspection },
      }),
    );
  }
  const tokenFor = (grantId: string) => validToken(keys, { grantId });

  describe('against an HTTP endpoint on 127.0.0.1', () => {
    let server: TestServer;
    let answer: { status: number; body: unknown };
    beforeEach(async () => {
      answer = { status: 200, body: { active: true } };
      server = await startServer((_request, response) => sendJson(response, answer.body, answer.status));
    });
    afterEach(() => server.close());

    it('posts the token form-encoded with the Kubernetes bearer token and accepts an active grant', async () => {
      const verifier = verifierWith({
        url: `${server.url}/introspect`,
        bearerToken: async () => 'k8s-service-account-token',
      });
      const token = await validToken(keys);
      const grant = await verifier.verify(token, use);

      expect(grant.introspection).to.equal('active');
      expect(server.requests).to.have.length(1);
      const [request] = server.requests;
      expect(request).to.deep.include({ method: 'POST', path: '/introspect' });
      expect(request?.headers).to.include({
        authorization: 'Bearer k8s-service-account-token',
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(Object.fromEntries(new URLSearchParams(request?.body))).to.deep.equal({ token });
    });

    it('refuses a revoked grant the endpoint reports inactive', async () => {
      answer = { status: 200, body: { active: false } };
      const verifier = verifierWith({ url: `${server.url}/introspect` });
      const error = await refusal(verifier.verify(await validToken(keys), use));
      expect(error.reason).to.equal('inactive');
      expect(error.message).to.include('6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04');
    });

    it('refuses when the endpoint answers 503', async () => {
      answer = { status: 503, body: { error: 'unavailable' } };
      const verifier = verifierWith({ url: `${server.url}/introspect` });
      expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal(
        'introspection_unavailable',
      );
    });

    it('refuses when nothing listens on the endpoint', async () => {
      const verifier = verifierWith({ url: `${await closedPortUrl()}/introspect` });
      const error = await refusal(verifier.verify(await validToken(keys), use));
      expect(error.reason).to.equal('introspection_unavailable');
      expect(error.message).to.match(/could not answer/);
    });

    it('refuses a redirect rather than following it with the bearer token', async () => {
      const redirecting = await startServer((_request, response) => {
        response.writeHead(307, { location: `${server.url}/introspect` });
        response.end();
      });
      try {
        const verifier = verifierWith({ url: `${redirecting.url}/introspect` });
        const error = await refusal(verifier.verify(await validToken(keys), use));
        expect(error.message).to.match(/HTTP 307/);
        expect(redirecting.requests).to.have.length(1);
        expect(server.requests).to.have.length(0);
      } finally {
        await redirecting.close();
      }
    });

    it('accepts when nothing listens and failOpen is set, saying introspection was unavailable', async () => {
      const verifier = verifierWith({ url: `${await closedPortUrl()}/introspect`, failOpen: true });
      const grant = await verifier.verify(await validToken(keys), use);
      expect(grant.introspection).to.equal('unavailable');
    });
  });

  describe('failing', () => {
    const cases: { name: string; answer: () => Promise<Response>; message: RegExp }[] = [
      {
        name: 'refuses when the answer is not JSON',
        answer: async () => new Response('<html>', { status: 200 }),
        message: /not JSON/,
      },
      {
        name: 'refuses when the answer is JSON null',
        answer: async () => introspectionAnswer(null),
        message: /no boolean "active"/,
      },
    ];
    for (const { name, answer, message } of cases) {
      it(name, async () => {
        const verifier = verifierWith({ fetch: fakeIntrospection(answer).fetch });
        const error = await refusal(verifier.verify(await validToken(keys), use));
        expect(error.reason).to.equal('introspection_unavailable');
        expect(error.message).to.match(message);
      });
    }

    it('refuses when the endpoint does not answer within the timeout', async () => {
      const verifier = verifierWith({
        timeoutMs: 20,
        fetch: (_url, init) =>
          new Promise((_resolve, reject) =>
            init.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
          ),
      });
      const error = await refusal(verifier.verify(await validToken(keys), use));
      expect(error.reason).to.equal('introspection_unavailable');
      expect(error.message).to.match(/timed out/);
    });

    it('refuses when the bearer token cannot be read', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: true }));
      const verifier = verifierWith({
        fetch,
        bearerToken: () => Promise.reject(new Error('ENOENT: no such file, open token')),
      });
      expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal(
        'introspection_unavailable',
      );
      expect(calls).to.have.length(0);
    });

    it('still refuses an inactive grant when failOpen is set', async () => {
      const { fetch } = fakeIntrospection(() => introspectionAnswer({ active: false }));
      const verifier = verifierWith({ fetch, failOpen: true });
      expect(await outcome(verifier.verify(await validToken(keys), use))).to.equal('inactive');
    });

    it('never sends a token that failed local checks to introspection', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: true }));
      const verifier = verifierWith({ fetch });
      const token = await validToken(keys);
      expect(await outcome(verifier.verify(token, { ...use, action: 'orders:write' }))).to.equal(
        'action_not_granted',
      );
      expect(await outcome(verifier.verify(`${token.slice(0, -4)}`, use))).to.equal('bad_signature');
      expect(calls).to.have.length(0);
    });
  });

  describe('cache', () => {
    it('reuses an active answer within the cache TTL and asks again after it', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: true }));
      const verifier = verifierWith({ fetch, cacheTtlMs: 1000 });
      const token = await tokenFor('grant-a');

      await verifier.verify(token, use);
      clock.advance(999);
      await verifier.verify(token, use);
      expect(calls).to.have.length(1);
      clock.advance(1);
      await verifier.verify(token, use);
      expect(calls).to.have.length(2);
    });

    it('sees a revocation once the cached active answer is older than the TTL', async () => {
      let active = true;
      const { fetch } = fakeIntrospection(() => introspectionAnswer({ active }));
      const verifier = verifierWith({ fetch, cacheTtlMs: 500 });
      const token = await tokenFor('grant-a');

      expect(await outcome(verifier.verify(token, use))).to.equal('accepted');
      active = false;
      expect(await outcome(verifier.verify(token, use))).to.equal('accepted');
      clock.advance(500);
      expect(await outcome(verifier.verify(token, use))).to.equal('inactive');
    });

    it('caches an inactive answer as well', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: false }));
      const verifier = verifierWith({ fetch });
      const token = await tokenFor('grant-a');
      expect(await outcome(verifier.verify(token, use))).to.equal('inactive');
      expect(await outcome(verifier.verify(token, use))).to.equal('inactive');
      expect(calls).to.have.length(1);
    });

    it('does not cache a failure to answer', async () => {
      let up = false;
      const { fetch, calls } = fakeIntrospection(() =>
        up ? introspectionAnswer({ active: true }) : introspectionAnswer({}, 500),
      );
      const verifier = verifierWith({ fetch });
      const token = await tokenFor('grant-a');
      expect(await outcome(verifier.verify(token, use))).to.equal('introspection_unavailable');
      up = true;
      expect(await outcome(verifier.verify(token, use))).to.equal('accepted');
      expect(calls).to.have.length(2);
    });

    it('asks every time when the cache TTL is 0', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: true }));
      const verifier = verifierWith({ fetch, cacheTtlMs: 0 });
      const token = await tokenFor('grant-a');
      await verifier.verify(token, use);
      await verifier.verify(token, use);
      expect(calls).to.have.length(2);
    });

    it('keeps at most maxEntries answers, forgetting the least recently used', async () => {
      const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: true }));
      const verifier = verifierWith({ fetch, maxEntries: 2 });
      const [a, b, c] = await Promise.all(['grant-a', 'grant-b', 'grant-c'].map(tokenFor));
      const asked = () => calls.map((call) => call.body.get('token'));

      for (const token of [a, b, a, c]) await verifier.verify(token!, use);
      expect(asked()).to.deep.equal([a, b, c]);
      // a was used after b, so adding c evicted b.
      await verifier.verify(a!, use);
      await verifier.verify(b!, use);
      expect(asked()).to.deep.equal([a, b, c, b]);
    });

    it('sends one request for concurrent verifications of the same grant', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const { fetch, calls } = fakeIntrospection(async () => {
        await released;
        return introspectionAnswer({ active: true });
      });
      const verifier = verifierWith({ fetch });
      const token = await tokenFor('grant-a');
      const outcomes = Promise.all([1, 2, 3].map(() => outcome(verifier.verify(token, use))));
      // Signature checks run off the main thread: give all three time to reach introspection.
      await new Promise((resolve) => setTimeout(resolve, 100));
      release();
      expect(await outcomes).to.deep.equal(['accepted', 'accepted', 'accepted']);
      expect(calls).to.have.length(1);
    });

    for (const cacheTtlMs of [1001, -1, Number.NaN]) {
      it(`refuses to be configured with cacheTtlMs ${cacheTtlMs}`, () => {
        expect(() => verifierWith({ cacheTtlMs })).to.throw(RangeError);
      });
    }

    it('refuses to be configured with maxEntries 0', () => {
      expect(() => verifierWith({ maxEntries: 0 })).to.throw(RangeError);
    });
  });
});
