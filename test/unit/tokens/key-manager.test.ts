import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../../src/log.ts';
import { KeyManager, retireKey } from '../../../src/tokens/key-manager.ts';
import {
  generateSigningKey,
  keySetFromSecretData,
  keySetToSecretData,
  KeySet,
  type KeySecretStore,
  type StoredKeySecret,
} from '../../../src/tokens/keys.ts';
import { FakeClock } from '../runtime/fake-clock.ts';

const MINUTE = 60_000;
const conflict = () => Object.assign(new Error('the object has been modified'), { code: 409 });

/** One Secret shared by every replica of a test, with the API server's resourceVersion check. */
class FakeSecret implements KeySecretStore {
  data: Record<string, string> | undefined;
  version = 0;
  writes = 0;
  /** Runs once just before the next update lands, as a racing replica would. */
  beforeNextUpdate: (() => Promise<void>) | undefined;
  failNextRead: Error | undefined;

  async read(): Promise<StoredKeySecret | undefined> {
    if (this.failNextRead) {
      const error = this.failNextRead;
      this.failNextRead = undefined;
      throw error;
    }
    return this.data && { data: { ...this.data }, resourceVersion: String(this.version) };
  }

  async create(data: Record<string, string>): Promise<void> {
    if (this.data) throw conflict();
    this.data = { ...data };
    this.version++;
    this.writes++;
  }

  async update(data: Record<string, string>, resourceVersion: string): Promise<void> {
    const race = this.beforeNextUpdate;
    this.beforeNextUpdate = undefined;
    await race?.();
    if (!this.data || resourceVersion !== String(this.version)) throw conflict();
    this.data = { ...data };
    this.version++;
    this.writes++;
  }

  async keys(): Promise<KeySet> {
    return keySetFromSecretData(this.data ?? {});
  }
}

const quiet = () =>
  createLogger(
    'error',
    new Writable({
      write: (_chunk, _encoding, done) => done(),
    }),
  );

function replica(store: KeySecretStore, clock: FakeClock) {
  return new KeyManager({
    store,
    periodMs: 60 * MINUTE,
    publishLeadMs: 10 * MINUTE,
    maxTokenLifetimeMs: 120 * MINUTE,
    reloadMs: 5_000,
    log: quiet(),
    clock,
  });
}

/** Moves time on in reload-sized steps, letting every replica finish each reload. */
async function advance(clock: FakeClock, replicas: readonly KeyManager[], ms: number): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += 5_000) {
    await clock.advance(Math.min(5_000, ms - elapsed));
    await Promise.all(replicas.map((r) => r.settled()));
  }
}

const published = (set: KeySet, clock: FakeClock) =>
  set.publicJwks(new Date(clock.now()), 120 * MINUTE).keys.map((jwk) => jwk.kid);
const signing = (manager: KeyManager, clock: FakeClock) =>
  manager.current().current(new Date(clock.now())).kid;

describe('KeyManager', () => {
  const managers: KeyManager[] = [];
  afterEach(async () => {
    await Promise.all(managers.splice(0).map((m) => m.stop()));
  });
  const started = async (store: KeySecretStore, clock: FakeClock) => {
    const manager = replica(store, clock);
    managers.push(manager);
    await manager.init();
    manager.start();
    return manager;
  };

  it('creates the Secret with one signing key when there is none', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const manager = await started(store, clock);
    const stored = await store.keys();
    expect(stored.keys.map((k) => k.kid)).to.deep.equal([signing(manager, clock)]);
  });

  it('refuses to hand out keys before they are loaded', () => {
    expect(() => replica(new FakeSecret(), new FakeClock()).current()).to.throw(/not been loaded/);
  });

  it('has two replicas rotate the shared Secret once per period and sign with the same key', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const a = await started(store, clock);
    const b = await started(store, clock);
    const kids = new Set<string>();
    for (let minute = 0; minute < 130; minute++) {
      await advance(clock, [a, b], MINUTE);
      // Replicas may disagree only within one reload period of a change to the Secret.
      if ((minute + 1) % 10 !== 0) continue;
      expect(signing(a, clock), `at minute ${minute + 1}`).to.equal(signing(b, clock));
      expect(published(a.current(), clock)).to.deep.equal(published(b.current(), clock));
      kids.add(signing(a, clock));
    }
    // Created at 0, next keys added at 50 and 110: one write each, whoever won.
    expect(kids.size).to.equal(3);
    expect(store.writes).to.equal(3);
  });

  it('adopts the keys of a replica that rotated first instead of writing its own', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const manager = replica(store, clock);
    await manager.init();
    await clock.advance(50 * MINUTE);
    let winner = '';
    store.beforeNextUpdate = async () => {
      const other = replica(store, clock);
      await other.init();
      winner = other.current().next(new Date(clock.now()))?.kid ?? '';
    };
    expect(await manager.rotateIfDue()).to.equal(false);
    expect(winner).to.not.equal('');
    expect(manager.current().next(new Date(clock.now()))?.kid).to.equal(winner);
    expect(store.writes).to.equal(2);
  });

  it('keeps its last keys when the Secret cannot be read, and picks up changes on a later reload', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const manager = await started(store, clock);
    const before = signing(manager, clock);
    store.failNextRead = new Error('connection refused');
    await advance(clock, [manager], 5_000);
    expect(signing(manager, clock)).to.equal(before);
    await retireKey(store, before, () => new Date(clock.now()));
    await advance(clock, [manager], 5_000);
    expect(signing(manager, clock)).to.not.equal(before);
  });

  it('reload adopts what another writer put in the Secret, without rotating', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const manager = replica(store, clock);
    await manager.init();
    const first = signing(manager, clock);
    await clock.advance(55 * MINUTE);
    await retireKey(store, first, () => new Date(clock.now()));
    const writes = store.writes;
    await manager.reload();
    expect(signing(manager, clock)).to.not.equal(first);
    expect(published(manager.current(), clock)).to.not.include(first);
    expect(store.writes, 'writes by reload').to.equal(writes);
  });

  it('stops reloading once stopped', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const manager = await started(store, clock);
    await manager.stop();
    const before = signing(manager, clock);
    await retireKey(store, before, () => new Date(clock.now()));
    await advance(clock, [manager], 60_000);
    expect(signing(manager, clock)).to.equal(before);
  });
});

describe('the compromised-key drill (retireKey)', () => {
  it('retires the signing key in the Secret; every replica stops publishing it and signs with another within one reload', async () => {
    const clock = new FakeClock();
    const store = new FakeSecret();
    const replicas = [replica(store, clock), replica(store, clock)];
    for (const r of replicas) {
      await r.init();
      r.start();
    }
    try {
      const compromised = signing(replicas[0]!, clock);
      const { retired, signing: replacement } = await retireKey(
        store,
        compromised,
        () => new Date(clock.now()),
      );
      expect(retired.kid).to.equal(compromised);
      expect(replacement.kid).to.not.equal(compromised);
      await advance(clock, replicas, 5_000);
      for (const r of replicas) {
        expect(published(r.current(), clock)).to.deep.equal([replacement.kid]);
        expect(signing(r, clock)).to.equal(replacement.kid);
      }
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
    }
  });

  it('makes the published next key sign at once when the signing key is retired', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const current = await generateSigningKey(new Date(now.getTime() - 55 * MINUTE));
    const next = { ...(await generateSigningKey(now)), notBefore: new Date(now.getTime() + 5 * MINUTE) };
    const store = new FakeSecret();
    await store.create(await keySetToSecretData(new KeySet([current, next])));
    const { signing: replacement } = await retireKey(store, current.kid, () => now);
    expect(replacement.kid).to.equal(next.kid);
    expect((await store.keys()).current(now).kid).to.equal(next.kid);
  });

  it('retires a key that no longer signs without changing the signing key', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const old = await generateSigningKey(new Date(now.getTime() - 90 * MINUTE));
    const current = { ...(await generateSigningKey(now)), notBefore: new Date(now.getTime() - 30 * MINUTE) };
    const store = new FakeSecret();
    await store.create(await keySetToSecretData(new KeySet([old, current])));
    const { signing: stillSigning } = await retireKey(store, old.kid, () => now);
    expect(stillSigning.kid).to.equal(current.kid);
    const stored = await store.keys();
    expect(stored.publicJwks(now).keys.map((jwk) => jwk.kid)).to.deep.equal([current.kid]);
  });

  it('retries when another replica writes the Secret at the same time', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const key = await generateSigningKey(now);
    const store = new FakeSecret();
    await store.create(await keySetToSecretData(new KeySet([key])));
    store.beforeNextUpdate = async () => {
      store.version++;
    };
    await retireKey(store, key.kid, () => now);
    expect((await store.keys()).keys.find((k) => k.kid === key.kid)?.retiredAt).to.deep.equal(now);
  });

  it('refuses a kid the Secret does not hold, and writes nothing', async () => {
    const store = new FakeSecret();
    await store.create(await keySetToSecretData(new KeySet([await generateSigningKey(new Date())])));
    const error = await retireKey(store, 'unknown').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).to.match(/No signing key has kid unknown/);
    expect(store.writes).to.equal(1);
  });
});
