import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { ensureCrds, kubectl, kubectlOk, repoRoot, useNamespace } from '../support/cluster.ts';

type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const example = async (file: string): Promise<Manifest> =>
  parse(await readFile(path.join(repoRoot, 'examples', file), 'utf8'));

function withChange(manifest: Manifest, change: (m: Manifest) => void): Manifest {
  const copy = structuredClone(manifest);
  change(copy);
  return copy;
}

/** Each case: a sentence, the change to a valid manifest, and what the refusal must say. */
const invalidRequests: [string, (m: Manifest) => void, RegExp][] = [
  [
    'names both a pod and a Job',
    (m) => (m.spec.subject.jobName = 'etl'),
    /spec\.subject.*exactly one of subject\.podName or subject\.jobName/,
  ],
  [
    'names neither a pod nor a Job',
    (m) => (m.spec.subject = {}),
    /spec\.subject.*exactly one of subject\.podName or subject\.jobName/,
  ],
  ['has no purpose', (m) => delete m.spec.purpose, /spec\.purpose: Required value/],
  ['has a purpose of 513 characters', (m) => (m.spec.purpose = 'x'.repeat(513)), /spec\.purpose: Too long/],
  [
    'has a control character in its purpose',
    (m) => (m.spec.purpose = 'OPS-1 line\nbreak'),
    /spec\.purpose in body should match/,
  ],
  ['asks for a ttl of 5s', (m) => (m.spec.ttl = '5s'), /spec\.ttl.*ttl must be between 10s and 24h/],
  ['asks for a ttl of 25h', (m) => (m.spec.ttl = '25h'), /spec\.ttl.*ttl must be between 10s and 24h/],
  [
    'gives a ttl that is no Go duration',
    (m) => (m.spec.ttl = 'fifteen minutes'),
    /spec\.ttl in body should match/,
  ],
  [
    'asks for neither permissions nor a token',
    (m) => {
      delete m.spec.permissions;
      delete m.spec.token;
    },
    /spec.*at least one of permissions or token is required/,
  ],
  [
    'asks for nonResourceURLs',
    (m) => (m.spec.permissions[0].nonResourceURLs = ['/metrics']),
    /spec\.permissions\[0\].*nonResourceURLs cannot be granted/,
  ],
  [
    'uses "*" in resourceNames',
    (m) => (m.spec.permissions[0].resourceNames = ['*']),
    /spec\.permissions\[0\].*resourceNames must be literal names/,
  ],
  [
    'gives a rule without verbs',
    (m) => delete m.spec.permissions[0].verbs,
    /spec\.permissions\[0\]\.verbs: Required value/,
  ],
  [
    'asks for a token for two audiences',
    (m) => (m.spec.token.audience = ['a', 'b']),
    /spec\.token\.audience: Too many/,
  ],
  [
    'uses a wildcard in a token action',
    (m) => (m.spec.token.actions = ['orders:*']),
    /spec\.token\.actions\[0\] in body should match/,
  ],
  [
    'climbs out of its token target with ".."',
    (m) => (m.spec.token.target = 'postgres://orders-db/../users'),
    /spec\.token\.target.*must not contain "\.\."/,
  ],
  [
    'has whitespace in its token target',
    (m) => (m.spec.token.target = 'postgres://orders db'),
    /spec\.token\.target in body should match/,
  ],
  [
    'has a name of 64 characters',
    (m) => (m.metadata.name = 'a'.repeat(64)),
    /metadata\.name must be at most 63 characters/,
  ],
  [
    'names a pod with an invalid name',
    (m) => (m.spec.subject.podName = 'Etl_Pod'),
    /spec\.subject\.podName in body should match/,
  ],
];

const invalidPolicies: [string, (m: Manifest) => void, RegExp][] = [
  [
    'has a defaultTTL above its maxTTL',
    (m) => (m.spec.defaultTTL = '2h'),
    /defaultTTL must not exceed maxTTL/,
  ],
  [
    'has a maxTTL above its maxLifetime',
    (m) => {
      m.spec.maxTTL = '10h';
    },
    /maxTTL must not exceed maxLifetime/,
  ],
  [
    'is Manual without approvers',
    (m) => (m.spec.approval = { mode: 'Manual' }),
    /spec\.approval.*a Manual approval needs at least one approver/,
  ],
  [
    'has an unknown approval mode',
    (m) => (m.spec.approval = { mode: 'Sometimes' }),
    /spec\.approval\.mode: Unsupported value: "Sometimes"/,
  ],
  [
    'names a requester service account without its namespace',
    (m) => (m.spec.requesters.serviceAccounts = ['robot']),
    /spec\.requesters\.serviceAccounts\[0\] in body should match/,
  ],
  ['allows nothing', (m) => (m.spec.allow = {}), /spec.*allow needs permissions or token/],
  ['has no subjects', (m) => delete m.spec.subjects, /spec\.subjects: Required value/],
  [
    'has two conditions of the same name',
    (m) => m.spec.conditions.push({ ...m.spec.conditions[0] }),
    /spec\.conditions\[1\]: Duplicate value/,
  ],
];

describe('the CRDs', () => {
  const namespace = useNamespace('crds');
  const apply = (manifest: Manifest, ...flags: string[]) =>
    kubectl(['apply', ...flags, '-f', '-'], stringify(manifest));
  const inNamespace = (m: Manifest) => withChange(m, (c) => (c.metadata.namespace = namespace()));

  before(ensureCrds);

  it('accept the AccessRequest of the API contract and show it in printer columns', async () => {
    const request = inNamespace(await example('access-request.yaml'));
    const result = await apply(request);
    expect(result.code, result.stderr).to.equal(0);
    const table = await kubectlOk(['-n', namespace(), 'get', 'ar', 'etl-read-orders', '-o', 'wide']);
    expect(table.split('\n')[0]).to.match(/NAME\s+PHASE\s+SUBJECT\s+EXPIRES\s+AGE\s+REASON\s+POLICY/);
    const categories = await kubectlOk(['-n', namespace(), 'get', 'hourglass', '-o', 'name']);
    expect(categories).to.contain('accessrequest.hourglass.dev/etl-read-orders');
  });

  it('refuse a change of an AccessRequest spec', async () => {
    const request = inNamespace(await example('access-request.yaml'));
    await apply(request);
    const changed = withChange(request, (m) => (m.spec.ttl = '30m'));
    const result = await apply(changed);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/spec: Invalid value.*spec is immutable/);
  });

  it('accept the AccessPolicy example and apply its defaults', async () => {
    const policy = inNamespace(await example('access-policy.yaml'));
    delete policy.spec.maxRenewals;
    const result = await apply(policy);
    expect(result.code, result.stderr).to.equal(0);
    const stored = JSON.parse(
      await kubectlOk(['-n', namespace(), 'get', 'accesspolicy', 'batch-readers', '-o', 'json']),
    );
    expect(stored.spec.maxRenewals).to.equal(8);
    expect(stored.spec.approval).to.equal(undefined);
  });

  for (const [sentence, change, message] of invalidRequests) {
    it(`refuse an AccessRequest that ${sentence}`, async () => {
      const manifest = withChange(inNamespace(await example('access-request.yaml')), (m) => {
        m.metadata.name = `invalid-${invalidRequests.findIndex(([s]) => s === sentence)}`;
        change(m);
      });
      const result = await apply(manifest, '--dry-run=server');
      expect(result.code, 'the API server accepted it').to.not.equal(0);
      expect(result.stderr).to.match(message);
    });
  }

  for (const [sentence, change, message] of invalidPolicies) {
    it(`refuse an AccessPolicy that ${sentence}`, async () => {
      const manifest = withChange(inNamespace(await example('access-policy.yaml')), change);
      const result = await apply(manifest, '--dry-run=server');
      expect(result.code, 'the API server accepted it').to.not.equal(0);
      expect(result.stderr).to.match(message);
    });
  }

  it('refuse a ClusterAccessPolicy whose namespaceSelector has an unknown operator', async () => {
    const manifest = withChange(await example('access-policy.yaml'), (m) => {
      m.kind = 'ClusterAccessPolicy';
      m.metadata = { name: 'invalid-selector' };
      m.spec.namespaceSelector = { matchExpressions: [{ key: 'team', operator: 'Like' }] };
    });
    const result = await apply(manifest, '--dry-run=server');
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(
      /spec\.namespaceSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Like"/,
    );
  });
});
