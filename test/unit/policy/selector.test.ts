import { expect } from 'chai';
import type { LabelSelector } from '../../../src/api/types.ts';
import { matchesLabelSelector } from '../../../src/policy/selector.ts';

describe('matchesLabelSelector', () => {
  const labels = { team: 'data', tier: 'batch' };
  const cases: [string, LabelSelector, boolean][] = [
    ['matches everything with an empty selector', {}, true],
    [
      'matches when every matchLabels pair is present',
      { matchLabels: { team: 'data', tier: 'batch' } },
      true,
    ],
    [
      'does not match when one matchLabels value differs',
      { matchLabels: { team: 'data', tier: 'web' } },
      false,
    ],
    ['does not match when a matchLabels key is missing', { matchLabels: { owner: 'alice' } }, false],
    [
      'matches In when the value is listed',
      { matchExpressions: [{ key: 'team', operator: 'In', values: ['ops', 'data'] }] },
      true,
    ],
    [
      'does not match In when the key is missing',
      { matchExpressions: [{ key: 'owner', operator: 'In', values: ['alice'] }] },
      false,
    ],
    [
      'matches NotIn when the key is missing',
      { matchExpressions: [{ key: 'owner', operator: 'NotIn', values: ['alice'] }] },
      true,
    ],
    [
      'does not match NotIn when the value is listed',
      { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['data'] }] },
      false,
    ],
    [
      'matches Exists when the key is present',
      { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
      true,
    ],
    [
      'matches DoesNotExist when the key is missing',
      { matchExpressions: [{ key: 'owner', operator: 'DoesNotExist' }] },
      true,
    ],
    [
      'does not match DoesNotExist when the key is present',
      { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
      false,
    ],
    [
      'matches nothing with an Exists requirement that has values',
      { matchExpressions: [{ key: 'team', operator: 'Exists', values: ['data'] }] },
      false,
    ],
    [
      'matches nothing with a NotIn requirement without values',
      { matchExpressions: [{ key: 'team', operator: 'NotIn', values: [] }] },
      false,
    ],
    [
      'requires matchLabels and matchExpressions both',
      { matchLabels: { team: 'data' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] },
      false,
    ],
    [
      'does not find inherited object properties as labels',
      { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
      false,
    ],
  ];
  for (const [name, selector, expected] of cases) {
    it(name, () => expect(matchesLabelSelector(selector, labels)).to.equal(expected));
  }
});
