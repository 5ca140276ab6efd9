import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { compactVerify, CompactSign, exportJWK, type JWK } from 'jose';
import {
  generateSigningKey,
  keySetFromSecretData,
  keySetToSecretData,
  KeySet,
  loadOrCreateKeySet,
  type KeySecretStore,
  type SigningKey,
} from '../../../src/tokens/keys.ts';

const now = new Date('2025-03-01T10:00:00Z');
const minutes = (n: number) => new Date(now.getTime() + n * 60_000);

function withTimes(
  key: SigningKey,
  times: Partial<Pick<SigningKey, 'createdAt' | 'notBefore' | 'retiredAt'>>,
) {
  return { ...key, ...times };
}

async function privateD(key: SigningKey): Promise<string> {
  const { d } = await exportJWK(key.privateKey);
  if (!d) throw new Error('test key has no d');
  return d;
}

async function signsVerifiably(signer: SigningKey, verifier: SigningKey): Promise<boolean> {
  const jws = await new CompactSign(new TextEncoder().encode('probe'))
    .setProtectedHeader({ alg: 'ES256' })
    .sign(signer.privateKey);
  return compactVerify(jws, verifier.publicJwk as JWK).then(
    () => true,
    () => false,
  );
}

async function expectRejection(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a rejection').to.be.instanceOf(Error);
  return error as Error;
}

class FakeStore implements KeySecretStore {
  data: Record<string, string> | undefined;
  creates = 0;
  reads = 0;
  /** What another replica writes just before our create lands. */
  racingData: Record<string, string> | undefined;
  createError: unknown;

  async read() {
    this.reads++;
    return this.data && { data: { ...this.data }, resourceVersion: '1' };
  }

  async update(): Promise<void> {
    throw new Error('loading or creating never updates');
  }

  async create(data: Record<string, string>) {
    this.creates++;
    if (this.createError) throw this.createError;
    if (this.racingData) this.data = this.racingData;
    if (this.data)
      throw Object.assign(new Error('secrets "hourglass-signing-keys" already exists'), { code: 409 });
    this.data = { ...data };
  }
}

describe('signing keys', () => {
  it('generates an ES256 key whose kid is the RFC 7638 SHA-256 thumbprint of its public JWK', async () => {
    const key = await generateSigningKey(now);
    const { crv, kty, x, y } = key.publicJwk;
    const canonical = JSON.stringify({ crv, kty, x, y });
    expect(key.kid).to.equal(createHash('sha256').update(canonical).digest('base64url'));
    expect(key.alg).to.equal('ES256');
    expect(key.createdAt).to.equal(now);
    expect(key.notBefore).to.equal(undefined);
    expect(key.publicJwk).to.deep.equal({
      kty: 'EC',
      crv: 'P-256',
      x,
      y,
      kid: key.kid,
      alg: 'ES256',
      use: 'sig',
    });
    expect(key.privateKey.type).to.equal('private');
  });

  it('generates a different key each time', async () => {
    const [a, b] = await Promise.all([generateSigningKey(now), generateSigningKey(now)]);
    expect(a.kid).to.not.equal(b.kid);
  });

  it('refuses a key set holding the same kid twice', async () => {
    const key = await generateSigningKey(now);
    expect(() => new KeySet([key, withTimes(key, { createdAt: minutes(1) })])).to.throw(/same kid/);
  });

  describe('current key', () => {
    const cases: {
      name: string;
      keys: { createdAt: number; notBefore?: number; retiredAt?: number }[];
      expected: number | 'none';
    }[] = [
      { name: 'signs with the only key', keys: [{ createdAt: -10 }], expected: 0 },
      {
        name: 'signs with the newest of two usable keys',
        keys: [{ createdAt: -10 }, { createdAt: -5 }],
        expected: 1,
      },
      {
        name: 'keeps signing with the older key while the newer one is published but before its notBefore',
        keys: [{ createdAt: -10 }, { createdAt: -5, notBefore: 5 }],
        expected: 0,
      },
      {
        name: 'switches to the newer key at its notBefore',
        keys: [{ createdAt: -10 }, { createdAt: -5, notBefore: 0 }],
        expected: 1,
      },
      {
        name: 'skips a newer key retired before it ever signed',
        keys: [{ createdAt: -10 }, { createdAt: -5, notBefore: 5, retiredAt: 0 }],
        expected: 0,
      },
      {
        name: 'does not go back to the older key once the newer one that replaced it is retired',
        keys: [{ createdAt: -10 }, { createdAt: -5, retiredAt: 0 }],
        expected: 'none',
      },
      {
        name: 'signs with a key whose retirement is still ahead',
        keys: [{ createdAt: -10 }, { createdAt: -5, retiredAt: 1 }],
        expected: 1,
      },
      {
        name: 'does not sign with a key created after now',
        keys: [{ createdAt: -10 }, { createdAt: 1 }],
        expected: 0,
      },
      {
        name: 'has no key when every key is retired',
        keys: [{ createdAt: -10, retiredAt: -1 }],
        expected: 'none',
      },
      { name: 'has no key when the set is empty', keys: [], expected: 'none' },
    ];
    for (const { name, keys, expected } of cases) {
      it(name, async () => {
        const generated = await Promise.all(
          keys.map(async ({ createdAt, notBefore, retiredAt }) =>
            withTimes(await generateSigningKey(minutes(createdAt)), {
              ...(notBefore !== undefined && { notBefore: minutes(notBefore) }),
              ...(retiredAt !== undefined && { retiredAt: minutes(retiredAt) }),
            }),
          ),
        );
        const set = new KeySet(generated);
        if (expected === 'none') expect(() => set.current(now)).to.throw(/No signing key/);
        else expect(set.current(now).kid).to.equal(generated[expected]?.kid);
      });
    }
  });

  it('publishes every key not retired, including one that does not sign yet, without private parts', async () => {
    const retired = withTimes(await generateSigningKey(minutes(-60)), { retiredAt: minutes(-1) });
    const active = await generateSigningKey(minutes(-30));
    const next = withTimes(await generateSigningKey(minutes(-1)), { notBefore: minutes(10) });
    const jwks = new KeySet([retired, active, next]).publicJwks(now);

    expect(jwks.keys.map((jwk) => jwk.kid)).to.have.members([active.kid, next.kid]);
    expect(jwks.keys).to.have.length(2);
    for (const jwk of jwks.keys) {
      expect(jwk).to.not.have.property('d');
      expect(jwk).to.include({ alg: 'ES256', use: 'sig', kty: 'EC', crv: 'P-256' });
    }
  });

  it('returns copies of the public JWKs, so a caller cannot alter the published keys', async () => {
    const key = await generateSigningKey(now);
    const set = new KeySet([key]);
    const first = set.publicJwks(now).keys[0] as JWK;
    first.d = 'injected';
    expect(set.publicJwks(now).keys[0]).to.not.have.property('d');
  });

  it('keeps the private key out of JSON and inspected output of keys and key sets', async () => {
    const key = await generateSigningKey(now);
    const d = await privateD(key);
    const set = new KeySet([key]);
    for (const rendered of [
      JSON.stringify(key),
      JSON.stringify(set),
      JSON.stringify(set.publicJwks(now)),
      inspect(key, { depth: Infinity, showHidden: true }),
      inspect(set, { depth: Infinity, showHidden: true }),
    ]) {
      expect(rendered).to.not.include(d);
    }
  });
});

describe('signing key Secret data', () => {
  it('stores one base64 JSON entry per key, named key-<kid>.jwk, with the private JWK and its times', async () => {
    const key = withTimes(await generateSigningKey(now), { notBefore: minutes(5), retiredAt: minutes(60) });
    const data = await keySetToSecretData(new KeySet([key]));

    expect(Object.keys(data)).to.deep.equal([`key-${key.kid}.jwk`]);
    const stored = JSON.parse(Buffer.from(data[`key-${key.kid}.jwk`] ?? '', 'base64').toString('utf8'));
    expect(stored).to.deep.equal({
      jwk: { ...key.publicJwk, d: await privateD(key) },
      createdAt: '2025-03-01T10:00:00.000Z',
      notBefore: '2025-03-01T10:05:00.000Z',
      retiredAt: '2025-03-01T11:00:00.000Z',
    });
  });

  it('round-trips keys with and without notBefore and retiredAt, private keys included', async () => {
    const plain = await generateSigningKey(minutes(-30));
    const scheduled = withTimes(await generateSigningKey(minutes(-20)), { notBefore: minutes(10) });
    const retired = withTimes(await generateSigningKey(minutes(-40)), { retiredAt: minutes(-5) });
    const original = new KeySet([plain, scheduled, retired]);

    const loaded = await keySetFromSecretData(await keySetToSecretData(original));

    expect(loaded.keys.map((key) => key.kid)).to.deep.equal(original.keys.map((key) => key.kid));
    for (const [index, key] of loaded.keys.entries()) {
      const before = original.keys[index] as SigningKey;
      expect(key.publicJwk).to.deep.equal(before.publicJwk);
      expect(key.alg).to.equal('ES256');
      expect(key.createdAt).to.deep.equal(before.createdAt);
      expect(key.notBefore).to.deep.equal(before.notBefore);
      expect(key.retiredAt).to.deep.equal(before.retiredAt);
      expect(await signsVerifiably(key, before), `loaded ${key.kid} signs for the original`).to.equal(true);
    }
    expect(loaded.current(now).kid).to.equal(plain.kid);
    expect(await keySetToSecretData(loaded)).to.deep.equal(await keySetToSecretData(original));
  });

  it('ignores entries that are not keys', async () => {
    const key = await generateSigningKey(now);
    const data = { ...(await keySetToSecretData(new KeySet([key]))), 'README.txt': 'aGVsbG8=' };
    expect((await keySetFromSecretData(data)).keys.map((k) => k.kid)).to.deep.equal([key.kid]);
  });

  it('refuses an entry whose name does not match the thumbprint of the key it holds', async () => {
    const [a, b] = await Promise.all([generateSigningKey(now), generateSigningKey(now)]);
    const data = await keySetToSecretData(new KeySet([a]));
    const error = await expectRejection(
      keySetFromSecretData({ [`key-${b.kid}.jwk`]: data[`key-${a.kid}.jwk`] ?? '' }),
    );
    expect(error.message).to.include(`key-${b.kid}.jwk`);
  });

  it('refuses an entry whose public coordinates belong to another private key', async () => {
    const [a, b] = await Promise.all([generateSigningKey(now), generateSigningKey(now)]);
    const jwk = { ...b.publicJwk, d: await privateD(a) };
    const value = Buffer.from(JSON.stringify({ jwk, createdAt: now.toISOString() })).toString('base64');
    await expectRejection(keySetFromSecretData({ [`key-${b.kid}.jwk`]: value }));
  });

  it('names the broken entry but never quotes its contents in errors', async () => {
    const key = await generateSigningKey(now);
    const d = await privateD(key);
    const name = `key-${key.kid}.jwk`;
    const broken = [
      Buffer.from(`{"jwk":{"d":"${d}"`).toString('base64'),
      Buffer.from(
        JSON.stringify({ jwk: { kty: 'EC', crv: 'P-256', d }, createdAt: now.toISOString() }),
      ).toString('base64'),
      Buffer.from(JSON.stringify({ jwk: { ...key.publicJwk, d }, createdAt: 'yesterday' })).toString(
        'base64',
      ),
    ];
    for (const value of broken) {
      const error = await expectRejection(keySetFromSecretData({ [name]: value }));
      expect(error.message).to.include(name);
      expect(error.message + String(error.stack)).to.not.include(d);
    }
  });
});

describe('loading or creating the key set', () => {
  it('creates a Secret with one new key when there is none, and returns that key', async () => {
    const store = new FakeStore();
    const set = await loadOrCreateKeySet(store, now);

    expect(store.creates).to.equal(1);
    expect(set.keys).to.have.length(1);
    expect(set.current(now).createdAt).to.equal(now);
    const stored = await keySetFromSecretData(store.data ?? {});
    expect(stored.keys.map((key) => key.kid)).to.deep.equal([set.current(now).kid]);
  });

  it('loads the existing Secret without writing', async () => {
    const existing = await generateSigningKey(minutes(-60));
    const store = new FakeStore();
    store.data = await keySetToSecretData(new KeySet([existing]));

    const set = await loadOrCreateKeySet(store, now);

    expect(store.creates).to.equal(0);
    expect(set.current(now).kid).to.equal(existing.kid);
  });

  it('uses the keys of the replica that created the Secret first when create conflicts', async () => {
    const winner = await generateSigningKey(now);
    const store = new FakeStore();
    store.racingData = await keySetToSecretData(new KeySet([winner]));

    const set = await loadOrCreateKeySet(store, now);

    expect(store.creates).to.equal(1);
    expect(store.reads).to.equal(2);
    expect(set.keys.map((key) => key.kid)).to.deep.equal([winner.kid]);
    expect(await signsVerifiably(set.current(now), winner)).to.equal(true);
  });

  it('fails when create conflicts but the Secret then cannot be read', async () => {
    const store = new FakeStore();
    store.createError = Object.assign(new Error('conflict'), { code: 409 });
    const error = await expectRejection(loadOrCreateKeySet(store, now));
    expect(error.message).to.match(/already existed/);
  });

  it('passes on any create error other than a conflict', async () => {
    const store = new FakeStore();
    store.createError = Object.assign(new Error('forbidden'), { code: 403 });
    const error = await expectRejection(loadOrCreateKeySet(store, now));
    expect(error.message).to.equal('forbidden');
    expect(store.reads).to.equal(1);
  });

  it('fails when the existing Secret holds no key that may sign now', async () => {
    const store = new FakeStore();
    store.data = await keySetToSecretData(
      new KeySet([withTimes(await generateSigningKey(minutes(-60)), { retiredAt: minutes(-1) })]),
    );
    await expectRejection(loadOrCreateKeySet(store, now));
    expect(store.creates).to.equal(0);
  });
});
