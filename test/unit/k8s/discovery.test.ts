import { expect } from 'chai';
import { waitUntilServed } from '../../../src/k8s/discovery.ts';

/** A discovery that starts serving `resources` of hourglass.dev after `refreshes` refreshes. */
function discoveryServingAfter(refreshes: number, resources: string[]) {
  let done = 0;
  return {
    isNamespaced: (group: string, resource: string) =>
      done >= refreshes && group === 'hourglass.dev' && resources.includes(resource) ? true : undefined,
    refresh: async () => {
      done++;
    },
    refreshes: () => done,
  };
}

describe('waiting for the CRDs', () => {
  const kinds = ['accessrequests', 'accesspolicies'];
  const noSleep = { sleep: async () => {} };

  it('returns at once, saying nothing, when every resource is served', async () => {
    const discovery = discoveryServingAfter(0, kinds);
    const said: string[][] = [];
    await waitUntilServed(discovery, 'hourglass.dev', kinds, (missing) => said.push(missing), noSleep);
    expect(said).to.deep.equal([]);
    expect(discovery.refreshes()).to.equal(0);
  });

  it('names the missing resources at once and every reportEvery polls, until they are served', async () => {
    const discovery = discoveryServingAfter(5, kinds);
    const said: string[][] = [];
    await waitUntilServed(discovery, 'hourglass.dev', kinds, (missing) => said.push(missing), {
      ...noSleep,
      reportEvery: 2,
    });
    expect(discovery.refreshes()).to.equal(5);
    expect(said).to.deep.equal([
      ['accessrequests.hourglass.dev', 'accesspolicies.hourglass.dev'],
      ['accessrequests.hourglass.dev', 'accesspolicies.hourglass.dev'],
      ['accessrequests.hourglass.dev', 'accesspolicies.hourglass.dev'],
    ]);
  });

  it('keeps waiting through a failed refresh', async () => {
    let calls = 0;
    const discovery = {
      isNamespaced: () => (calls >= 2 ? true : undefined),
      refresh: async () => {
        calls++;
        if (calls === 1) throw new Error('connection refused');
      },
    };
    await waitUntilServed(discovery, 'hourglass.dev', kinds, () => {}, noSleep);
    expect(calls).to.equal(2);
  });
});
