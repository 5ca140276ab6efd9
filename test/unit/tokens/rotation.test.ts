import { expect } from 'chai';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { signGrantToken, type GrantTokenClaims } from '../../../src/tokens/grant-token.ts';
import { generateSigningKey, KeySet, type SigningKey } from '../../../src/tokens/keys.ts';
import { ensureSigningKey, retire, rotate, type RotationPolicy } from '../../../src/tokens/rotation.ts';

const t0 = new Date('2030-01-01T00:00:00Z');
const MINUTE = 60_000;
const at = (minutes: number) => new Date(t0.getTime() + minutes * MINUTE);
const policy: RotationPolicy = {
  periodMs: 60 * MINUTE,
  publishLeadMs: 10 * MINUTE,
  maxTokenLifetimeMs: 120 * MINUTE,
};
const issuer = 'https://hourglass.test';

async function key(createdAt: number, times: { notBefore?: number; retiredAt?: number } = {}) {
  const generated = await generateSigningKey(at(createdAt));
  return {
    ...generated,
    ...(times.notBefore !== undefined && { notBefore: at(times.notBefore) }),
    ...(times.retiredAt !== undefined && { retiredAt: at(times.retiredAt) }),
  };
}

const kids = (set: KeySet) => set.keys.map((k) => k.kid);
const published = (set: KeySet, now: Date) =>
  set.publicJwks(now, policy.maxTokenLifetimeMs).keys.map((jwk) => jwk.kid ?? '');

function claims(issuedAt: Date, ttlMinutes: number, grantId: string): GrantTokenClaims {
  return {
    issuer,
    namespace: 'batch',
    serviceAccountName: 'etl',
    audience: 'orders-api',
    grantId,
    issuedAt,
    expiresAt: new Date(issuedAt.getTime() + ttlMinutes * MINUTE),
    request: { namespace: 'batch', name: grantId, uid: `uid-${grantId}` },
    purpose: 'OPS-1 rotation test',
    actions: ['orders:read'],
    target: 'postgres://orders-db/orders',
    workload: { kind: 'Pod', name: 'etl', uid: 'pod-uid' },
    renewal: 0,
  };
}

/** Whether `token` verifies against the JWKS that `set` publishes at `now`. */
async function verifies(token: string, set: KeySet, now: Date): Promise<boolean> {
  return jwtVerify(token, createLocalJWKSet(set.publicJwks(now, policy.maxTokenLifetimeMs)), {
    issuer,
    algorithms: ['ES256'],
    currentDate: now,
  }).then(
    () => true,
    () => false,
  );
}

describe('signing key rotation, one step', () => {
  it('adds nothing while the signing key has signed for less than the period minus the publish lead', async () => {
    const set = new KeySet([await key(0)]);
    const result = await rotate(set, at(49), policy);
    expect(result.changed).to.equal(false);
    expect(result.set).to.equal(set);
  });

  it('adds a next key that is published at once and signs one publish lead later', async () => {
    const a = await key(0);
    const { set, changed, added } = await rotate(new KeySet([a]), at(50), policy);
    expect(changed).to.equal(true);
    const b = set.keys.find((k) => k.kid !== a.kid) as SigningKey;
    expect(added).to.deep.equal([b.kid]);
    expect(b.notBefore).to.deep.equal(at(60));
    expect(published(set, at(50))).to.have.members([a.kid, b.kid]);
    expect(set.current(at(59.9)).kid).to.equal(a.kid);
    expect(set.next(at(59.9))?.kid).to.equal(b.kid);
    expect(set.current(at(60)).kid).to.equal(b.kid);
    expect(set.stoppedSigningAt(a)).to.deep.equal(at(60));
  });

  it('publishes the next key a full lead ahead even when the check comes late', async () => {
    const { set } = await rotate(new KeySet([await key(0)]), at(75), policy);
    expect(set.next(at(75))?.notBefore).to.deep.equal(at(85));
  });

  it('adds no second next key while one waits to sign', async () => {
    const set = new KeySet([await key(0), await key(50, { notBefore: 60 })]);
    expect((await rotate(set, at(55), policy)).changed).to.equal(false);
  });

  it('measures the period from when the key started signing, not from when it was created', async () => {
    const set = new KeySet([await key(0), await key(50, { notBefore: 60 })]);
    expect((await rotate(set, at(109), policy)).changed, 'at 109').to.equal(false);
    expect((await rotate(set, at(110), policy)).added, 'at 110').to.have.length(1);
  });

  it('keeps an old key published until its last token may have expired, then drops it', async () => {
    const a = await key(0);
    const b = await key(50, { notBefore: 60 });
    const set = new KeySet([a, b]);
    // a signed until 60; a token it signed then lives at most 120 minutes.
    expect(published(set, at(179.9))).to.include(a.kid);
    expect(published(set, at(180))).to.not.include(a.kid);
    const kept = await rotate(set, at(179.9), policy);
    expect(kids(kept.set)).to.include(a.kid);
    const dropped = await rotate(set, at(180), policy);
    expect(dropped.dropped).to.deep.equal([a.kid]);
    expect(kids(dropped.set)).to.not.include(a.kid);
  });

  it('is idempotent: a second step at the same time changes nothing', async () => {
    const first = await rotate(new KeySet([await key(0)]), at(50), policy);
    const second = await rotate(first.set, at(50), policy);
    expect(second.changed).to.equal(false);
  });

  it('adds a key that signs at once when no key can sign', async () => {
    const a = await key(0, { retiredAt: 30 });
    const { set, added } = await rotate(new KeySet([a]), at(30), policy);
    expect(added).to.have.length(1);
    expect(set.current(at(30)).kid).to.equal(added[0]);
    expect(published(set, at(30))).to.deep.equal(added);
  });
});

describe('retiring a compromised key', () => {
  it('stops publishing the key at once and keeps it out of signing', async () => {
    const a = await key(0);
    const b = await key(50, { notBefore: 60 });
    const { set, changed } = retire(new KeySet([a, b]), a.kid, at(70));
    expect(changed).to.equal(true);
    expect(published(set, at(70))).to.deep.equal([b.kid]);
    expect(set.current(at(70)).kid).to.equal(b.kid);
  });

  it('leaves no signing key when it retires the signing key, and never falls back to the key before it', async () => {
    const a = await key(0);
    const b = await key(50, { notBefore: 60 });
    const { set } = retire(new KeySet([a, b]), b.kid, at(70));
    expect(set.signingAt(at(70))).to.equal(undefined);
    expect(published(set, at(70))).to.deep.equal([a.kid]);
  });

  it('makes the published next key sign at once when the signing key is retired', async () => {
    const a = await key(0);
    const b = await key(50, { notBefore: 60 });
    const retired = retire(new KeySet([a, b]), a.kid, at(55)).set;
    const { set, promoted, added } = await ensureSigningKey(retired, at(55));
    expect(promoted).to.equal(b.kid);
    expect(added).to.deep.equal([]);
    expect(set.current(at(55)).kid).to.equal(b.kid);
  });

  it('adds a new key that signs at once when the retired signing key had no successor', async () => {
    const a = await key(0);
    const retired = retire(new KeySet([a]), a.kid, at(20)).set;
    const { set, added } = await ensureSigningKey(retired, at(20));
    expect(added).to.have.length(1);
    expect(set.current(at(20)).kid).to.equal(added[0]);
    expect(set.current(at(20)).notBefore).to.equal(undefined);
  });

  it('keeps a retired key in the set, unpublished, until its tokens would have expired', async () => {
    const a = await key(0);
    const b = await key(50, { notBefore: 60 });
    const c = await key(110, { notBefore: 120 });
    const set = retire(new KeySet([a, b, c]), b.kid, at(130)).set;
    expect(published(set, at(130))).to.have.members([a.kid, c.kid]);
    // b signed from 60 until c took over at 120; its last token expires by 240.
    expect(kids((await rotate(set, at(239), policy)).set)).to.include(b.kid);
    expect(kids((await rotate(set, at(240), policy)).set)).to.not.include(b.kid);
  });

  it('keeps the earlier time when the key is retired again', async () => {
    const a = await key(0);
    const once = retire(new KeySet([a]), a.kid, at(10)).set;
    const twice = retire(once, a.kid, at(20));
    expect(twice.changed).to.equal(false);
    expect(twice.set.keys[0]?.retiredAt).to.deep.equal(at(10));
  });

  it('refuses a kid that is not in the set', async () => {
    expect(() => retire(new KeySet([]), 'nope', at(0))).to.throw(/No signing key has kid nope/);
  });
});

describe('signing key rotation over several periods', () => {
  const minuteOf = (now: Date) => (now.getTime() - t0.getTime()) / MINUTE;

  /** Rotates every `tickMinutes` from t0 to `minutes`, as a replica's timer does; `onTick` may change the set. */
  async function run(
    tickMinutes: number,
    minutes: number,
    onTick: (set: KeySet, now: Date) => Promise<KeySet | void> = async () => undefined,
  ): Promise<KeySet> {
    let set = new KeySet([await key(0)]);
    for (let minute = 0; minute <= minutes; minute += tickMinutes) {
      set = (await rotate(set, at(minute), policy)).set;
      set = (await onTick(set, at(minute))) ?? set;
    }
    return set;
  }

  for (const tickMinutes of [1, 7, 25]) {
    it(`always has exactly one signing key, published a full lead before it signs (checked every ${tickMinutes} min)`, async () => {
      const firstPublished = new Map<string, number>();
      const signers: string[] = [];
      await run(tickMinutes, 600, async (set, now) => {
        const signing = set.current(now);
        if (signers.at(-1) !== signing.kid) signers.push(signing.kid);
        for (const kid of published(set, now))
          if (!firstPublished.has(kid)) firstPublished.set(kid, minuteOf(now));
        const from = minuteOf(set.signingPeriod(signing).from);
        if (signers.length > 1) expect(from - firstPublished.get(signing.kid)!).to.be.at.least(10);
        // The signing key, the next one, and those whose tokens may live on: a bounded JWKS.
        expect(published(set, now).length).to.be.at.most(5);
      });
      expect(signers.length, 'signing keys used in 600 minutes').to.be.at.least(
        Math.floor(600 / (60 + tickMinutes)),
      );
    });
  }

  it('switches keys every period and publishes each next key a lead ahead, over three rotations', async () => {
    const switches: { minute: number; kid: string }[] = [];
    const firstPublished = new Map<string, number>();
    const set = await run(1, 200, async (set, now) => {
      const kid = set.current(now).kid;
      if (switches.at(-1)?.kid !== kid) switches.push({ minute: minuteOf(now), kid });
      for (const k of published(set, now)) if (!firstPublished.has(k)) firstPublished.set(k, minuteOf(now));
    });
    expect(switches.map((s) => s.minute)).to.deep.equal([0, 60, 120, 180]);
    for (const { minute, kid } of switches.slice(1)) {
      expect(firstPublished.get(kid), `first published, the key signing from ${minute}`).to.equal(
        minute - 10,
      );
    }
    // At 200 the key that signed until 60 is gone (60 + 120 <= 200); the keys that signed from 60
    // and 120, and the signing key, are published; the next key comes at 230.
    expect(published(set, at(200))).to.deep.equal(
      switches
        .slice(1)
        .map((s) => s.kid)
        .reverse(),
    );
  });

  it('verifies every token while it is unexpired across two rotations, and refuses a retired key’s at once', async () => {
    interface Issued {
      kid: string;
      token: string;
      expiresAt: number;
    }
    const issued: Issued[] = [];
    const outcomes: string[] = [];
    let compromised: string | undefined;
    await run(1, 420, async (set, now) => {
      const minute = minuteOf(now);
      // The first and the last token of each key, for the longest lifetime a token can have.
      if (minute % 60 === 0 || minute % 60 === 59) {
        const token = await signGrantToken(set.current(now), claims(now, 120, `grant-${minute}`));
        issued.push({ kid: decodeProtectedHeader(token).kid!, token, expiresAt: minute + 120 });
      }
      // The drill at 150, on the key that signed from 60 to 120: its tokens live until 239.
      let next = set;
      if (minute === 150) {
        compromised = issued.find((t) => t.expiresAt === 60 + 120)!.kid;
        next = retire(set, compromised, now).set;
      }
      for (const { kid, token, expiresAt } of issued) {
        const expected = minute < expiresAt && kid !== compromised;
        const actual = await verifies(token, next, now);
        if (actual !== expected) outcomes.push(`${kid} expiring at ${expiresAt}, at ${minute}: ${actual}`);
      }
      return next;
    });
    expect(outcomes).to.deep.equal([]);
    expect(new Set(issued.map((t) => t.kid)).size, 'keys that signed').to.be.at.least(4);
  });

  it('signs with a fresh key right after the signing key is retired, and rotates on from it', async () => {
    const signers: { minute: number; kid: string }[] = [];
    let retiredKid = '';
    await run(1, 200, async (set, now) => {
      let next = set;
      if (minuteOf(now) === 30) {
        retiredKid = set.current(now).kid;
        next = (await ensureSigningKey(retire(set, retiredKid, now).set, now)).set;
      }
      const kid = next.current(now).kid;
      if (signers.at(-1)?.kid !== kid) signers.push({ minute: minuteOf(now), kid });
      if (minuteOf(now) >= 30) expect(published(next, now)).to.not.include(retiredKid);
      return next;
    });
    expect(signers.map((s) => s.minute)).to.deep.equal([0, 30, 90, 150]);
    expect(signers.slice(1).map((s) => s.kid)).to.not.include(retiredKid);
  });
});
