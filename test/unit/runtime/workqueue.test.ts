import { expect } from 'chai';
import { MAX_TIMER_DELAY_MS } from '../../../src/runtime/clock.ts';
import { type HandlerResult, WorkQueue, type WorkQueueOptions } from '../../../src/runtime/workqueue.ts';
import { deferred, FakeClock, settle } from './fake-clock.ts';

const SECOND = 1000;
const DAY = 24 * 60 * 60 * SECOND;

/** A queue on a fake clock whose handler records each run and ends it only when the test says. */
function harness(options: Omit<WorkQueueOptions, 'clock'> = {}) {
  const clock = new FakeClock();
  const start = clock.now();
  // No jitter unless a test asks for it: delays are then exact.
  const queue = new WorkQueue({ clock, random: () => 0, ...options });
  const runs: {
    key: string;
    at: number;
    finish: (result?: HandlerResult) => void;
    fail: (e: unknown) => void;
  }[] = [];
  const running = new Map<string, number>();
  let overlapping = 0;
  const handler = (key: string): Promise<HandlerResult | void> => {
    const run = deferred<HandlerResult | void>();
    running.set(key, (running.get(key) ?? 0) + 1);
    if (running.get(key)! > 1) overlapping++;
    runs.push({ key, at: clock.now() - start, finish: run.resolve, fail: run.reject });
    return run.promise.finally(() => running.set(key, running.get(key)! - 1));
  };
  /** Ends every run in progress successfully. */
  const finishAll = async () => {
    for (const run of runs) run.finish();
    await settle();
  };
  return {
    clock,
    queue,
    runs,
    handler,
    finishAll,
    overlaps: () => overlapping,
    keys: () => runs.map((r) => r.key),
  };
}

describe('WorkQueue', () => {
  describe('adding keys', () => {
    it('processes a key once however often it is added while waiting', async () => {
      const { queue, handler, keys } = harness();
      queue.add('a');
      queue.add('a');
      queue.add('a');
      queue.run(handler, 1);
      await settle();
      expect(keys()).to.deep.equal(['a']);
      expect(queue.depth).to.equal(0);
    });

    it('processes a key added during its own processing once more afterwards', async () => {
      const { queue, handler, runs, keys } = harness();
      queue.run(handler, 4);
      queue.add('a');
      await settle();
      queue.add('a');
      queue.add('a');
      await settle();
      expect(keys()).to.deep.equal(['a'], 'no second run while the first is in progress');
      runs[0]!.finish();
      await settle();
      expect(keys()).to.deep.equal(['a', 'a']);
      runs[1]!.finish();
      await settle();
      expect(keys()).to.deep.equal(['a', 'a']);
    });

    it('never runs two handlers for one key at once, even with spare concurrency', async () => {
      const { queue, handler, runs, overlaps } = harness();
      queue.run(handler, 8);
      for (let round = 0; round < 5; round++) {
        queue.add('a');
        queue.add('b');
        await settle();
        runs.at(-1)!.finish();
        await settle();
      }
      expect(overlaps()).to.equal(0);
    });

    it('processes waiting keys in the order they were first added', async () => {
      const { queue, handler, finishAll, keys } = harness();
      for (const key of ['c', 'a', 'b', 'a', 'c']) queue.add(key);
      queue.run(handler, 1);
      for (let i = 0; i < 3; i++) await finishAll();
      expect(keys()).to.deep.equal(['c', 'a', 'b']);
    });

    it('runs at most `concurrency` handlers at once and starts the next when one ends', async () => {
      const { queue, handler, runs, keys } = harness();
      for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key);
      queue.run(handler, 2);
      await settle();
      expect(keys()).to.deep.equal(['a', 'b']);
      expect(queue.inFlight).to.equal(2);
      expect(queue.depth).to.equal(3);
      runs[1]!.finish();
      await settle();
      expect(keys()).to.deep.equal(['a', 'b', 'c']);
    });

    it('refuses a concurrency that is not a positive integer', () => {
      const { queue, handler } = harness();
      expect(() => queue.run(handler, 0)).to.throw(RangeError);
      expect(() => queue.run(handler, 1.5)).to.throw(RangeError);
    });
  });

  describe('the lane of new keys', () => {
    const isNew = (key: string) => key.startsWith('n');

    it('runs a new key next although many known keys wait before it', async () => {
      const { queue, handler, runs, keys } = harness({ isNew });
      for (const key of ['r1', 'r2', 'r3', 'r4']) queue.add(key);
      queue.run(handler, 1);
      await settle();
      queue.add('new');
      runs[0]!.finish();
      await settle();
      expect(keys()).to.deep.equal(['r1', 'new']);
      expect(queue.depth).to.equal(3);
    });

    it('alternates the lanes, so a flood of new keys still leaves every other run to known keys', async () => {
      const { queue, handler, finishAll, keys } = harness({ isNew });
      for (const key of ['r1', 'r2', 'r3']) queue.add(key);
      for (const key of ['n1', 'n2', 'n3', 'n4', 'n5']) queue.add(key);
      queue.run(handler, 1);
      for (let i = 0; i < 8; i++) await finishAll();
      expect(keys()).to.deep.equal(['n1', 'r1', 'n2', 'r2', 'n3', 'r3', 'n4', 'n5']);
    });

    it('asks again each time a key starts waiting, so a retried or requeued new key keeps its lane', async () => {
      const newKeys = new Set(['a']);
      const { clock, queue, handler, runs, keys } = harness({ isNew: (key) => newKeys.has(key) });
      queue.run(handler, 1);
      queue.add('a');
      await settle();
      for (const key of ['r1', 'r2', 'r3']) queue.add(key);
      runs[0]!.finish({ requeueAfterMs: 200 });
      await settle();
      await clock.advance(200);
      runs[1]!.finish();
      await settle();
      expect(keys(), 'a, still new, goes before the known keys').to.deep.equal(['a', 'r1', 'a']);
      newKeys.delete('a');
      queue.add('a');
      runs[2]!.finish();
      await settle();
      expect(keys(), 'a, now known, waits its turn').to.deep.equal(['a', 'r1', 'a', 'r2']);
    });
  });

  describe('delays', () => {
    it('adds a key after the delay of addAfter and not before', async () => {
      const { clock, queue, handler, runs } = harness();
      queue.run(handler, 1);
      queue.addAfter('a', 10 * SECOND);
      await clock.advance(10 * SECOND - 1);
      expect(runs).to.have.length(0);
      await clock.advance(1);
      expect(runs.map((r) => [r.key, r.at])).to.deep.equal([['a', 10 * SECOND]]);
    });

    it('keeps the earliest of several pending deadlines of one key', async () => {
      const { clock, queue, handler, finishAll, runs } = harness();
      queue.run(handler, 1);
      queue.addAfter('a', 30 * SECOND);
      queue.addAfter('a', 10 * SECOND);
      queue.addAfter('a', 20 * SECOND);
      expect(queue.delayed).to.equal(1);
      await clock.advance(10 * SECOND);
      await finishAll();
      await clock.advance(60 * SECOND);
      expect(runs.map((r) => r.at)).to.deep.equal([10 * SECOND]);
    });

    it('serves ten thousand delayed keys with one timer, in the order of their deadlines', async () => {
      const { clock, queue, handler, runs } = harness();
      const count = 10_000;
      // Each deadline is earlier than all before it, so the timer is re-armed on every add.
      for (let i = 0; i < count; i++) queue.addAfter(`key-${i}`, count - i);
      expect(clock.pendingTimers).to.equal(1);
      queue.run(handler, count);
      await clock.advance(count);
      expect(runs).to.have.length(count);
      expect(runs.map((r) => r.at)).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    });

    it('never arms a timer beyond the 24.8-day limit of setTimeout and still fires a 30-day deadline on time', async () => {
      const { clock, queue, handler, runs } = harness();
      queue.run(handler, 1);
      queue.addAfter('a', 30 * DAY);
      await clock.advance(30 * DAY - 1);
      expect(runs).to.have.length(0);
      await clock.advance(1);
      expect(runs.map((r) => r.at)).to.deep.equal([30 * DAY]);
      expect(Math.max(...clock.armedDelays)).to.be.at.most(MAX_TIMER_DELAY_MS);
    });

    it('adds a key at once when the delay is zero or negative', async () => {
      const { queue, handler, keys } = harness();
      queue.run(handler, 2);
      queue.addAfter('a', 0);
      queue.addAfter('b', -5);
      await settle();
      expect(keys()).to.deep.equal(['a', 'b']);
    });

    it('refuses a delay that is not a finite number', () => {
      const { queue } = harness();
      expect(() => queue.addAfter('a', Number.NaN)).to.throw(RangeError);
      expect(() => queue.addAfter('a', Number.POSITIVE_INFINITY)).to.throw(RangeError);
    });
  });

  describe('handler outcomes', () => {
    it('retries a failing key with a delay that doubles from 50 ms up to the 5-minute cap', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock, random: () => 0 });
      const attempts: number[] = [];
      const start = clock.now();
      queue.run(async () => {
        attempts.push(clock.now() - start);
        throw new Error('conflict');
      }, 1);
      queue.add('a');
      await clock.advance(30 * 60 * SECOND);
      const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
      expect(gaps.slice(0, 4)).to.deep.equal([50, 100, 200, 400]);
      expect(gaps.at(-1)).to.equal(5 * 60 * SECOND);
      expect(Math.max(...gaps)).to.equal(5 * 60 * SECOND);
      expect(queue.numRequeues('a')).to.equal(attempts.length);
    });

    it('draws each retry delay at random from the upper half of the doubling backoff', async () => {
      const draws = [1, 0.5, 0];
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock, random: () => draws.shift() ?? 0 });
      const attempts: number[] = [];
      const start = clock.now();
      queue.run(async () => {
        attempts.push(clock.now() - start);
        if (attempts.length < 4) throw new Error('unavailable');
      }, 1);
      queue.add('a');
      await clock.advance(SECOND);
      expect(attempts).to.deep.equal([0, 25, 100, 300]);
    });

    it('retries every failed key at once, with its backoff reset, when told what made it fail is gone', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock, random: () => 0 });
      const start = clock.now();
      const attempts: { key: string; at: number }[] = [];
      let apiServerUp = false;
      queue.run(async (key) => {
        attempts.push({ key, at: clock.now() - start });
        if (key === 'expiry-later') return { requeueAfterMs: 60 * SECOND };
        if (!apiServerUp) throw new Error('connect ECONNREFUSED');
      }, 1);
      queue.add('revoke');
      queue.add('expiry-later');
      await clock.advance(20 * SECOND);
      const failures = queue.numRequeues('revoke');
      expect(failures, 'the backoff grew to 12.8 s').to.equal(9);
      apiServerUp = true;
      queue.retryFailedNow();
      await settle();
      expect(attempts.at(-1)).to.deep.equal({ key: 'revoke', at: 20 * SECOND });
      expect(queue.numRequeues('revoke')).to.equal(0);
      await clock.advance(30 * SECOND);
      expect(
        attempts.filter((a) => a.key === 'revoke').length,
        'the retry that was due later does not run again',
      ).to.equal(failures + 1);
      expect(attempts.filter((a) => a.key === 'expiry-later').map((a) => a.at)).to.deep.equal([0]);
    });

    it('retries a handler that throws synchronously like one that rejects', async () => {
      const { clock, queue } = harness();
      let calls = 0;
      queue.run(
        (() => {
          calls++;
          if (calls === 1) throw new Error('sync failure');
          return Promise.resolve();
        }) as () => Promise<void>,
        1,
      );
      queue.add('a');
      await clock.advance(50);
      expect(calls).to.equal(2);
      expect(queue.numRequeues('a')).to.equal(0);
    });

    it('starts the backoff again from 50 ms after a success', async () => {
      const { clock, queue } = harness();
      const attempts: number[] = [];
      const start = clock.now();
      const outcomes = [false, false, false, true, false, false];
      queue.run(async () => {
        attempts.push(clock.now() - start);
        if (!outcomes[attempts.length - 1]) throw new Error('failed');
      }, 1);
      queue.add('a');
      await clock.advance(350); // 0, 50, 150, 350: three failures, then a success
      expect(queue.numRequeues('a')).to.equal(0);
      queue.add('a');
      await clock.advance(50);
      expect(attempts).to.deep.equal([0, 50, 150, 350, 350, 400]);
    });

    it('processes a key again after the requeueAfterMs its handler returned', async () => {
      const clock = new FakeClock();
      const queue = new WorkQueue({ clock });
      const start = clock.now();
      const at: number[] = [];
      queue.run(async () => {
        at.push(clock.now() - start);
        return at.length === 1 ? { requeueAfterMs: 90 * SECOND } : undefined;
      }, 1);
      queue.add('grant');
      await clock.advance(10 * 60 * SECOND);
      expect(at).to.deep.equal([0, 90 * SECOND]);
    });

    it('treats a requeueAfterMs that is not a finite number as a failure', async () => {
      const errors: unknown[] = [];
      const queue = new WorkQueue({
        clock: new FakeClock(),
        observer: { processed: (_key, run) => errors.push(run.error) },
      });
      queue.run(async () => ({ requeueAfterMs: Number.NaN }), 1);
      queue.add('a');
      await settle();
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(RangeError);
      expect(queue.numRequeues('a')).to.equal(1);
    });
  });

  describe('shutdown', () => {
    it('resolves only after the runs in progress end, and starts no waiting key', async () => {
      const { queue, handler, runs, keys } = harness();
      for (const key of ['a', 'b', 'c']) queue.add(key);
      queue.run(handler, 2);
      await settle();
      let resolved = false;
      const done = queue.shutdown().then(() => (resolved = true));
      runs[0]!.finish();
      await settle();
      expect(resolved).to.equal(false);
      runs[1]!.finish();
      await done;
      expect(keys()).to.deep.equal(['a', 'b']);
    });

    it('resolves at once when nothing is in progress', async () => {
      const { queue, handler } = harness();
      queue.run(handler, 1);
      await queue.shutdown();
    });

    it('drops adds, retries and pending deadlines once shutting down', async () => {
      const { clock, queue, handler, runs } = harness();
      queue.run(handler, 2);
      queue.add('a');
      queue.addAfter('b', SECOND);
      await settle();
      const done = queue.shutdown();
      queue.add('a');
      queue.add('c');
      runs[0]!.fail(new Error('interrupted'));
      await done;
      await clock.advance(10 * 60 * SECOND);
      expect(runs.map((r) => r.key)).to.deep.equal(['a']);
      expect(clock.pendingTimers).to.equal(0);
      expect(queue.depth).to.equal(0);
    });
  });

  it('reports depth, adds, retries and processing durations to its observer', async () => {
    const clock = new FakeClock();
    const seen = { depth: [] as number[], added: 0, retried: [] as number[], processed: [] as object[] };
    const queue = new WorkQueue({
      clock,
      random: () => 0,
      observer: {
        depth: (depth) => seen.depth.push(depth),
        added: () => seen.added++,
        retried: (_key, delayMs) => seen.retried.push(delayMs),
        processed: (key, run) => seen.processed.push({ key, ...run }),
      },
    });
    const failure = new Error('boom');
    const ends: (() => void)[] = [];
    queue.add('a');
    queue.add('a');
    queue.add('b');
    await clock.advance(3 * SECOND);
    queue.run(
      (key) => new Promise((resolve, reject) => ends.push(() => (key === 'b' ? reject(failure) : resolve()))),
      1,
    );
    await clock.advance(2 * SECOND);
    ends[0]!();
    await clock.advance(2 * SECOND);
    ends[1]!();
    await settle();
    expect(seen.added).to.equal(3);
    expect(seen.depth).to.deep.equal([1, 2, 1, 0]);
    expect(seen.retried).to.deep.equal([50]);
    expect(seen.processed).to.deep.equal([
      { key: 'a', durationMs: 2 * SECOND, waitMs: 3 * SECOND },
      { key: 'b', durationMs: 2 * SECOND, waitMs: 5 * SECOND, error: failure },
    ]);
  });
});
