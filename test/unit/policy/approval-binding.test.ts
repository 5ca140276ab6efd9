import { expect } from 'chai';
import type { AccessPolicySpec } from '../../../src/api/types.ts';
import { decide, type DecisionInput } from '../../../src/policy/decide.ts';
import { accessPolicy, decisionInput } from './fixtures.ts';

const manual = (users: string[]): Partial<AccessPolicySpec> => ({
  approval: { mode: 'Manual', approvers: { users } },
});
const policyA = accessPolicy('a-manual', manual(['alice']));
const policyB = { ...accessPolicy('b-manual', { ...manual(['bob']), maxTTL: '24h' }) };
const automatic = accessPolicy('c-automatic');
const generation = (policy: typeof policyA, value: number) => ({
  ...policy,
  metadata: { ...policy.metadata, generation: value },
});

const decideWith = (overrides: Partial<DecisionInput>) => decide(decisionInput(overrides));

describe('approval bound to its policy', () => {
  it('lets any Manual policy allow while no approver has decided (the request then awaits one)', () => {
    const decision = decideWith({ policies: [policyB] });
    expect(decision).to.deep.include({ allowed: true, approval: 'Manual' });
  });

  it('issues under the approved policy even when another Manual policy comes first', () => {
    const decision = decideWith({
      policies: [policyA, policyB],
      approvedPolicy: { ref: 'AccessPolicy/b-manual', uid: policyB.metadata.uid },
    });
    expect(decision.allowed && decision.policy.metadata.name).to.equal('b-manual');
  });

  it('a requester who relabels the pod onto another Manual policy gets nothing from the first approval', () => {
    const decision = decideWith({
      policies: [policyB],
      approvedPolicy: { ref: 'AccessPolicy/a-manual', uid: policyA.metadata.uid },
    });
    expect(decision).to.deep.include({ allowed: false, reason: 'NoPolicyAllows' });
    expect(decision.message).to.contain(
      'needs an approval of its own (the approval was given under AccessPolicy/a-manual)',
    );
  });

  it('an approval does not survive a change of the approved policy', () => {
    const decision = decideWith({
      policies: [generation(policyA, 3)],
      approvedPolicy: { ref: 'AccessPolicy/a-manual', uid: policyA.metadata.uid, generation: 2 },
    });
    expect(decision).to.deep.include({ allowed: false });
    expect(decision.message).to.contain('changed since the approval (generation 2, now 3)');
  });

  it('a grant issued without approval never moves onto a Manual policy', () => {
    const decision = decideWith({ policies: [policyA], approvedPolicy: 'none' });
    expect(decision).to.deep.include({ allowed: false });
    expect(decision.message).to.contain('needs an approval, and this grant was issued without one');
  });

  it('Automatic policies allow whatever the approval', () => {
    for (const approvedPolicy of ['none', { ref: 'AccessPolicy/gone', uid: 'gone-uid' }] as const) {
      const decision = decideWith({ policies: [policyA, automatic], approvedPolicy });
      expect(decision.allowed && decision.policy.metadata.name).to.equal('c-automatic');
    }
  });
});
