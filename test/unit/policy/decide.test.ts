import { expect } from 'chai';
import type { AccessRequestSpec } from '../../../src/api/types.ts';
import { COST_LIMIT } from '../../../src/policy/cel.ts';
import { decide, type Decision, type DecisionInput } from '../../../src/policy/decide.ts';
import {
  accessPolicy,
  accessRequest,
  clusterAccessPolicy,
  CONTROLLER_NAMESPACE,
  decisionInput,
  serviceAccountToken,
  SUBJECT_POD_UID,
} from './fixtures.ts';

const token = { audience: ['orders-api'], actions: ['orders:read'], target: 'postgres://orders-db/orders' };
const allowToken = {
  permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
  token: { audiences: ['orders-api'], actions: ['orders:read'], targets: ['postgres://orders-db/*'] },
};
const requesting = (spec: Partial<AccessRequestSpec>) => ({ request: accessRequest(spec) });

describe('decide', () => {
  const cases: [string, Partial<DecisionInput>, Partial<Decision>][] = [
    [
      "allows a request the namespace's AccessPolicy covers, with the default terms",
      {},
      {
        allowed: true,
        message: 'allowed by AccessPolicy/batch-readers',
        ttlSeconds: 900,
        maxLifetimeSeconds: 8 * 3600,
        maxRenewals: 8,
        approval: 'Automatic',
        approvalTimeoutSeconds: 3600,
      },
    ],
    ["grants the request's own ttl", requesting({ ttl: '30m' }), { allowed: true, ttlSeconds: 1800 }],
    [
      "takes the policy's terms when it sets them",
      {
        policies: [
          accessPolicy('batch-readers', {
            defaultTTL: '5m',
            maxLifetime: '2h',
            maxRenewals: 2,
            approval: { mode: 'Manual', approvers: { users: ['alice'] }, timeout: '10m' },
          }),
        ],
      },
      {
        allowed: true,
        ttlSeconds: 300,
        maxLifetimeSeconds: 7200,
        maxRenewals: 2,
        approval: 'Manual',
        approvalTimeoutSeconds: 600,
      },
    ],
    [
      "denies a ttl above the policy's maxTTL",
      requesting({ ttl: '2h' }),
      {
        allowed: false,
        reason: 'NoPolicyAllows',
        message: 'denied: AccessPolicy/batch-readers: ttl 2h exceeds maxTTL 1h',
      },
    ],
    [
      'denies when the default ttl exceeds maxTTL',
      { policies: [accessPolicy('batch-readers', { maxTTL: '10m' })] },
      { allowed: false, message: 'denied: AccessPolicy/batch-readers: defaultTTL 15m exceeds maxTTL 10m' },
    ],
    [
      'denies a ttl beyond a misconfigured maxLifetime',
      { ...requesting({ ttl: '1h' }), policies: [accessPolicy('batch-readers', { maxLifetime: '30m' })] },
      { allowed: false, message: 'denied: AccessPolicy/batch-readers: ttl 1h exceeds maxLifetime 30m' },
    ],
    [
      'denies under a policy whose durations are not valid',
      { policies: [accessPolicy('batch-readers', { maxTTL: 'an hour' })] },
      {
        allowed: false,
        message: 'denied: AccessPolicy/batch-readers: maxTTL "an hour" is not a valid duration',
      },
    ],
    [
      'denies by default when there is no policy',
      { policies: [] },
      {
        allowed: false,
        reason: 'NoPolicyAllows',
        message: 'no policy in namespace "batch" or cluster-wide allows this request',
      },
    ],
    [
      'ignores an AccessPolicy of another namespace',
      { policies: [accessPolicy('batch-readers', {}, 'web')] },
      { allowed: false, message: 'no policy in namespace "batch" or cluster-wide allows this request' },
    ],
    [
      "ignores a ClusterAccessPolicy whose namespaceSelector does not match the namespace's labels",
      {
        policies: [
          clusterAccessPolicy('web-readers', { namespaceSelector: { matchLabels: { tier: 'web' } } }),
        ],
      },
      { allowed: false, message: 'no policy in namespace "batch" or cluster-wide allows this request' },
    ],
    [
      "allows by a ClusterAccessPolicy whose namespaceSelector matches the namespace's labels",
      {
        policies: [
          clusterAccessPolicy('batch-readers', { namespaceSelector: { matchLabels: { tier: 'batch' } } }),
        ],
      },
      { allowed: true, message: 'allowed by ClusterAccessPolicy/batch-readers' },
    ],
    [
      'applies a ClusterAccessPolicy without namespaceSelector to every namespace',
      { policies: [clusterAccessPolicy('everywhere')] },
      { allowed: true, message: 'allowed by ClusterAccessPolicy/everywhere' },
    ],
    [
      'tries AccessPolicies before ClusterAccessPolicies',
      {
        policies: [
          clusterAccessPolicy('a-cluster', { maxRenewals: 1 }),
          accessPolicy('z-local', { maxRenewals: 2 }),
        ],
      },
      { allowed: true, message: 'allowed by AccessPolicy/z-local', maxRenewals: 2 },
    ],
    [
      'tries policies of one kind by name',
      { policies: [accessPolicy('beta', { maxRenewals: 2 }), accessPolicy('alpha', { maxRenewals: 1 })] },
      { allowed: true, message: 'allowed by AccessPolicy/alpha', maxRenewals: 1 },
    ],
    [
      'allows by a later policy when an earlier one fails',
      {
        ...requesting({ ttl: '2h' }),
        policies: [accessPolicy('short'), clusterAccessPolicy('long', { maxTTL: '4h', maxLifetime: '8h' })],
      },
      { allowed: true, message: 'allowed by ClusterAccessPolicy/long', ttlSeconds: 7200 },
    ],
    [
      'names each policy considered and its first failing check',
      {
        ...requesting({ ttl: '2h' }),
        subject: { serviceAccountName: 'etl', labels: {} },
        policies: [
          clusterAccessPolicy('all', { subjects: { serviceAccounts: ['loader'] } }),
          accessPolicy('batch-readers'),
        ],
      },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: ttl 2h exceeds maxTTL 1h; ClusterAccessPolicy/all: service account "etl" is not a subject',
      },
    ],
    [
      'denies under a suspended policy',
      { policies: [accessPolicy('batch-readers', { suspend: true })] },
      { allowed: false, message: 'denied: AccessPolicy/batch-readers: policy is suspended' },
    ],
    [
      'lets "*" in subjects.serviceAccounts admit any service account',
      {
        ...requesting({
          requester: serviceAccountToken('batch', 'other', { name: 'etl-7xk2p', uid: SUBJECT_POD_UID }),
        }),
        policies: [accessPolicy('batch-readers', { subjects: { serviceAccounts: ['*'] } })],
        subject: { serviceAccountName: 'other', labels: {} },
      },
      { allowed: true },
    ],
    [
      "denies when the subject's labels do not match subjects.podSelector",
      {
        policies: [
          accessPolicy('batch-readers', {
            subjects: { serviceAccounts: ['etl'], podSelector: { matchLabels: { team: 'web' } } },
          }),
        ],
      },
      {
        allowed: false,
        message: "denied: AccessPolicy/batch-readers: the subject's labels do not match subjects.podSelector",
      },
    ],
    [
      "allows when the subject's labels match subjects.podSelector",
      {
        policies: [
          accessPolicy('batch-readers', {
            subjects: {
              serviceAccounts: ['etl'],
              podSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['data'] }] },
            },
          }),
        ],
      },
      { allowed: true },
    ],
    [
      'denies a requested rule the policy does not cover, naming the access',
      requesting({
        permissions: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] },
        ],
      }),
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: permissions[1]: verb "get" on "deployments" in group "apps" is not allowed by allow.permissions',
      },
    ],
    [
      'denies sensitive access a policy covers only by wildcard, saying why',
      {
        ...requesting({ permissions: [{ apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] }] }),
        policies: [
          accessPolicy('batch-admins', {
            allow: { permissions: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] },
          }),
        ],
      },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-admins: permissions[0]: verb "create" on "pods/exec" is sensitive (it reaches into running containers) and allow.permissions does not name it literally',
      },
    ],
    [
      'allows a token whose audience, actions and target the policy covers',
      { ...requesting({ token }), policies: [accessPolicy('orders', { allow: allowToken })] },
      { allowed: true, message: 'allowed by AccessPolicy/orders' },
    ],
    [
      'denies a token when the policy allows none',
      requesting({ token }),
      {
        allowed: false,
        message: 'denied: AccessPolicy/batch-readers: no token is allowed (allow.token is not set)',
      },
    ],
    [
      'denies a token for an audience the policy does not list',
      {
        ...requesting({ token: { ...token, audience: ['billing-api'] } }),
        policies: [accessPolicy('orders', { allow: allowToken })],
      },
      {
        allowed: false,
        message: 'denied: AccessPolicy/orders: token audience "billing-api" is not in allow.token.audiences',
      },
    ],
    [
      'denies a token action the policy does not list',
      {
        ...requesting({ token: { ...token, actions: ['orders:read', 'orders:write'] } }),
        policies: [accessPolicy('orders', { allow: allowToken })],
      },
      {
        allowed: false,
        message: 'denied: AccessPolicy/orders: token action "orders:write" is not in allow.token.actions',
      },
    ],
    [
      'denies a token target whose path crosses a "/" the glob does not',
      {
        ...requesting({ token: { ...token, target: 'postgres://orders-db/orders/archive' } }),
        policies: [accessPolicy('orders', { allow: allowToken })],
      },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/orders: token target "postgres://orders-db/orders/archive" matches no glob in allow.token.targets',
      },
    ],
    [
      'denies a requester a token for the empty segment a "*" glob ends in ("postgres://orders-db/")',
      {
        ...requesting({ token: { ...token, target: 'postgres://orders-db/' } }),
        policies: [accessPolicy('orders', { allow: allowToken })],
      },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/orders: token target "postgres://orders-db/" matches no glob in allow.token.targets',
      },
    ],
    [
      'denies when the service account already holds maxActivePerSubject grants',
      { activeGrants: 3, policies: [accessPolicy('batch-readers', { maxActivePerSubject: 3 })] },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: service account "etl" already holds 3 active grants (maxActivePerSubject 3)',
      },
    ],
    [
      'allows while the service account holds fewer than maxActivePerSubject grants',
      { activeGrants: 2, policies: [accessPolicy('batch-readers', { maxActivePerSubject: 3 })] },
      { allowed: true },
    ],
    [
      'denies a never-granted verb even when a policy names it literally',
      {
        ...requesting({
          permissions: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['bind'] }],
        }),
        policies: [
          accessPolicy('binders', {
            allow: {
              permissions: [
                { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['bind'] },
              ],
            },
          }),
        ],
      },
      { allowed: false, reason: 'NeverGranted', message: 'permissions[0]: verb "bind" is never granted' },
    ],
    [
      "denies anything in the controller's namespace even when a policy there allows it",
      {
        request: accessRequest({}, CONTROLLER_NAMESPACE),
        policies: [accessPolicy('batch-readers', {}, CONTROLLER_NAMESPACE)],
      },
      { allowed: false, reason: 'NeverGranted' },
    ],
    [
      'denies an unknown resource before reading policies',
      requesting({ permissions: [{ apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get'] }] }),
      {
        allowed: false,
        reason: 'UnknownResource',
        message: 'permissions[0]: unknown resource "widgets" in group "example.com"',
      },
    ],
  ];
  for (const [name, overrides, expected] of cases) {
    it(name, () => expect(decide(decisionInput(overrides))).to.deep.include(expected));
  }

  it('returns the allowing policy itself', () => {
    const policy = clusterAccessPolicy('everywhere');
    const decision = decide(decisionInput({ policies: [policy] }));
    expect(decision.allowed && decision.policy).to.equal(policy);
  });

  it('leaves the order of the given policies alone', () => {
    const policies = [clusterAccessPolicy('b'), accessPolicy('a')];
    decide(decisionInput({ policies }));
    expect(policies.map((policy) => policy.metadata.name)).to.deep.equal(['b', 'a']);
  });

  describe('one CEL budget per decision', () => {
    const hundred = `[${Array.from({ length: 100 }, (_, index) => index).join(', ')}]`;
    // At least 100 x 100 units: each of the outer loop's 100 iterations copies the inner range of
    // 100 elements, one unit each. It never holds, so the decision goes on to the next policy.
    const COSTLY_CONDITION_UNITS = 100 * 100;
    const costly = {
      name: 'costly',
      expression: `${hundred}.all(x, ${hundred}.all(y, y >= 0)) && request.spec.purpose == 'never'`,
    };
    const costlyPolicies = (count: number) =>
      Array.from({ length: count }, (_, index) =>
        accessPolicy(`tenant-${String(index).padStart(3, '0')}`, { conditions: [costly] }),
      );
    const celContext = { now: new Date('2025-01-06T10:30:00Z') };
    const occurrences = (text: string, part: string) => text.split(part).length - 1;

    it("bounds the CEL work of a namespace tenant's 200 policies whose cheap checks pass to one budget", () => {
      const decision = decide(decisionInput({ policies: costlyPolicies(200), celContext }));
      expect(decision.allowed).to.equal(false);
      const evaluated = occurrences(decision.message, 'condition "costly" failed');
      const stopped = occurrences(decision.message, "the decision's CEL budget of");
      expect(evaluated, 'policies whose condition ran to the end').to.be.at.least(1);
      expect(evaluated).to.be.at.most(Math.floor(COST_LIMIT / COSTLY_CONDITION_UNITS));
      expect(evaluated + stopped).to.equal(200);
    });

    it('denies, as the budget is spent, a later policy whose condition would hold', () => {
      const open = accessPolicy('zz-open', { conditions: [{ name: 'always', expression: 'true' }] });
      const decision = decide(decisionInput({ policies: [...costlyPolicies(200), open], celContext }));
      expect(decision).to.include({ allowed: false, reason: 'NoPolicyAllows' });
      expect(decision.message).to.contain(
        `AccessPolicy/zz-open: condition "always" could not be evaluated: the decision's CEL budget of ${COST_LIMIT} cost units is spent`,
      );
    });

    it('still allows by a later policy without conditions once the budget is spent', () => {
      const open = accessPolicy('zz-open');
      const decision = decide(decisionInput({ policies: [...costlyPolicies(200), open], celContext }));
      expect(decision).to.include({ allowed: true, message: 'allowed by AccessPolicy/zz-open' });
    });

    it('gives each decision a budget of its own', () => {
      const input = () => decisionInput({ policies: costlyPolicies(200), celContext });
      expect(decide(input()).message).to.equal(decide(input()).message);
    });
  });
});
