import { expect } from 'chai';
import {
  compileConditions,
  COST_LIMIT,
  evaluateConditions,
  newCelBudget,
  policyConditions,
  type CelVariables,
  type CompiledConditions,
  type Condition,
  type ConditionError,
} from '../../../src/policy/cel.ts';
import { decide, type CelContext, type Decision, type DecisionInput } from '../../../src/policy/decide.ts';
import { accessPolicy, accessRequest, decisionInput } from './fixtures.ts';

// A Monday, 10:30 UTC.
const NOW = new Date('2025-01-06T10:30:00Z');
const HAS_TICKET: Condition = {
  name: 'has-ticket',
  expression: "request.spec.purpose.matches('^[A-Z]+-[0-9]+')",
  message: 'purpose must start with a ticket id',
};

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'etl-7xk2p', namespace: 'batch', labels: { app: 'etl', team: 'data' } },
  spec: { serviceAccountName: 'etl', containers: [{ name: 'etl', image: 'etl:1' }] },
};
const namespace = {
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: 'batch', labels: { 'kubernetes.io/metadata.name': 'batch', tier: 'batch' } },
};
const serviceAccount = {
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name: 'etl', namespace: 'batch' },
};
const requester = { username: 'alice', uid: 'alice-uid', groups: ['data-eng', 'system:authenticated'] };

function variables(overrides: Partial<CelVariables> = {}): CelVariables {
  return {
    request: {
      ...accessRequest(),
      metadata: { name: 'etl-read-orders', namespace: 'batch', uid: 'request-uid', generation: 1 },
    },
    subject: { pod, serviceAccount, namespace },
    requester,
    now: NOW,
    ...overrides,
  };
}

function compiled(...conditions: Condition[]): CompiledConditions {
  const result = compileConditions(conditions);
  if (!result.ok) throw new Error(`does not compile: ${JSON.stringify(result.errors)}`);
  return result.program;
}

function condition(expression: string, message?: string): Condition {
  return { name: 'c', expression, ...(message === undefined ? {} : { message }) };
}

const numbers = (count: number) => `[${Array.from({ length: count }, (_, index) => index).join(', ')}]`;

describe('CEL conditions', () => {
  describe('evaluateConditions', () => {
    const cases: [string, Condition[], Partial<CelVariables>, string | undefined][] = [
      ['allows a purpose that starts with a ticket id (the api.md example)', [HAS_TICKET], {}, undefined],
      [
        "denies a purpose without a ticket id, with the condition's message",
        [HAS_TICKET],
        { request: accessRequest({ purpose: 'nightly read of the orders table' }) },
        'condition "has-ticket" failed: purpose must start with a ticket id',
      ],
      [
        'matches anywhere in the text, as RE2 and cel-go do, unless anchored',
        [condition("request.spec.purpose.matches('[0-9]+ nightly')")],
        {},
        undefined,
      ],
      [
        "allows when the subject pod's labels match",
        [condition("subject.pod.metadata.labels.team == 'data'")],
        {},
        undefined,
      ],
      [
        "denies when the subject pod's labels do not match",
        [condition("subject.pod.metadata.labels['team'] in ['web', 'ops']", 'only web and ops pods')],
        {},
        'condition "c" failed: only web and ops pods',
      ],
      [
        "allows when the namespace's labels match",
        [condition("subject.namespace.metadata.labels.tier == 'batch'")],
        {},
        undefined,
      ],
      [
        "reads the subject's service account",
        [condition("subject.serviceAccount.metadata.name == 'etl' && !has(subject.job)")],
        {},
        undefined,
      ],
      [
        "allows a requester in one of the policy's groups",
        [condition("requester.groups.exists(g, g in ['data-eng', 'sre'])")],
        {},
        undefined,
      ],
      [
        'denies a requester outside the groups',
        [condition("'sre' in requester.groups", 'only SREs')],
        {},
        'condition "c" failed: only SREs',
      ],
      [
        'sees an absent requester field as empty',
        [condition("requester.groups.size() == 0 && requester.username == ''")],
        { requester: {} },
        undefined,
      ],
      [
        'allows inside a working-hours window',
        [condition('now.getHours() >= 9 && now.getHours() < 17 && now.getDayOfWeek() in [1, 2, 3, 4, 5]')],
        {},
        undefined,
      ],
      [
        'denies outside the working-hours window',
        [condition('now.getHours() >= 9 && now.getHours() < 17', 'only during working hours')],
        { now: new Date('2025-01-06T20:00:00Z') },
        'condition "c" failed: only during working hours',
      ],
      ['reads the hour in a time zone', [condition("now.getHours('Europe/Berlin') == 11")], {}, undefined],
      [
        'compares now with a timestamp',
        [
          condition(
            "now < timestamp('2025-02-01T00:00:00Z') && now - duration('1h') > timestamp('2025-01-06T09:00:00Z')",
          ),
        ],
        {},
        undefined,
      ],
      [
        'reads whole JSON numbers as int',
        [condition('request.metadata.generation % 2 == 1 && type(request.metadata.generation) == int')],
        {},
        undefined,
      ],
      [
        'iterates over the requested permissions',
        [condition("request.spec.permissions.all(rule, rule.verbs.all(verb, verb in ['get', 'list']))")],
        {},
        undefined,
      ],
      [
        'says only "failed" for a false condition without message',
        [condition('false')],
        {},
        'condition "c" failed',
      ],
      [
        'denies when the result is not a bool',
        [condition('request.spec.purpose')],
        {},
        'condition "c" could not be evaluated: the expression returned string, not bool',
      ],
      [
        'denies when a field is missing',
        [condition("request.spec.token.audience[0] == 'orders-api'")],
        {},
        'condition "c" could not be evaluated: field not found: token',
      ],
      [
        'denies when the subject has no pod',
        [condition("subject.pod.metadata.name == 'etl-7xk2p'")],
        { subject: { serviceAccount, namespace } },
        'condition "c" could not be evaluated: field not found: pod',
      ],
      ['lets has() guard a missing field', [condition('!has(request.spec.token)')], {}, undefined],
      [
        'denies on a runtime error',
        [condition('1 / (size(request.spec.purpose) - size(request.spec.purpose)) == 1')],
        {},
        'condition "c" could not be evaluated: int divide by zero',
      ],
      [
        'denies when a regular expression from the data is not valid RE2',
        [condition("'x'.matches(request.spec.purpose)")],
        { request: accessRequest({ purpose: '(?=lookahead)' }) },
        'condition "c" could not be evaluated: error parsing regexp: invalid or unsupported Perl syntax: `(?=`',
      ],
      [
        'reports the first condition that fails, in order',
        [
          { name: 'first', expression: 'true' },
          { name: 'second', expression: 'false', message: 'second says no' },
          { name: 'third', expression: 'false', message: 'third says no' },
        ],
        {},
        'condition "second" failed: second says no',
      ],
    ];
    for (const [name, conditions, overrides, expected] of cases) {
      it(name, () => {
        expect(evaluateConditions(compiled(...conditions), variables(overrides))).to.equal(expected);
      });
    }
  });

  describe('compileConditions', () => {
    const cases: [string, Condition[], (ConditionError | { name: string; message: RegExp })[]][] = [
      [
        'reports a syntax error with the condition name',
        [HAS_TICKET, { name: 'broken', expression: 'request.spec.purpose ==' }],
        [{ name: 'broken', message: /expecting/ }],
      ],
      [
        'reports an undeclared variable',
        [{ name: 'typo', expression: "reqest.spec.purpose == 'x'" }],
        [{ name: 'typo', message: 'undeclared reference to "reqest" (at column 1)' }],
      ],
      [
        'reports an unknown function',
        [{ name: 'nope', expression: "request.spec.purpose.lowerAscii() == 'x'" }],
        [{ name: 'nope', message: 'undeclared reference to function "lowerAscii" (at column 21)' }],
      ],
      [
        'reports a call no overload takes',
        [{ name: 'arity', expression: 'size(request, 2) > 0' }],
        [{ name: 'arity', message: /"size" has no overload called as a function with 2 argument\(s\)/ }],
      ],
      [
        'reports a constant regular expression RE2 refuses, such as a backreference',
        [{ name: 'backref', expression: "request.spec.purpose.matches('(a)\\\\1')" }],
        [{ name: 'backref', message: /^invalid regular expression: .*invalid escape sequence: `\\1`/ }],
      ],
      [
        'reports a result that is surely not a bool',
        [{ name: 'size', expression: 'size(request.spec.purpose)' }],
        [{ name: 'size', message: 'the expression returns int, not bool' }],
      ],
      [
        'reports a list result',
        [{ name: 'list', expression: "requester.groups.filter(g, g.startsWith('data'))" }],
        [{ name: 'list', message: /the expression returns list, not bool/ }],
      ],
      [
        'reports two conditions with the same name',
        [HAS_TICKET, { ...HAS_TICKET, expression: 'true' }],
        [{ name: 'has-ticket', message: 'another condition has the same name' }],
      ],
      [
        'reports an expression longer than the CRD allows',
        [{ name: 'long', expression: `true${' && true'.repeat(600)}` }],
        [{ name: 'long', message: 'the expression is longer than 4096 characters' }],
      ],
      [
        'reports every condition that does not compile, and only those',
        [{ name: 'a', expression: '(' }, HAS_TICKET, { name: 'b', expression: 'unknown' }],
        [
          { name: 'a', message: /./ },
          { name: 'b', message: 'undeclared reference to "unknown" (at column 1)' },
        ],
      ],
    ];
    for (const [name, conditions, expected] of cases) {
      it(name, () => {
        const result = compileConditions(conditions);
        expect(result.ok).to.equal(false);
        const errors = result.ok ? [] : result.errors;
        expect(errors.map((error) => error.name)).to.deep.equal(expected.map((error) => error.name));
        for (const [index, { message }] of expected.entries()) {
          if (message instanceof RegExp) expect(errors[index]?.message).to.match(message);
          else expect(errors[index]?.message).to.equal(message);
        }
      });
    }

    it('compiles no conditions to a program that allows', () => {
      const result = compileConditions([]);
      expect(result.ok).to.equal(true);
      expect(result.ok && evaluateConditions(result.program, variables())).to.equal(undefined);
    });

    it('accepts type names and comprehension variables', () => {
      const result = compileConditions([
        condition("type(requester.groups) == list && requester.groups.all(g, g != '')"),
      ]);
      expect(result).to.include({ ok: true });
    });
  });

  describe('regular expressions', () => {
    const longNonMatching = { request: accessRequest({ purpose: `${'a'.repeat(50_000)}!` }) };

    it('match with RE2 semantics: \\z is the end of the text, not a "z"', () => {
      // JavaScript's RegExp reads /c\z/ as "cz" and would not match "abc".
      const program = compiled(condition("request.spec.purpose.matches('table\\\\z')"));
      expect(evaluateConditions(program, variables())).to.equal(undefined);
    });

    it('refuses lookaround at compile time, as RE2 has no backtracking', () => {
      const result = compileConditions([condition("request.spec.purpose.matches('^(?!OPS)')")]);
      expect(result.ok ? [] : result.errors.map((error) => error.message)).to.deep.equal([
        'invalid regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?!` (at column 21)',
      ]);
    });

    // A backtracking engine needs about 2^50000 steps for this; RE2 is linear, so the test simply ends.
    // No wall-time assertion: the cost charged, which bounds the work, is asserted below.
    it('evaluates a catastrophic-backtracking pattern on a long non-matching text', () => {
      const program = compiled({ name: 'redos', expression: "request.spec.purpose.matches('(a+)+$')" });
      expect(evaluateConditions(program, variables(longNonMatching))).to.equal('condition "redos" failed');
    });

    it('charges matches() in proportion to the length of the text', () => {
      const program = compiled({ name: 'redos', expression: "request.spec.purpose.matches('(a+)+$')" });
      // 50 001 characters are 5 001 units of ten, times 2 for the 6-character pattern, plus the call.
      const cost = 1 + 5_001 * 2;
      const base = 5; // the expression's nodes: request, .spec, .purpose, the pattern, the call
      expect(evaluateConditions(program, variables(longNonMatching), newCelBudget(base + cost))).to.equal(
        'condition "redos" failed',
      );
      expect(evaluateConditions(program, variables(longNonMatching), newCelBudget(base + cost - 1))).to.equal(
        `condition "redos" could not be evaluated: the decision's CEL budget of ${base + cost - 1} cost units is spent`,
      );
    });
  });

  describe('cost budget', () => {
    const huge = `${numbers(100)}.all(x, ${numbers(100)}.all(y, ${numbers(100)}.all(z, true)))`;

    it('stops a huge comprehension (a million iterations) at the cost limit', () => {
      expect(evaluateConditions(compiled({ name: 'huge', expression: huge }), variables())).to.equal(
        `condition "huge" could not be evaluated: the decision's CEL budget of ${COST_LIMIT} cost units is spent`,
      );
    });

    it('still denies when the expression would absorb the error, as in `huge || true`', () => {
      const program = compiled({ name: 'huge', expression: `${huge} || true` });
      expect(evaluateConditions(program, variables())).to.equal(
        `condition "huge" could not be evaluated: the decision's CEL budget of ${COST_LIMIT} cost units is spent`,
      );
    });

    it('charges every iteration, even of a loop that calls no function', () => {
      const sized = compiled(condition(`size(${numbers(100)}) == 100`));
      const looped = compiled(condition(`${numbers(100)}.all(x, true)`));
      expect(evaluateConditions(sized, variables(), newCelBudget(300))).to.equal(undefined);
      expect(evaluateConditions(looped, variables(), newCelBudget(300))).to.equal(
        `condition "c" could not be evaluated: the decision's CEL budget of 300 cost units is spent`,
      );
    });

    it('lets the conditions of a policy share one limit', () => {
      const loop = `${numbers(100)}.all(x, true)`;
      const one = compiled({ name: 'one', expression: loop });
      const two = compiled({ name: 'one', expression: loop }, { name: 'two', expression: loop });
      expect(evaluateConditions(one, variables(), newCelBudget(1200))).to.equal(undefined);
      expect(evaluateConditions(two, variables(), newCelBudget(1200))).to.equal(
        `condition "two" could not be evaluated: the decision's CEL budget of 1200 cost units is spent`,
      );
    });
  });

  describe('one budget shared by several policies', () => {
    const loop = compiled({ name: 'loop', expression: `${numbers(100)}.all(x, true)` });

    it('charges every evaluation to the budget it is given', () => {
      const budget = newCelBudget();
      expect(evaluateConditions(loop, variables(), budget)).to.equal(undefined);
      const once = budget.spent;
      expect(once).to.be.above(100);
      expect(evaluateConditions(loop, variables(), budget)).to.equal(undefined);
      expect(budget.spent).to.equal(2 * once);
    });

    it('evaluates nothing once the budget is spent, and says so', () => {
      const budget = newCelBudget(1200);
      expect(evaluateConditions(loop, variables(), budget)).to.equal(undefined);
      expect(evaluateConditions(loop, variables(), budget)).to.match(/budget of 1200 cost units is spent/);
      const spentBefore = budget.spent;
      expect(evaluateConditions(loop, variables(), budget)).to.equal(
        `condition "loop" could not be evaluated: the decision's CEL budget of 1200 cost units is spent`,
      );
      expect(budget.spent, 'nothing charged after the budget is spent').to.equal(spentBefore);
    });
  });

  describe('policyConditions', () => {
    const policy = (generation: number, conditions: Condition[]) => {
      const base = accessPolicy('with-conditions', { conditions });
      return { ...base, metadata: { ...base.metadata, generation } };
    };

    it('compiles a policy once per uid and generation', () => {
      expect(policyConditions(policy(1, [HAS_TICKET]))).to.equal(policyConditions(policy(1, [HAS_TICKET])));
    });

    it('compiles again for a new generation', () => {
      expect(policyConditions(policy(2, [HAS_TICKET]))).not.to.equal(
        policyConditions(policy(3, [HAS_TICKET])),
      );
    });

    it('compiles again when the conditions changed under the same generation, as under admission', () => {
      const before = policyConditions(policy(4, [HAS_TICKET]));
      const after = policyConditions(policy(4, [{ ...HAS_TICKET, expression: 'false' }]));
      expect(before).to.include({ ok: true });
      expect(after.ok && evaluateConditions(after.program, variables())).to.equal(
        'condition "has-ticket" failed: purpose must start with a ticket id',
      );
    });
  });

  describe('decide', () => {
    const celContext: CelContext = { pod, serviceAccount, namespace, requester, now: NOW };
    const withConditions = (...conditions: Condition[]) => [accessPolicy('batch-readers', { conditions })];
    const cases: [string, Partial<DecisionInput>, Partial<Decision>][] = [
      [
        'allows when every condition holds',
        {
          policies: withConditions(HAS_TICKET, {
            name: 'data-team',
            expression: "subject.pod.metadata.labels.team == 'data' && 'data-eng' in requester.groups",
          }),
          celContext,
        },
        { allowed: true, message: 'allowed by AccessPolicy/batch-readers' },
      ],
      [
        "denies with the failing condition's message",
        {
          request: accessRequest({ purpose: 'nightly read' }),
          policies: withConditions(HAS_TICKET),
          celContext,
        },
        {
          allowed: false,
          reason: 'NoPolicyAllows',
          message:
            'denied: AccessPolicy/batch-readers: condition "has-ticket" failed: purpose must start with a ticket id',
        },
      ],
      [
        "reads the request's own requester when the context gives none",
        {
          request: accessRequest({ requester: { username: 'bob', groups: ['sre'] } }),
          policies: [
            accessPolicy('batch-readers', {
              requesters: { users: ['bob'] },
              conditions: [{ name: 'sre', expression: "'sre' in requester.groups" }],
            }),
          ],
          celContext: { now: NOW },
        },
        { allowed: true },
      ],
      [
        'denies when the decision has no CEL context',
        { policies: withConditions(HAS_TICKET) },
        {
          allowed: false,
          message:
            'denied: AccessPolicy/batch-readers: condition "has-ticket" could not be evaluated: the decision was given no CEL context',
        },
      ],
      [
        'denies under a policy whose condition does not compile',
        { policies: withConditions({ name: 'typo', expression: 'reqest.spec.purpose != ""' }), celContext },
        {
          allowed: false,
          message:
            'denied: AccessPolicy/batch-readers: condition "typo" does not compile: undeclared reference to "reqest" (at column 1)',
        },
      ],
      [
        'runs conditions only after the cheap checks pass',
        {
          request: accessRequest({ purpose: 'no ticket', ttl: '2h' }),
          policies: withConditions(HAS_TICKET),
          celContext,
        },
        { allowed: false, message: 'denied: AccessPolicy/batch-readers: ttl 2h exceeds maxTTL 1h' },
      ],
      [
        "allows by a later policy when an earlier policy's condition fails",
        {
          policies: [
            accessPolicy('a-strict', { conditions: [{ name: 'never', expression: 'false' }] }),
            accessPolicy('b-open'),
          ],
          celContext,
        },
        { allowed: true, message: 'allowed by AccessPolicy/b-open' },
      ],
      [
        'needs no CEL context for policies without conditions',
        {},
        { allowed: true, message: 'allowed by AccessPolicy/batch-readers' },
      ],
    ];
    for (const [name, overrides, expected] of cases) {
      it(name, () => {
        expect(decide(decisionInput(overrides))).to.deep.include(expected);
      });
    }
  });
});
