import { expect } from 'chai';
import { ApiServerReachability, type ReachabilityOptions } from '../../../src/runtime/reachability.ts';
import { FakeClock, settle } from './fake-clock.ts';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
const forbidden = Object.assign(new Error('Forbidden'), { code: 403 });

/** Reachability on a fake clock whose probe answers with `ready` as the test sets it. */
function harness(options: Partial<ReachabilityOptions> = {}) {
  const clock = new FakeClock();
  const state = { ready: false, probes: 0 };
  const events: string[] = [];
  const reachability = new ApiServerReachability({
    probe: async () => {
      state.probes++;
      return state.ready;
    },
    mayBeOutage: (error) => error === refused,
    observer: {
      lost: (error) => events.push(`lost: ${(error as Error).message}`),
      recovered: (outageMs) => events.push(`recovered after ${outageMs} ms`),
    },
    clock,
    random: () => 0.5,
    ...options,
  });
  reachability.onRecovered(() => events.push('listener'));
  return { clock, state, events, reachability };
}

describe('ApiServerReachability', () => {
  it('tells every listener at once when the API server is ready again after a confirmed outage', async () => {
    const { clock, state, events, reachability } = harness();
    reachability.reportFailure(refused);
    await settle();
    expect(reachability.reachable).to.equal(false);
    await clock.advance(10_000);
    expect(state.probes, 'one probe every 250 ms').to.equal(41);
    expect(events).to.deep.equal(['lost: connect ECONNREFUSED 127.0.0.1:6443']);
    state.ready = true;
    await clock.advance(250);
    expect(events.slice(1)).to.deep.equal(['recovered after 10250 ms', 'listener']);
    expect(reachability.reachable).to.equal(true);
    await clock.advance(10_000);
    expect(state.probes, 'no probe once it is reachable').to.equal(42);
  });

  it('tells no listener when the one probe finds the API server ready: the failure was not an outage', async () => {
    const { state, events, reachability } = harness();
    state.ready = true;
    reachability.reportFailure(refused);
    await settle();
    expect(state.probes).to.equal(1);
    expect(events).to.deep.equal([]);
  });

  it('does not probe for a refusal (4xx), nor more than once a second for failures of a healthy API server', async () => {
    const { clock, state, reachability } = harness();
    reachability.reportFailure(forbidden);
    expect(state.probes).to.equal(0);
    state.ready = true;
    for (let i = 0; i < 20; i++) {
      reachability.reportFailure(refused);
      await clock.advance(100);
    }
    expect(state.probes).to.equal(2);
  });

  it('probes one at a time however many failures arrive during an outage', async () => {
    let answer: ((ready: boolean) => void) | undefined;
    const { state, reachability } = harness({
      probe: () => {
        state.probes++;
        return new Promise((resolve) => (answer = resolve));
      },
    });
    for (let i = 0; i < 50; i++) reachability.reportFailure(refused);
    await settle();
    expect(state.probes).to.equal(1);
    answer?.(false);
    await settle();
    for (let i = 0; i < 50; i++) reachability.reportFailure(refused);
    expect(state.probes).to.equal(1);
  });

  it('spreads its probes between half and one and a half times the interval', async () => {
    const draws = [0, 0.999, 0.5];
    const { clock, reachability } = harness({ random: () => draws.shift() ?? 0.5 });
    reachability.reportFailure(refused);
    await clock.advance(1000);
    expect(clock.armedDelays.slice(0, 3).map(Math.round)).to.deep.equal([125, 375, 250]);
  });

  it('counts a probe that throws or hangs past its own timeout as not ready', async () => {
    const { clock, events, reachability } = harness({
      probe: () => Promise.reject(new Error('The operation was aborted due to timeout')),
    });
    reachability.reportFailure(refused);
    await clock.advance(1000);
    expect(events).to.have.length(1);
    expect(reachability.reachable).to.equal(false);
  });

  it('stops probing when stopped', async () => {
    const { clock, state, reachability } = harness();
    reachability.reportFailure(refused);
    await settle();
    reachability.stop();
    await clock.advance(10_000);
    expect(state.probes).to.equal(1);
    expect(clock.pendingTimers).to.equal(0);
  });
});
