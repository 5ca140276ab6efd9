import { expect } from 'chai';
import { matchesTarget } from '../../../src/tokens/contract.ts';

describe('matchesTarget', () => {
  const cases: [string, string, string, boolean][] = [
    [
      'matches a literal target equal to the glob',
      'postgres://orders-db/orders',
      'postgres://orders-db/orders',
      true,
    ],
    [
      'does not match a literal glob that differs',
      'postgres://orders-db/orders',
      'postgres://orders-db/users',
      false,
    ],
    ['lets "*" match a whole last segment', 'postgres://orders-db/*', 'postgres://orders-db/orders', true],
    ['does not let "*" cross a "/"', 'postgres://orders-db/*', 'postgres://orders-db/orders/archive', false],
    ['does not let "*" match a missing segment', 'postgres://orders-db/*/x', 'postgres://orders-db/x', false],
    [
      'lets "*" match within a segment with a prefix and suffix',
      's3://bucket/report-*.csv',
      's3://bucket/report-2024.csv',
      true,
    ],
    ['checks the suffix after a "*"', 's3://bucket/report-*.csv', 's3://bucket/report-2024.json', false],
    ['does not let "*" match an empty run', 's3://bucket/report-*.csv', 's3://bucket/report-.csv', false],
    [
      'does not let a last "*" match an empty last segment',
      'postgres://orders-db/*',
      'postgres://orders-db/',
      false,
    ],
    ['does not let a middle "*" match an empty segment', 'kafka://*/topic', 'kafka:///topic', false],
    ['does not let a lone "*" match the empty target', '*', '', false],
    ['lets "*" match a single character', 'db://orders-*', 'db://orders-1', true],
    ['does not let a "*" after a prefix match nothing', 'db://orders*', 'db://orders', false],
    ['does not let a "*" before a suffix match nothing', 'db://*orders', 'db://orders', false],
    ['gives each of two adjacent stars a character of its own', 'a**b', 'axyb', true],
    ['does not let two adjacent stars share one character', 'a**b', 'axb', false],
    ['does not let a middle piece touch the suffix without a character between', 'a*b*c', 'axbc', false],
    ['does not let prefix and suffix overlap', 'ab*ba', 'aba', false],
    ['does not let a middle piece reuse the suffix', 'a*b*b', 'ab', false],
    ['places several stars in one segment in order', 'a*b*c', 'axxbyyc', true],
    ['does not match several stars out of order', 'a*b*c', 'acb', false],
    ['lets "*" match inside a middle segment only', 'kafka://*/topic', 'kafka://broker-1/topic', true],
    ['treats regular expression characters literally', 'db://a.c/(x)+', 'db://abc/xx', false],
    ['treats "?" literally', 'db://orders?', 'db://ordersX', false],
    ['does not let a lone "*" match a target with a "/"', '*', 'orders/archive', false],
  ];
  for (const [name, glob, target, expected] of cases) {
    it(name, () => expect(matchesTarget(glob, target)).to.equal(expected));
  }

  it('decides a long adversarial segment quickly', () => {
    const started = performance.now();
    expect(matchesTarget(`${'*a'.repeat(500)}b`, 'a'.repeat(100_000))).to.equal(false);
    expect(performance.now() - started).to.be.below(1_000);
  });
});
