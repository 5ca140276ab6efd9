import { expect } from 'chai';
import { coversActions } from '../../../src/policy/checks.ts';

describe('coversActions', () => {
  const cases: [string, string[], string[], boolean][] = [
    ['covers actions listed literally', ['orders:read', 'orders:list'], ['orders:read'], true],
    ['does not cover an action that is not listed', ['orders:read'], ['orders:read', 'orders:write'], false],
    ['lets "*" cover any action', ['*'], ['orders:write'], true],
    ['does not treat "*" inside an action as a wildcard', ['orders:*'], ['orders:write'], false],
  ];
  for (const [name, allowed, requested, expected] of cases) {
    it(name, () => expect(coversActions(allowed, requested)).to.equal(expected));
  }
});
