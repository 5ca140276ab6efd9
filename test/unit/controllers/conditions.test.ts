import { expect } from 'chai';
import type { Condition } from '../../../src/api/types.ts';
import { findCondition, setCondition } from '../../../src/controllers/conditions.ts';
import { iso, MINUTE, NOW } from './accessrequest/fixtures.ts';

const EARLIER = iso(-10 * MINUTE);

function cond(
  type: string,
  status: Condition['status'],
  reason: string,
  lastTransitionTime = EARLIER,
  message = `${type} ${reason}`,
): Condition {
  return { type, status, reason, message, lastTransitionTime };
}
const next = (type: string, status: Condition['status'], reason: string, message = `${type} ${reason}`) => ({
  type,
  status,
  reason,
  message,
});

describe('setCondition', () => {
  const cases: {
    name: string;
    existing: Condition[] | undefined;
    set: Omit<Condition, 'lastTransitionTime'>;
    expected: Condition[];
  }[] = [
    {
      name: 'adds a condition to no conditions, with lastTransitionTime now',
      existing: undefined,
      set: next('Granted', 'True', 'Issued'),
      expected: [cond('Granted', 'True', 'Issued', NOW.toISOString())],
    },
    {
      name: 'appends a new type after the existing conditions',
      existing: [cond('Approved', 'True', 'PolicyAllowed')],
      set: next('Granted', 'True', 'Issued'),
      expected: [
        cond('Approved', 'True', 'PolicyAllowed'),
        cond('Granted', 'True', 'Issued', NOW.toISOString()),
      ],
    },
    {
      name: 'keeps lastTransitionTime when the status stays the same, while taking the new reason and message',
      existing: [cond('Granted', 'True', 'Issued')],
      set: next('Granted', 'True', 'Renewed', 'Grant grant-2 replaced grant-1.'),
      expected: [cond('Granted', 'True', 'Renewed', EARLIER, 'Grant grant-2 replaced grant-1.')],
    },
    {
      name: 'moves lastTransitionTime to now when the status changes',
      existing: [cond('Granted', 'True', 'Issued')],
      set: next('Granted', 'False', 'Expired'),
      expected: [cond('Granted', 'False', 'Expired', NOW.toISOString())],
    },
    {
      name: 'moves lastTransitionTime when the status changes from Unknown',
      existing: [cond('Granted', 'Unknown', 'Reconciling')],
      set: next('Granted', 'True', 'Issued'),
      expected: [cond('Granted', 'True', 'Issued', NOW.toISOString())],
    },
    {
      name: 'replaces a condition in place, leaving the others and their order alone',
      existing: [
        cond('Approved', 'True', 'PolicyAllowed'),
        cond('Granted', 'True', 'Issued'),
        cond('Renewed', 'False', 'RenewalRefused'),
      ],
      set: next('Granted', 'False', 'Manual'),
      expected: [
        cond('Approved', 'True', 'PolicyAllowed'),
        cond('Granted', 'False', 'Manual', NOW.toISOString()),
        cond('Renewed', 'False', 'RenewalRefused'),
      ],
    },
    {
      name: 'replaces the whole condition, leaving no stale observedGeneration behind',
      existing: [{ ...cond('Granted', 'True', 'Issued'), observedGeneration: 1 }],
      set: next('Granted', 'True', 'Renewed'),
      expected: [cond('Granted', 'True', 'Renewed')],
    },
    {
      name: 'never replaces an Approved condition, not even its reason or message',
      existing: [cond('Approved', 'True', 'ApprovedByApprover', EARLIER, 'approved by alice')],
      set: next('Approved', 'True', 'PolicyAllowed', 'allowed by AccessPolicy/batch-readers'),
      expected: [cond('Approved', 'True', 'ApprovedByApprover', EARLIER, 'approved by alice')],
    },
    {
      name: 'never turns an Approved condition False',
      existing: [cond('Approved', 'True', 'ApprovedByApprover')],
      set: next('Approved', 'False', 'PolicyChanged'),
      expected: [cond('Approved', 'True', 'ApprovedByApprover')],
    },
    {
      name: 'never replaces a Denied condition',
      existing: [cond('Denied', 'True', 'NotJustified', EARLIER, 'denied by bob')],
      set: next('Denied', 'True', 'ApprovalTimeout', 'No approver decided within 3600s.'),
      expected: [cond('Denied', 'True', 'NotJustified', EARLIER, 'denied by bob')],
    },
    {
      name: 'never adds Denied beside an Approved condition (never both)',
      existing: [cond('Approved', 'True', 'ApprovedByApprover')],
      set: next('Denied', 'True', 'NoPolicyAllows'),
      expected: [cond('Approved', 'True', 'ApprovedByApprover')],
    },
    {
      name: 'never adds Approved beside a Denied condition (never both)',
      existing: [cond('Denied', 'True', 'NotJustified')],
      set: next('Approved', 'True', 'PolicyAllowed'),
      expected: [cond('Denied', 'True', 'NotJustified')],
    },
  ];
  for (const { name, existing, set, expected } of cases) {
    it(name, () => expect(setCondition(existing, set, NOW)).to.deep.equal(expected));
  }

  it('does not modify the conditions it is given', () => {
    const existing = [cond('Approved', 'True', 'PolicyAllowed'), cond('Granted', 'True', 'Issued')];
    const before = structuredClone(existing);
    setCondition(existing, next('Granted', 'False', 'Expired'), NOW);
    setCondition(existing, next('Renewed', 'False', 'RenewalRefused'), NOW);
    expect(existing).to.deep.equal(before);
  });
});

describe('findCondition', () => {
  const conditions = [cond('Approved', 'True', 'PolicyAllowed'), cond('Granted', 'False', 'Expired')];
  const cases: [string, Condition[] | undefined, string, Condition | undefined][] = [
    ['finds a condition of the type that is True', conditions, 'Approved', conditions[0]],
    ['does not find a condition of the type that is False', conditions, 'Granted', undefined],
    ['does not find a type that is absent', conditions, 'Denied', undefined],
    ['finds nothing in no conditions', undefined, 'Approved', undefined],
  ];
  for (const [name, given, type, expected] of cases) {
    it(name, () => expect(findCondition(given, type)).to.equal(expected));
  }
});
