import { expect } from 'chai';
import { UsageError } from '../../../src/cli/errors.ts';
import { formatRule, parseRule } from '../../../src/cli/rules.ts';

describe('--rule parsing', () => {
  const cases: [string, string, object][] = [
    [
      'reads one named secret',
      'get secrets/orders-db',
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
    ],
    [
      'takes several verbs',
      'get,list secrets/orders-db',
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get', 'list'] },
    ],
    [
      'reads the API group after the first dot, as kubectl does',
      'get,watch deployments.apps/web',
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['web'], verbs: ['get', 'watch'] },
    ],
    [
      'keeps a dotted group whole',
      'get certificates.cert-manager.io',
      { apiGroups: ['cert-manager.io'], resources: ['certificates'], verbs: ['get'] },
    ],
    [
      'takes several names, and dots in names',
      'get configmaps/a.conf,b',
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['a.conf', 'b'], verbs: ['get'] },
    ],
    [
      'leaves resourceNames out without names',
      'list pods',
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ],
    [
      'accepts a PolicyRule as JSON, for subresources',
      ' {"apiGroups":[""],"resources":["pods/log"],"verbs":["get"]} ',
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    ],
  ];
  for (const [what, text, rule] of cases) {
    it(`${what}: ${text.trim()}`, () => expect(parseRule(text)).to.deep.equal(rule));
  }

  const refusals: [string, string, RegExp][] = [
    ['a rule without a resource', 'get', /must be VERBS RESOURCE\[\.GROUP\]\[\/NAME\[,NAME\.\.\.\]\]/],
    ['a third field', 'get secrets/a b', /must be VERBS RESOURCE/],
    ['an upper-case verb', 'GET secrets', /"GET" is not a verb/],
    ['an empty verb', 'get,,list secrets', /"" is not a verb/],
    ['a wildcard name', 'get secrets/*', /"\*" is not an object name/],
    ['an empty name', 'get secrets/', /"" is not an object name/],
    [
      'a subresource in the short form',
      'get pods/web/log',
      /write subresources such as pods\/log as a JSON rule/,
    ],
    ['a bad resource', 'get Secrets', /"Secrets" is not a resource/],
    ['a bad group', 'get deployments.Apps', /"Apps" is not an API group/],
    ['broken JSON', '{"apiGroups":', /--rule is not valid JSON/],
    [
      'JSON without verbs',
      '{"apiGroups":[""],"resources":["pods"]}',
      /"verbs" must be a non-empty list of strings/,
    ],
    [
      'JSON with an unknown field',
      '{"apiGroups":[""],"resources":["pods"],"verbs":["get"],"nonResourceURLs":["/x"]}',
      /unknown field "nonResourceURLs"/,
    ],
    [
      'JSON with a wildcard name',
      '{"apiGroups":[""],"resources":["pods"],"verbs":["get"],"resourceNames":["a*"]}',
      /without "\*"/,
    ],
  ];
  for (const [what, text, message] of refusals) {
    it(`refuses ${what} as a usage error`, () => {
      expect(() => parseRule(text))
        .to.throw(UsageError, message)
        .with.property('exitCode', 2);
    });
  }

  it('formats a rule back in the short form where there is one', () => {
    for (const text of ['get,list secrets/orders-db', 'get,watch deployments.apps/web', 'list pods']) {
      expect(formatRule(parseRule(text))).to.equal(text);
    }
    const json = '{"apiGroups":[""],"resources":["pods/log"],"verbs":["get"]}';
    expect(formatRule(parseRule(json))).to.equal(json);
  });
});
