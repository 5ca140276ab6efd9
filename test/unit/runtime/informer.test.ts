import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  type Informer,
  KubeConfig,
  type KubernetesListObject,
  type RequestContext,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import {
  type InformerOptions,
  type InformerRestart,
  type ListWatchSource,
  StoppableListWatch,
  SupervisedInformer,
  type WatchEnd,
} from '../../../src/runtime/informer.ts';
import { deferred, FakeClock, settle } from './fake-clock.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- stands in for both of ListWatch's callback types
type Callback = (arg?: any) => void;

/** Stands in for client-node's ListWatch; the test plays the API server through it. */
class FakeListWatch implements Informer<V1ConfigMap> {
  readonly source: ListWatchSource<V1ConfigMap>;
  readonly callbacks = new Map<string, Callback[]>();
  startResult: Promise<void> = Promise.resolve();
  started = false;
  stopped = false;

  constructor(source: ListWatchSource<V1ConfigMap>) {
    this.source = source;
  }

  on(verb: string, callback: Callback): void {
    this.callbacks.set(verb, [...(this.callbacks.get(verb) ?? []), callback]);
  }

  off(verb: string, callback: Callback): void {
    this.callbacks.set(
      verb,
      (this.callbacks.get(verb) ?? []).filter((cb) => cb !== callback),
    );
  }

  start(): Promise<void> {
    this.started = true;
    return this.startResult;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  emit(verb: 'add' | 'update' | 'delete' | 'connect' | 'error', arg?: unknown): void {
    for (const callback of this.callbacks.get(verb) ?? []) callback(arg);
  }

  /** What ListWatch does on (re)connecting without a resourceVersion: list, then report to its own cache. */
  async connectAndList(): Promise<void> {
    this.emit('connect');
    const list = await this.source.list();
    for (const obj of list.items) this.emit('add', obj);
  }

  /** What ListWatch does when a watch request ends and it watches again from its resourceVersion. */
  reconnect(end: WatchEnd, answered: boolean): void {
    this.source.watchObserver?.ended(end);
    this.emit('connect');
    if (answered) this.source.watchObserver?.established();
  }
}

function configMap(name: string, resourceVersion: string, namespace = 'team'): V1ConfigMap {
  return { metadata: { name, namespace, resourceVersion }, data: { version: resourceVersion } };
}

/** A supervised informer over fake ListWatches, a fake clock and a fake server-side collection. */
function harness(options: Partial<InformerOptions<V1ConfigMap>> = {}) {
  const clock = new FakeClock();
  const server = new Map<string, V1ConfigMap>();
  const listWatches: FakeListWatch[] = [];
  const changes: string[] = [];
  const restarts: InformerRestart[] = [];
  const watchEnds: WatchEnd[] = [];
  const put = (...objects: V1ConfigMap[]) => objects.forEach((obj) => server.set(obj.metadata!.name!, obj));
  const informer = new SupervisedInformer<V1ConfigMap>({
    kubeConfig: new KubeConfig(),
    path: '/api/v1/namespaces/team/configmaps',
    list: async (): Promise<KubernetesListObject<V1ConfigMap>> => ({
      items: [...server.values()],
      metadata: {},
    }),
    onChange: (obj) => changes.push(`${obj.metadata!.name}@${obj.metadata!.resourceVersion}`),
    onRestart: (restart) => restarts.push(restart),
    onWatchEnd: (end) => watchEnds.push(end),
    clock,
    // No jitter unless a test asks for it: delays are then exact.
    random: () => 0,
    createListWatch: (source) => {
      const listWatch = new FakeListWatch(source);
      listWatches.push(listWatch);
      return listWatch;
    },
    ...options,
  });
  const current = (): FakeListWatch => listWatches.at(-1)!;
  return { clock, server, put, informer, listWatches, current, changes, restarts, watchEnds };
}

function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return settle().then(() => settled);
}

describe('SupervisedInformer', () => {
  describe('cache and onChange', () => {
    it('resolves synced() once the first list is in the cache, not when start() returns', async () => {
      const { informer, put, current } = harness();
      put(configMap('before', '1'));
      informer.start();
      expect(await isSettled(informer.synced())).to.equal(false);
      await current().connectAndList();
      await informer.synced();
      expect(informer.get('team', 'before')?.metadata?.resourceVersion).to.equal('1');
      expect(informer.list('team')).to.have.length(1);
      expect(informer.list()).to.have.length(1);
      expect(informer.list('other')).to.deep.equal([]);
    });

    it('calls onChange for added, updated and deleted objects, with the last known state on delete', async () => {
      const { informer, current, changes } = harness();
      informer.start();
      await current().connectAndList();
      current().emit('add', configMap('a', '1'));
      current().emit('update', configMap('a', '2'));
      current().emit('delete', configMap('a', '3'));
      expect(changes).to.deep.equal(['a@1', 'a@2', 'a@3']);
      expect(informer.get('team', 'a')).to.equal(undefined);
    });

    it('does not call onChange again for an object whose resourceVersion it already cached', async () => {
      const { informer, put, current, changes } = harness();
      put(configMap('a', '1'), configMap('b', '1'));
      informer.start();
      await current().connectAndList();
      current().emit('update', configMap('a', '1'));
      expect(changes).to.deep.equal(['a@1', 'b@1']);
    });

    it('strips every listed and watched object in place before caching it, even one it does not cache', async () => {
      const { informer, put, current } = harness({
        strip: (obj) => {
          delete obj.data;
        },
      });
      put(configMap('listed', '1'));
      informer.start();
      await current().connectAndList();
      const watched = configMap('watched', '2');
      current().emit('add', watched);
      const repeated = configMap('watched', '2');
      current().emit('update', repeated);
      expect(informer.get('team', 'listed')?.data).to.equal(undefined);
      expect(informer.get('team', 'watched')?.data).to.equal(undefined);
      expect(repeated.data, 'the ListWatch holds this copy').to.equal(undefined);
    });

    it('keeps cluster-scoped objects under the empty namespace', async () => {
      const { informer, current } = harness();
      informer.start();
      await current().connectAndList();
      current().emit('add', { metadata: { name: 'cluster-wide', resourceVersion: '1' } });
      expect(informer.get('', 'cluster-wide')).to.not.equal(undefined);
    });

    it('hands every cached object to onChange at each resync, and none before it synced', async () => {
      const { clock, informer, put, current, changes } = harness({
        resyncMs: 5 * MINUTE,
        watchdogMs: 60 * MINUTE,
      });
      put(configMap('a', '1'), configMap('b', '1'));
      informer.start();
      await clock.advance(5 * MINUTE);
      expect(changes).to.deep.equal([]);
      await current().connectAndList();
      await clock.advance(5 * MINUTE);
      expect(changes).to.deep.equal(['a@1', 'b@1', 'a@1', 'b@1']);
      await clock.advance(5 * MINUTE);
      expect(changes).to.have.length(6);
    });
  });

  describe('indexes', () => {
    const byOwner = { owner: (obj: V1ConfigMap) => (obj.data?.owner ? [obj.data.owner] : []) };
    const owned = (
      name: string,
      resourceVersion: string,
      owner?: string,
      namespace = 'team',
    ): V1ConfigMap => ({
      ...configMap(name, resourceVersion, namespace),
      data: owner ? { owner } : {},
    });
    const names = (objects: V1ConfigMap[]) => objects.map((obj) => obj.metadata!.name).sort();

    it('finds cached objects by an indexed value, across namespaces', async () => {
      const { informer, put, current } = harness({ indexes: byOwner });
      put(owned('a', '1', 'alice'), owned('b', '1', 'bob'));
      informer.start();
      await current().connectAndList();
      current().emit('add', owned('c', '2', 'alice', 'other'));
      expect(names(informer.byIndex('owner', 'alice'))).to.deep.equal(['a', 'c']);
      expect(names(informer.byIndex('owner', 'bob'))).to.deep.equal(['b']);
      expect(informer.byIndex('owner', 'carol')).to.deep.equal([]);
      expect(() => informer.byIndex('colour', 'red')).to.throw(/no index named colour/);
    });

    it('moves an object whose indexed value changed, and forgets one that left the cache or the index', async () => {
      const { informer, current } = harness({ indexes: byOwner });
      informer.start();
      await current().connectAndList();
      current().emit('add', owned('a', '1', 'alice'));
      current().emit('add', owned('b', '1', 'alice'));
      current().emit('update', owned('a', '2', 'bob'));
      expect(names(informer.byIndex('owner', 'alice'))).to.deep.equal(['b']);
      expect(names(informer.byIndex('owner', 'bob'))).to.deep.equal(['a']);
      current().emit('update', owned('a', '3'));
      current().emit('delete', owned('b', '2', 'alice'));
      expect(informer.byIndex('owner', 'alice')).to.deep.equal([]);
      expect(informer.byIndex('owner', 'bob')).to.deep.equal([]);
    });

    it('forgets an object this process deleted, and one a relist no longer finds', async () => {
      const { clock, informer, put, server, current, listWatches } = harness({ indexes: byOwner });
      put(owned('a', '1', 'alice'), owned('b', '1', 'alice'));
      informer.start();
      await current().connectAndList();
      server.delete('a');
      informer.recordDeletion(owned('a', '1', 'alice'));
      expect(names(informer.byIndex('owner', 'alice'))).to.deep.equal(['b']);
      server.delete('b');
      current().emit('error', new Error('watch failed'));
      await clock.advance(30 * SECOND);
      expect(listWatches).to.have.length(2);
      await current().connectAndList();
      expect(informer.byIndex('owner', 'alice')).to.deep.equal([]);
    });
  });

  describe("this process's own writes", () => {
    const withUid = (obj: V1ConfigMap, uid: string): V1ConfigMap => ({
      ...obj,
      metadata: { ...obj.metadata, uid },
    });

    it('caches a written object at once and reports it, then ignores the watch events up to it', async () => {
      const { informer, put, current, changes } = harness();
      put(configMap('a', '1'));
      informer.start();
      await current().connectAndList();
      informer.recordWrite(configMap('a', '3'));
      expect(informer.get('team', 'a')?.data?.version).to.equal('3');
      current().emit('update', configMap('a', '2'));
      current().emit('update', configMap('a', '3'));
      expect(informer.get('team', 'a')?.data?.version).to.equal('3');
      current().emit('update', configMap('a', '10'));
      expect(informer.get('team', 'a')?.data?.version).to.equal('10');
      expect(changes).to.deep.equal(['a@1', 'a@3', 'a@10']);
    });

    it('forgets a deleted object at once and does not bring it back on a late update', async () => {
      const { informer, put, current, changes } = harness();
      put(withUid(configMap('a', '1'), 'uid-a'));
      informer.start();
      await current().connectAndList();
      informer.recordDeletion(withUid(configMap('a', '1'), 'uid-a'));
      expect(informer.get('team', 'a')).to.equal(undefined);
      current().emit('update', withUid(configMap('a', '2'), 'uid-a'));
      expect(informer.get('team', 'a')).to.equal(undefined);
      current().emit('delete', withUid(configMap('a', '3'), 'uid-a'));
      expect(changes).to.deep.equal(['a@1', 'a@1']);
    });

    it('caches a new object of the same name after a deletion', async () => {
      const { informer, current } = harness();
      informer.start();
      await current().connectAndList();
      current().emit('add', withUid(configMap('a', '1'), 'old'));
      informer.recordDeletion(withUid(configMap('a', '1'), 'old'));
      current().emit('add', withUid(configMap('a', '5'), 'new'));
      expect(informer.get('team', 'a')?.metadata?.uid).to.equal('new');
    });

    it('keeps an object written after a relist was taken, and drops one the relist no longer has', async () => {
      const server = new Map<string, V1ConfigMap>();
      let listVersion = '4';
      const { clock, informer, current } = harness({
        list: async () => ({ items: [...server.values()], metadata: { resourceVersion: listVersion } }),
      });
      server.set('old', configMap('old', '2'));
      informer.start();
      await current().connectAndList();
      informer.recordWrite(configMap('created', '7'));
      server.delete('old');
      listVersion = '5';
      current().emit('error', new Error('watch failed'));
      await clock.advance(SECOND);
      await current().connectAndList();
      expect(informer.get('team', 'created')).to.not.equal(undefined);
      expect(informer.get('team', 'old')).to.equal(undefined);
    });
  });

  describe('supervision', () => {
    it('replaces a ListWatch that reported an error, after a backoff doubling from 1 s to 30 s', async () => {
      const { clock, informer, listWatches, current, restarts } = harness({ watchdogMs: 60 * MINUTE });
      informer.start();
      await current().connectAndList();
      for (let failure = 0; failure < 7; failure++) {
        const failing = current();
        failing.emit('error', new Error('connection reset'));
        expect(failing.stopped).to.equal(true);
        await clock.advance(restarts.at(-1)!.delayMs - 1);
        expect(current()).to.equal(failing, 'no new ListWatch before the backoff elapsed');
        await clock.advance(1);
        expect(current().started).to.equal(true);
      }
      expect(restarts.map((r) => r.delayMs)).to.deep.equal([1, 2, 4, 8, 16, 30, 30].map((s) => s * SECOND));
      expect(
        restarts.every((r) => r.reason === 'error' && (r.error as Error).message === 'connection reset'),
      ).to.equal(true);
      expect(listWatches).to.have.length(8);
    });

    it('replaces a ListWatch whose start() rejected', async () => {
      const { clock, informer, listWatches, restarts } = harness({
        createListWatch: (source) => {
          const listWatch = new FakeListWatch(source);
          if (listWatches.length === 0)
            listWatch.startResult = Promise.reject(new Error('No currently active cluster'));
          listWatches.push(listWatch);
          return listWatch;
        },
      });
      informer.start();
      await clock.advance(SECOND);
      expect(restarts.map((r) => r.reason)).to.deep.equal(['error']);
      expect(listWatches).to.have.length(2);
    });

    it('starts the backoff over when the failing ListWatch had run for two minutes', async () => {
      const { clock, informer, current, restarts } = harness({ watchdogMs: 60 * MINUTE });
      informer.start();
      for (let failure = 0; failure < 3; failure++) {
        current().emit('error', new Error('gone'));
        await clock.advance(restarts.at(-1)!.delayMs);
      }
      await clock.advance(2 * MINUTE);
      current().emit('error', new Error('gone'));
      expect(restarts.map((r) => r.delayMs)).to.deep.equal([1, 2, 4, 1].map((s) => s * SECOND));
    });

    it('after a restart, reports objects deleted meanwhile with their last known state, and unchanged ones not at all', async () => {
      const { clock, informer, server, put, current, changes } = harness();
      put(configMap('kept', '1'), configMap('changed', '1'), configMap('deleted', '1'));
      informer.start();
      await current().connectAndList();
      changes.length = 0;
      current().emit('error', new Error('watch failed'));
      server.delete('deleted');
      put(configMap('changed', '2'), configMap('created', '3'));
      expect(informer.get('team', 'deleted'), 'the cache serves reads during the outage').to.not.equal(
        undefined,
      );
      await clock.advance(SECOND);
      await current().connectAndList();
      expect(changes.sort()).to.deep.equal(['changed@2', 'created@3', 'deleted@1']);
      expect(
        informer
          .list('team')
          .map((obj) => obj.metadata!.name)
          .sort(),
      ).to.deep.equal(['changed', 'created', 'kept']);
    });

    it('ignores everything a replaced ListWatch reports afterwards', async () => {
      const { clock, informer, current, changes, restarts } = harness();
      informer.start();
      await current().connectAndList();
      const replaced = current();
      replaced.emit('error', new Error('first'));
      replaced.emit('add', configMap('late', '9'));
      replaced.emit('error', new Error('second'));
      await clock.advance(SECOND);
      replaced.emit('error', new Error('third'));
      expect(changes).to.deep.equal([]);
      expect(restarts).to.have.length(1);
      expect(current()).to.not.equal(replaced);
    });

    it('does not let a list that finishes after its ListWatch was replaced touch the cache', async () => {
      const listed = deferred<KubernetesListObject<V1ConfigMap>>();
      let calls = 0;
      const { clock, informer, current, changes } = harness({
        watchdogMs: 3 * MINUTE,
        list: () => (++calls === 1 ? listed.promise : Promise.resolve({ items: [configMap('fresh', '5')] })),
      });
      informer.start();
      const hung = current();
      const hungList = hung.connectAndList();
      await clock.advance(3 * MINUTE + SECOND);
      await current().connectAndList();
      listed.resolve({ items: [configMap('stale', '1')] });
      const error = await hungList.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, 'the stale list must fail so the old ListWatch does not go on to watch').to.be.instanceOf(
        Error,
      );
      expect(changes).to.deep.equal(['fresh@5']);
      expect(informer.get('team', 'stale')).to.equal(undefined);
    });

    it('replaces a ListWatch that showed no sign of life for the watchdog period', async () => {
      const { clock, informer, listWatches, current, restarts } = harness({ watchdogMs: 3 * MINUTE });
      informer.start();
      await current().connectAndList();
      await clock.advance(3 * MINUTE - 1);
      expect(listWatches).to.have.length(1);
      await clock.advance(1);
      expect(restarts).to.deep.equal([{ reason: 'watchdog', delayMs: SECOND }]);
      expect(listWatches[0]!.stopped).to.equal(true);
      await clock.advance(SECOND);
      expect(listWatches).to.have.length(2);
      expect(current().started).to.equal(true);
    });

    it('keeps a quiet ListWatch that reconnects every 30 s, as client-node does with an idle watch', async () => {
      const { clock, informer, listWatches, current, restarts, watchEnds } = harness({
        watchdogMs: 90 * SECOND,
      });
      informer.start();
      await current().connectAndList();
      for (let i = 0; i < 40; i++) {
        await clock.advance(30 * SECOND);
        current().reconnect('idle', true);
      }
      expect(restarts).to.deep.equal([]);
      expect(listWatches).to.have.length(1);
      expect(watchEnds).to.deep.equal(Array(40).fill('idle'));
    });

    it('replaces, as a stall, a ListWatch whose reconnects get no answer, though client-node reconnects every 30 s', async () => {
      const { clock, informer, listWatches, current, restarts, watchEnds } = harness({
        watchdogMs: 90 * SECOND,
      });
      informer.start();
      await current().connectAndList();
      await clock.advance(30 * SECOND);
      current().reconnect('idle', false);
      await clock.advance(30 * SECOND);
      current().reconnect('stalled', false);
      await clock.advance(30 * SECOND - 1);
      expect(restarts).to.deep.equal([]);
      await clock.advance(1);
      expect(restarts).to.deep.equal([{ reason: 'watchdog', delayMs: SECOND }]);
      expect(listWatches[0]!.stopped).to.equal(true);
      expect(watchEnds).to.deep.equal(['idle', 'stalled']);
    });

    it('restarts for a request that timed out as a stall, not an error', async () => {
      const { informer, current, restarts } = harness();
      informer.start();
      await current().connectAndList();
      const timeout = Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
      current().emit('error', new TypeError('fetch failed', { cause: timeout }));
      expect(restarts.map((r) => r.reason)).to.deep.equal(['stall']);
    });

    it('draws each restart delay at random from the upper half of the doubling backoff', async () => {
      const draws = [1, 0.5, 0];
      const { clock, informer, current, restarts } = harness({
        watchdogMs: 60 * MINUTE,
        random: () => draws.shift() ?? 0,
      });
      informer.start();
      for (let failure = 0; failure < 3; failure++) {
        current().emit('error', new Error('connection refused'));
        await clock.advance(restarts.at(-1)!.delayMs);
      }
      expect(restarts.map((r) => r.delayMs)).to.deep.equal([0.5 * SECOND, 1.5 * SECOND, 4 * SECOND]);
    });

    it('relists at once, with the backoff started over, when told the API server answers again', async () => {
      const { clock, informer, listWatches, current, restarts } = harness({ watchdogMs: 60 * MINUTE });
      informer.start();
      await current().connectAndList();
      for (let failure = 0; failure < 6; failure++) {
        current().emit('error', new Error('connection refused'));
        if (failure < 5) await clock.advance(restarts.at(-1)!.delayMs);
      }
      expect(restarts.at(-1)!.delayMs).to.equal(30 * SECOND);
      informer.retryNow();
      expect(listWatches).to.have.length(7);
      expect(current().started).to.equal(true);
      await clock.advance(30 * SECOND);
      expect(listWatches, 'the cancelled restart does not start another ListWatch').to.have.length(7);
      current().emit('error', new Error('connection refused'));
      expect(restarts.at(-1)!.delayMs).to.equal(SECOND);
    });

    it('leaves a healthy ListWatch alone when told the API server answers again', async () => {
      const { informer, listWatches, restarts } = harness();
      informer.start();
      informer.retryNow();
      expect(listWatches).to.have.length(1);
      expect(restarts).to.deep.equal([]);
    });

    it('counts object events as signs of life', async () => {
      const { clock, informer, current, restarts } = harness({ watchdogMs: 3 * MINUTE });
      informer.start();
      await current().connectAndList();
      for (let i = 0; i < 10; i++) {
        await clock.advance(2 * MINUTE);
        current().emit('update', configMap('busy', String(i)));
      }
      expect(restarts).to.deep.equal([]);
    });
  });

  describe('lifecycle', () => {
    it('stop() stops the ListWatch, cancels every timer and rejects a synced() still pending', async () => {
      const { clock, informer, current, changes } = harness();
      informer.start();
      const synced = informer.synced();
      await informer.stop();
      expect(current().stopped).to.equal(true);
      expect(clock.pendingTimers).to.equal(0);
      let rejection: unknown;
      await synced.catch((error: unknown) => (rejection = error));
      expect(rejection).to.be.instanceOf(Error);
      await current()
        .connectAndList()
        .catch(() => {});
      expect(changes).to.deep.equal([]);
    });

    it('stop() during a restart backoff starts no new ListWatch', async () => {
      const { clock, informer, listWatches, current } = harness();
      informer.start();
      await current().connectAndList();
      current().emit('error', new Error('gone'));
      await informer.stop();
      await clock.advance(10 * MINUTE);
      expect(listWatches).to.have.length(1);
    });

    it('refuses to start twice', () => {
      const { informer } = harness();
      informer.start();
      expect(() => informer.start()).to.throw(/already started/);
    });
  });

  describe('StoppableListWatch', () => {
    /** A KubeConfig that counts the requests client-node prepares (every watch asks it for auth first). */
    class CountingKubeConfig extends KubeConfig {
      requests = 0;
      override async applySecurityAuthentication(context: RequestContext): Promise<void> {
        this.requests++;
        await super.applySecurityAuthentication(context);
      }
    }

    function kubeConfigFor(server: string): CountingKubeConfig {
      const kubeConfig = new CountingKubeConfig();
      kubeConfig.loadFromOptions({
        clusters: [{ name: 'local', server, skipTLSVerify: true }],
        users: [{ name: 'nobody' }],
        contexts: [{ name: 'local', cluster: 'local', user: 'nobody' }],
        currentContext: 'local',
      });
      return kubeConfig;
    }

    it('opens no watch when stopped while its list was in flight', async () => {
      const kubeConfig = kubeConfigFor('http://127.0.0.1:9');
      const listed = deferred<KubernetesListObject<V1ConfigMap>>();
      const listWatch = new StoppableListWatch<V1ConfigMap>({
        kubeConfig,
        path: '/api/v1/configmaps',
        list: () => listed.promise,
      });
      const errors: unknown[] = [];
      listWatch.on('error', (error) => errors.push(error));
      const started = listWatch.start();
      await listWatch.stop();
      listed.resolve({ items: [], metadata: { resourceVersion: '10' } });
      await started;
      await settle();
      expect(kubeConfig.requests).to.equal(0);
      expect(errors).to.deep.equal([]);
    });

    it('tells its observer how each watch request ended: expired by a 410 event or status, closed by the server', async () => {
      const requests: ServerResponse[] = [];
      const server = createServer((request, response) => {
        if (!request.url?.includes('watch=true')) return response.end();
        requests.push(response);
        const respond = [
          () => response.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410 } })}\n`),
          () => response.writeHead(410).end(),
          () => response.end(`${JSON.stringify({ type: 'ADDED', object: configMap('a', '11') })}\n`),
          () => server.emit('fourth-watch'),
        ][requests.length - 1];
        respond?.();
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const { port } = server.address() as AddressInfo;
        const seen: string[] = [];
        let lists = 0;
        const listWatch = new StoppableListWatch<V1ConfigMap>({
          kubeConfig: kubeConfigFor(`http://127.0.0.1:${port}`),
          path: '/api/v1/configmaps',
          list: async () => (lists++, { items: [], metadata: { resourceVersion: '10' } }),
          watchObserver: {
            established: () => seen.push('established'),
            ended: (end) => seen.push(end),
          },
        });
        const fourth = once(server, 'fourth-watch');
        await listWatch.start();
        await fourth;
        await listWatch.stop();
        expect(seen).to.deep.equal(['established', 'expired', 'expired', 'established', 'closed']);
        expect(lists, 'each 410 makes it list again').to.equal(3);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });

    it('aborts a watch whose response arrives after it was stopped', async () => {
      const held: ServerResponse[] = [];
      const server = createServer((_request, response) => {
        held.push(response);
        server.emit('watch-request');
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const { port } = server.address() as AddressInfo;
        const listWatch = new StoppableListWatch<V1ConfigMap>({
          kubeConfig: kubeConfigFor(`http://127.0.0.1:${port}`),
          path: '/api/v1/configmaps',
          list: async () => ({ items: [], metadata: { resourceVersion: '10' } }),
        });
        const started = listWatch.start();
        await once(server, 'watch-request');
        await listWatch.stop();
        const response = held[0]!;
        const closed = once(response, 'close');
        response.writeHead(200, { 'content-type': 'application/json' });
        response.flushHeaders();
        await started;
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          closed.then(() => 'closed'),
          new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'still open'))),
        ]);
        clearTimeout(timer);
        expect(outcome, 'client-node alone would keep this watch until it idles for 30 s').to.equal('closed');
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });
});
