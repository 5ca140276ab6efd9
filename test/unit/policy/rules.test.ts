import { expect } from 'chai';
import type { AllowedRule, RequestedRule } from '../../../src/api/types.ts';
import { firstUncoveredAccess, ruleCovers } from '../../../src/policy/rules.ts';

const rule = (
  apiGroups: string[],
  resources: string[],
  verbs: string[],
  resourceNames?: string[],
): RequestedRule & AllowedRule => ({
  apiGroups,
  resources,
  verbs,
  ...(resourceNames ? { resourceNames } : {}),
});

describe('ruleCovers', () => {
  const cases: [string, AllowedRule, RequestedRule, boolean][] = [
    [
      'covers a rule asking for a subset of the verbs',
      rule([''], ['configmaps'], ['get', 'list']),
      rule([''], ['configmaps'], ['get']),
      true,
    ],
    [
      'does not cover a verb the allowed rule lacks',
      rule([''], ['configmaps'], ['get']),
      rule([''], ['configmaps'], ['get', 'delete']),
      false,
    ],
    [
      'does not cover another API group',
      rule(['apps'], ['deployments'], ['get']),
      rule(['extensions'], ['deployments'], ['get']),
      false,
    ],
    [
      'lets a "*" verb cover an ordinary verb',
      rule([''], ['configmaps'], ['*']),
      rule([''], ['configmaps'], ['delete']),
      true,
    ],
    [
      'lets "*" resources cover an ordinary resource',
      rule([''], ['*'], ['get']),
      rule([''], ['configmaps', 'pods/log'], ['get']),
      true,
    ],
    [
      'lets "*" apiGroups cover an ordinary group',
      rule(['*'], ['deployments'], ['get']),
      rule(['apps'], ['deployments'], ['get']),
      true,
    ],
    [
      'lets "*/log" cover the log subresource of any resource',
      rule([''], ['*/log'], ['get']),
      rule([''], ['pods/log'], ['get']),
      true,
    ],
    [
      'does not let "pods" cover the pods/log subresource',
      rule([''], ['pods'], ['get']),
      rule([''], ['pods/log'], ['get']),
      false,
    ],
    [
      'covers named objects with an allowed rule without resourceNames',
      rule([''], ['configmaps'], ['get']),
      rule([''], ['configmaps'], ['get'], ['a', 'b']),
      true,
    ],
    [
      'covers named objects the allowed rule names',
      rule([''], ['configmaps'], ['get'], ['a', 'b']),
      rule([''], ['configmaps'], ['get'], ['b']),
      true,
    ],
    [
      'does not cover an object name the allowed rule does not name',
      rule([''], ['configmaps'], ['get'], ['a']),
      rule([''], ['configmaps'], ['get'], ['a', 'b']),
      false,
    ],
    [
      'does not cover every object with an allowed rule that names objects',
      rule([''], ['configmaps'], ['get'], ['a']),
      rule([''], ['configmaps'], ['get']),
      false,
    ],
    [
      'treats an empty resourceNames list as every object',
      rule([''], ['configmaps'], ['get'], []),
      rule([''], ['configmaps'], ['get']),
      true,
    ],
  ];
  for (const [name, allowed, requested, expected] of cases) {
    it(name, () => expect(ruleCovers(allowed, requested)).to.equal(expected));
  }
});

describe('sensitive access', () => {
  const everything = rule(['*'], ['*'], ['*']);
  const cases: [string, AllowedRule, RequestedRule, boolean][] = [
    ['does not let resources "*" cover pods/exec', everything, rule([''], ['pods/exec'], ['create']), false],
    [
      'does not let "*/exec" cover pods/exec',
      rule([''], ['*/exec'], ['create']),
      rule([''], ['pods/exec'], ['create']),
      false,
    ],
    [
      'covers pods/exec when a policy names it literally',
      rule([''], ['pods/exec'], ['create']),
      rule([''], ['pods/exec'], ['create']),
      true,
    ],
    [
      'does not let a "*" verb cover pods/exec even with the resource named',
      rule([''], ['pods/exec'], ['*']),
      rule([''], ['pods/exec'], ['create']),
      false,
    ],
    [
      'does not let a "*" group cover pods/attach even with the resource and verb named',
      rule(['*'], ['pods/attach'], ['create']),
      rule([''], ['pods/attach'], ['create']),
      false,
    ],
    [
      'does not let wildcards cover pods/portforward',
      everything,
      rule([''], ['pods/portforward'], ['create']),
      false,
    ],
    [
      'does not let wildcards cover serviceaccounts/token',
      everything,
      rule([''], ['serviceaccounts/token'], ['create']),
      false,
    ],
    ['does not let wildcards cover every Secret', everything, rule([''], ['secrets'], ['get']), false],
    ['lets wildcards cover named Secrets', everything, rule([''], ['secrets'], ['get'], ['orders-db']), true],
    [
      'covers every Secret when a policy names secrets literally',
      rule([''], ['secrets'], ['list']),
      rule([''], ['secrets'], ['list']),
      true,
    ],
    [
      'does not let a "*" verb cover creating pods',
      rule([''], ['pods'], ['*']),
      rule([''], ['pods'], ['create']),
      false,
    ],
    ['lets a "*" verb cover reading pods', rule([''], ['pods'], ['*']), rule([''], ['pods'], ['get']), true],
    [
      'does not let resources "*" cover creating deployments',
      rule(['apps'], ['*'], ['create']),
      rule(['apps'], ['deployments'], ['create']),
      false,
    ],
    [
      'does not let wildcards cover creating cronjobs',
      everything,
      rule(['batch'], ['cronjobs'], ['create']),
      false,
    ],
    [
      'covers creating jobs when a policy names it literally',
      rule(['batch'], ['jobs'], ['create']),
      rule(['batch'], ['jobs'], ['create']),
      true,
    ],
    [
      'does not let a "*" verb cover writing roles',
      rule(['rbac.authorization.k8s.io'], ['roles'], ['*']),
      rule(['rbac.authorization.k8s.io'], ['roles'], ['patch']),
      false,
    ],
    [
      'does not let resources "*" cover deleting rolebindings',
      rule(['rbac.authorization.k8s.io'], ['*'], ['delete']),
      rule(['rbac.authorization.k8s.io'], ['rolebindings'], ['delete']),
      false,
    ],
    [
      'lets wildcards cover reading roles',
      everything,
      rule(['rbac.authorization.k8s.io'], ['roles'], ['list']),
      true,
    ],
    [
      "does not let a policy author's wildcard give a tenant pods/ephemeralcontainers",
      everything,
      rule([''], ['pods/ephemeralcontainers'], ['patch'], ['etl-pod']),
      false,
    ],
    [
      'does not let a "*" verb cover patching a Deployment',
      rule(['apps'], ['deployments'], ['*']),
      rule(['apps'], ['deployments'], ['patch']),
      false,
    ],
    ['does not let wildcards cover pods/proxy', everything, rule([''], ['pods/proxy'], ['get']), false],
    [
      'covers patching pods when a policy names it literally',
      rule([''], ['pods'], ['patch']),
      rule([''], ['pods'], ['patch'], ['etl-pod']),
      true,
    ],
    ['does not let wildcards cover namespaces', everything, rule([''], ['namespaces'], ['get']), false],
    [
      "does not let wildcards cover hourglass's own API group",
      everything,
      rule(['hourglass.dev'], ['accessrequests'], ['get']),
      false,
    ],
    [
      'covers a "*" verb in a request only with a literal "*" verb',
      rule([''], ['configmaps'], ['*']),
      rule([''], ['configmaps'], ['*']),
      true,
    ],
    [
      'does not cover a "*" verb in a request with the verbs listed',
      rule([''], ['configmaps'], ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']),
      rule([''], ['configmaps'], ['*']),
      false,
    ],
    [
      'covers a "*" group in a request with a literal "*" group',
      rule(['*'], ['configmaps'], ['get']),
      rule(['*'], ['configmaps'], ['get']),
      true,
    ],
    [
      'does not let resources "*" cover a "*/scale" wildcard in a request',
      rule([''], ['*'], ['get']),
      rule([''], ['*/scale'], ['get']),
      false,
    ],
  ];
  for (const [name, allowed, requested, expected] of cases) {
    it(name, () => expect(ruleCovers(allowed, requested)).to.equal(expected));
  }
});

describe('creating workloads', () => {
  const workloads: [string, string][] = [
    ['', 'pods'],
    ['', 'replicationcontrollers'],
    ['apps', 'deployments'],
    ['apps', 'replicasets'],
    ['apps', 'statefulsets'],
    ['apps', 'daemonsets'],
    ['batch', 'jobs'],
    ['batch', 'cronjobs'],
  ];
  for (const [apiGroup, resource] of workloads) {
    it(`does not let wildcards cover creating ${resource}`, () =>
      expect(ruleCovers(rule(['*'], ['*'], ['*']), rule([apiGroup], [resource], ['create']))).to.equal(
        false,
      ));
  }
});

describe('firstUncoveredAccess', () => {
  it('covers each combination by some allowed rule, as RBAC escalation checks do', () => {
    const allowed = [rule([''], ['configmaps'], ['get']), rule([''], ['pods'], ['list'])];
    const requested = rule([''], ['configmaps', 'pods'], ['get']);
    expect(firstUncoveredAccess(allowed, requested)).to.deep.equal({
      access: { apiGroup: '', resource: 'pods', verb: 'get', resourceNames: [] },
    });
    expect(firstUncoveredAccess([...allowed, rule([''], ['pods'], ['get'])], requested)).to.equal(undefined);
  });

  it('unites the names of several allowed rules for one combination', () => {
    const allowed = [rule([''], ['configmaps'], ['get'], ['a']), rule([''], ['configmaps'], ['get'], ['b'])];
    expect(firstUncoveredAccess(allowed, rule([''], ['configmaps'], ['get'], ['a', 'b']))).to.equal(
      undefined,
    );
    expect(firstUncoveredAccess(allowed, rule([''], ['configmaps'], ['get'], ['a', 'c']))).to.include({
      resourceName: 'c',
    });
  });

  it('says why an uncovered access is sensitive', () => {
    const uncovered = firstUncoveredAccess([rule(['*'], ['*'], ['*'])], rule([''], ['pods'], ['create']));
    expect(uncovered?.sensitivity).to.equal('it creates workloads');
  });
});
