import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { AccessRequestSpec } from '../../../src/api/types.ts';
import type { Requester } from '../../../src/policy/cel.ts';
import { decide, type Decision, type DecisionInput } from '../../../src/policy/decide.ts';
import {
  boundPod,
  POD_NAME_EXTRA,
  POD_UID_EXTRA,
  requesterPodOf,
  requesterRefusal,
  type Requesters,
} from '../../../src/policy/requesters.ts';
import {
  accessPolicy,
  accessRequest,
  clusterAccessPolicy,
  decisionInput,
  SELF_REQUESTER,
  serviceAccountToken,
  SUBJECT_POD_UID,
} from './fixtures.ts';

// spec.requester is recorded by the admission webhook from the authenticated caller; the check
// trusts it as given. These cases show what it makes of each shape the webhook can record, and
// that values a forger could write without the API server's help (a pod name, a UID that is not
// the subject's) do not help.

const JOB_UID = 'etl-job-uid';
const jobPod = { name: 'etl-abc', uid: 'etl-abc-uid' };
const jobPodToken = serviceAccountToken('batch', 'etl', jobPod);
const JOB_OWNER = { apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: JOB_UID };
const JOB_CONTROLLER_LABELS = {
  'batch.kubernetes.io/controller-uid': JOB_UID,
  'batch.kubernetes.io/job-name': 'etl',
  'controller-uid': JOB_UID,
  'job-name': 'etl',
};

/** Pod "etl-abc" as the Job controller creates it for Job "etl" (as kube-controller-manager 1.37 does), with changes. */
function jobControllerPod(
  changes: { labels?: Record<string, string>; owners?: object[]; serviceAccountName?: string } = {},
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...jobPod,
      namespace: 'batch',
      labels: changes.labels ?? JOB_CONTROLLER_LABELS,
      ownerReferences: (changes.owners ?? [
        { ...JOB_OWNER, controller: true, blockOwnerDeletion: true },
      ]) as never,
    },
    spec: {
      serviceAccountName: changes.serviceAccountName ?? 'etl',
      containers: [{ name: 'main', image: 'etl:1' }],
    },
  };
}

/** What requesters.self sees of a pod: the reconciler's view of it. */
const seen = (pod: V1Pod) => requesterPodOf(pod);
const user = (username: string, groups: string[] = ['system:authenticated']): Requester => ({
  username,
  uid: `${username}-uid`,
  groups,
});

/** A request for the subject pod "etl-7xk2p", asked by this requester (none when undefined). */
function askedBy(
  requester: Requester | undefined,
  spec: Partial<AccessRequestSpec> = {},
): Partial<DecisionInput> {
  return { request: accessRequest({ ...spec, requester }) };
}

/** A request for the Job "etl", asked by this requester, whose token's pod the cache knows as `requesterPod`. */
function forJob(requester: Requester, requesterPod?: DecisionInput['requesterPod']): Partial<DecisionInput> {
  return {
    request: accessRequest({ subject: { jobName: 'etl' }, requester }),
    subjectUid: JOB_UID,
    ...(requesterPod ? { requesterPod } : {}),
  };
}

describe('requesterRefusal', () => {
  const self: Requesters = { self: true };
  const cases: [string, Requesters | undefined, Partial<DecisionInput>, string | undefined][] = [
    ['allows the subject pod asking with its own pod-bound token', self, {}, undefined],
    [
      'refuses a plain token of the subject pod\'s service account: any workload of "etl" could hold one',
      self,
      askedBy(serviceAccountToken('batch', 'etl')),
      'requester "system:serviceaccount:batch:etl" is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p" (a token bound to no pod is not enough)',
    ],
    [
      'refuses a token bound to another pod of the same service account',
      self,
      askedBy(serviceAccountToken('batch', 'etl', { name: 'etl-abc', uid: 'etl-abc-uid' })),
      'requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p"',
    ],
    [
      "refuses a token bound to an earlier pod of the same name: its UID is not the subject's",
      self,
      askedBy(serviceAccountToken('batch', 'etl', { name: 'etl-7xk2p', uid: 'old-uid' })),
      'requester "system:serviceaccount:batch:etl" (pod etl-7xk2p) is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p" (UID etl-7xk2p-uid), not to pod UID old-uid',
    ],
    [
      'refuses a pod-bound token of another service account, even one naming the subject pod',
      self,
      askedBy(serviceAccountToken('batch', 'loader', { name: 'etl-7xk2p', uid: SUBJECT_POD_UID })),
      'requester "system:serviceaccount:batch:loader" (pod etl-7xk2p) is not allowed: requesters.self needs a token of service account "etl" bound to the subject pod "etl-7xk2p"',
    ],
    [
      'refuses a token of a same-named service account in another namespace',
      self,
      askedBy(serviceAccountToken('web', 'etl', { name: 'etl-7xk2p', uid: SUBJECT_POD_UID })),
      'requester "system:serviceaccount:web:etl" (pod etl-7xk2p) is not allowed: requesters.self needs a token of service account "etl" bound to the subject pod "etl-7xk2p"',
    ],
    [
      'refuses a user for self: self is for the workload alone',
      self,
      askedBy(user('alice')),
      'requester "alice" is not allowed: requesters.self needs a token of service account "etl" bound to the subject pod "etl-7xk2p"',
    ],
    [
      "refuses self while the subject's UID is not known, rather than trust a pod name",
      self,
      { subjectUid: undefined },
      'requester "system:serviceaccount:batch:etl" (pod etl-7xk2p) is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p", and the subject\'s UID is not known',
    ],
    [
      'allows a pod the Job controller created for the subject Job asking for the Job',
      self,
      forJob(jobPodToken, seen(jobControllerPod())),
      undefined,
    ],
    [
      'allows a Job pod carrying only the current labels, without the legacy ones',
      self,
      forJob(
        jobPodToken,
        seen(
          jobControllerPod({
            labels: { 'batch.kubernetes.io/controller-uid': JOB_UID, 'batch.kubernetes.io/job-name': 'etl' },
          }),
        ),
      ),
      undefined,
    ],
    [
      'refuses a pod of another Job asking for the subject Job',
      self,
      forJob(
        jobPodToken,
        seen(jobControllerPod({ owners: [{ ...JOB_OWNER, uid: 'other-job-uid', controller: true }] })),
      ),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" is not controlled by the Job (UID ${JOB_UID}): no owner reference to it with controller: true`,
    ],
    [
      'refuses a pod no Job owns asking for a Job',
      self,
      forJob(jobPodToken, seen(jobControllerPod({ labels: {}, owners: [] }))),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" is not controlled by the Job (UID ${JOB_UID}): no owner reference to it with controller: true`,
    ],
    [
      'refuses a workload that merely lists the Job among its owners, without controller: true',
      self,
      forJob(
        jobPodToken,
        seen(
          jobControllerPod({
            owners: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'rs-uid', controller: true },
              { ...JOB_OWNER },
            ],
          }),
        ),
      ),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" is not controlled by the Job (UID ${JOB_UID}): no owner reference to it with controller: true`,
    ],
    [
      'refuses a pod listing the Job with controller: false',
      self,
      forJob(jobPodToken, seen(jobControllerPod({ owners: [{ ...JOB_OWNER, controller: false }] }))),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" is not controlled by the Job (UID ${JOB_UID}): no owner reference to it with controller: true`,
    ],
    [
      'refuses a pod controlled by a lookalike Job of another API group',
      self,
      forJob(
        jobPodToken,
        seen(
          jobControllerPod({ owners: [{ ...JOB_OWNER, apiVersion: 'example.com/v1', controller: true }] }),
        ),
      ),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" is not controlled by the Job (UID ${JOB_UID}): no owner reference to it with controller: true`,
    ],
    [
      "refuses a Job-controlled pod without the Job controller's labels",
      self,
      forJob(jobPodToken, seen(jobControllerPod({ labels: { app: 'etl' } }))),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" does not carry the Job controller's label batch.kubernetes.io/controller-uid=${JOB_UID}`,
    ],
    [
      'refuses a Job-controlled pod whose legacy controller-uid label names another Job',
      self,
      forJob(
        jobPodToken,
        seen(jobControllerPod({ labels: { ...JOB_CONTROLLER_LABELS, 'controller-uid': 'other-job-uid' } })),
      ),
      `requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" does not carry the Job controller's label controller-uid=${JOB_UID}`,
    ],
    [
      'refuses a Job-controlled pod whose job-name label names another Job',
      self,
      forJob(
        jobPodToken,
        seen(
          jobControllerPod({ labels: { ...JOB_CONTROLLER_LABELS, 'batch.kubernetes.io/job-name': 'other' } }),
        ),
      ),
      'requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" does not carry the Job controller\'s label batch.kubernetes.io/job-name=etl',
    ],
    [
      "refuses a Job-controlled pod running as another service account than the Job's",
      self,
      forJob(jobPodToken, seen(jobControllerPod({ serviceAccountName: 'loader' }))),
      'requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl": pod "etl-abc" runs as service account "loader", not the Job\'s "etl"',
    ],
    [
      "refuses a Job's self while the requester's pod is not known",
      self,
      forJob(jobPodToken),
      'requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl", and pod "etl-abc" (UID etl-abc-uid) is not known',
    ],
    [
      "refuses a Job's self when the known pod of that name is not the token's pod (another UID)",
      self,
      forJob(jobPodToken, { ...seen(jobControllerPod())!, uid: 'recreated-uid' }),
      'requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl", and pod "etl-abc" (UID etl-abc-uid) is not known',
    ],
    [
      "refuses a plain token of the Job's service account",
      self,
      forJob(serviceAccountToken('batch', 'etl'), seen(jobControllerPod())),
      'requester "system:serviceaccount:batch:etl" is not allowed: requesters.self needs a token bound to a pod of the subject Job "etl" (a token bound to no pod is not enough)',
    ],
    [
      'refuses a pod-name extra without the pod UID: only the API server binds a token to a pod',
      self,
      askedBy({ ...serviceAccountToken('batch', 'etl'), extra: { [POD_NAME_EXTRA]: ['etl-7xk2p'] } }),
      'requester "system:serviceaccount:batch:etl" is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p" (a token bound to no pod is not enough)',
    ],
    [
      'refuses extras that name more than one pod',
      self,
      askedBy({
        ...serviceAccountToken('batch', 'etl'),
        extra: {
          [POD_NAME_EXTRA]: ['etl-abc', 'etl-7xk2p'],
          [POD_UID_EXTRA]: ['etl-abc-uid', SUBJECT_POD_UID],
        },
      }),
      'requester "system:serviceaccount:batch:etl" is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p" (a token bound to no pod is not enough)',
    ],
    ['allows a listed user', { users: ['alice'] }, askedBy(user('alice')), undefined],
    [
      'refuses an unlisted user, naming what the policy accepts',
      { users: ['alice'] },
      askedBy(user('bob')),
      'requester "bob" is not allowed: requesters.users accepts "alice"',
    ],
    [
      'matches user names exactly',
      { users: ['alice'] },
      askedBy(user('Alice')),
      'requester "Alice" is not allowed: requesters.users accepts "alice"',
    ],
    [
      'allows a requester in one listed group',
      { groups: ['sre', 'data-eng'] },
      askedBy(user('bob', ['data-eng'])),
      undefined,
    ],
    [
      'refuses a requester in no listed group',
      { groups: ['sre'] },
      askedBy(user('bob', ['data-eng', 'system:authenticated'])),
      'requester "bob" is not allowed: requesters.groups accepts "sre"',
    ],
    [
      'allows a listed service account with a plain token',
      { serviceAccounts: ['ci:deployer'] },
      askedBy(serviceAccountToken('ci', 'deployer')),
      undefined,
    ],
    [
      'allows a listed service account with a pod-bound token',
      { serviceAccounts: ['ci:deployer'] },
      askedBy(serviceAccountToken('ci', 'deployer', { name: 'deployer-1', uid: 'deployer-1-uid' })),
      undefined,
    ],
    [
      'refuses a same-named service account of another namespace',
      { serviceAccounts: ['ci:deployer'] },
      askedBy(serviceAccountToken('batch', 'deployer')),
      'requester "system:serviceaccount:batch:deployer" is not allowed: requesters.serviceAccounts accepts "ci:deployer"',
    ],
    [
      'does not take a user named "ns:name" for that service account',
      { serviceAccounts: ['ci:deployer'] },
      askedBy(user('ci:deployer')),
      'requester "ci:deployer" is not allowed: requesters.serviceAccounts accepts "ci:deployer"',
    ],
    [
      'refuses everyone, even the subject pod itself, under empty requesters',
      {},
      {},
      'requester "system:serviceaccount:batch:etl" (pod etl-7xk2p) is not allowed: the policy accepts no requester (requesters is empty)',
    ],
    [
      'refuses everyone when requesters is not set',
      undefined,
      askedBy(user('alice')),
      'requester "alice" is not allowed: the policy accepts no requester (requesters is empty)',
    ],
    [
      'refuses everyone under requesters with self false and empty lists',
      { self: false, users: [], groups: [], serviceAccounts: [] },
      {},
      'requester "system:serviceaccount:batch:etl" (pod etl-7xk2p) is not allowed: the policy accepts no requester (requesters is empty)',
    ],
    [
      'allows when any one rule matches',
      { self: true, users: ['alice'], groups: ['system:serviceaccounts:ci'] },
      askedBy(serviceAccountToken('ci', 'deployer')),
      undefined,
    ],
    [
      'names every rule that did not match',
      { self: true, users: ['alice'], groups: ['sre'], serviceAccounts: ['ci:deployer'] },
      askedBy(user('bob', ['data-eng'])),
      'requester "bob" is not allowed: requesters.self needs a token of service account "etl" bound to the subject pod "etl-7xk2p"; requesters.users accepts "alice"; requesters.groups accepts "sre"; requesters.serviceAccounts accepts "ci:deployer"',
    ],
    [
      'names at most three values of a rule',
      { users: ['alice', 'carol', 'dave', 'erin', 'frank'] },
      askedBy(user('bob')),
      'requester "bob" is not allowed: requesters.users accepts "alice", "carol", "dave" and 2 more',
    ],
    [
      'matches nothing for a requester without a user name',
      { users: ['alice'], serviceAccounts: ['ci:deployer'] },
      askedBy({ groups: [] }),
      'requester without a username is not allowed: requesters.users accepts "alice"; requesters.serviceAccounts accepts "ci:deployer"',
    ],
    [
      'refuses a request without spec.requester by default',
      { self: true, users: ['alice'] },
      askedBy(undefined),
      'the request has no spec.requester (the admission webhook records who asked), so no requester rule can match',
    ],
    [
      'refuses a request without spec.requester when requireRequester is true',
      self,
      { ...askedBy(undefined), requireRequester: true },
      'the request has no spec.requester (the admission webhook records who asked), so no requester rule can match',
    ],
    [
      'lets a request without spec.requester through when requireRequester is false, even with empty requesters',
      undefined,
      { ...askedBy(undefined), requireRequester: false },
      undefined,
    ],
    [
      'still checks a request that has spec.requester when requireRequester is false',
      { users: ['alice'] },
      { ...askedBy(user('bob')), requireRequester: false },
      'requester "bob" is not allowed: requesters.users accepts "alice"',
    ],
    [
      'reads spec.requester only, not a requester given to CEL',
      { users: ['alice'] },
      { ...askedBy(user('bob')), celContext: { requester: user('alice'), now: new Date(0) } },
      'requester "bob" is not allowed: requesters.users accepts "alice"',
    ],
  ];
  for (const [name, requesters, overrides, expected] of cases) {
    it(name, () => expect(requesterRefusal(decisionInput(overrides), requesters)).to.equal(expected));
  }
});

describe('boundPod', () => {
  it("reads the pod of a pod-bound token from the API server's extras", () => {
    expect(boundPod(SELF_REQUESTER)).to.deep.equal({ name: 'etl-7xk2p', uid: SUBJECT_POD_UID });
  });

  it('finds no pod for a plain token or no requester', () => {
    expect(boundPod(serviceAccountToken('batch', 'etl'))).to.equal(undefined);
    expect(boundPod(undefined)).to.equal(undefined);
  });
});

describe('decide with requesters', () => {
  const cases: [string, Partial<DecisionInput>, Partial<Decision>][] = [
    [
      'allows the subject pod asking for itself under requesters.self',
      {},
      { allowed: true, message: 'allowed by AccessPolicy/batch-readers' },
    ],
    [
      'denies a token of another pod, naming the policy, the requester and what self needs',
      askedBy(serviceAccountToken('batch', 'etl', { name: 'etl-abc', uid: 'etl-abc-uid' })),
      {
        allowed: false,
        reason: 'NoPolicyAllows',
        message:
          'denied: AccessPolicy/batch-readers: requester "system:serviceaccount:batch:etl" (pod etl-abc) is not allowed: requesters.self needs a token bound to the subject pod "etl-7xk2p"',
      },
    ],
    [
      'allows a pod the Job controller created for the subject Job asking for the Job',
      forJob(jobPodToken, seen(jobControllerPod())),
      { allowed: true },
    ],
    [
      'denies under a policy without requesters',
      { policies: [accessPolicy('batch-readers', { requesters: {} })] },
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: requester "system:serviceaccount:batch:etl" (pod etl-7xk2p) is not allowed: the policy accepts no requester (requesters is empty)',
      },
    ],
    [
      'checks the subjects before the requester',
      {
        ...askedBy(user('bob')),
        policies: [accessPolicy('batch-readers', { subjects: { serviceAccounts: ['loader'] } })],
      },
      {
        allowed: false,
        message: 'denied: AccessPolicy/batch-readers: service account "etl" is not a subject',
      },
    ],
    [
      'checks the requester before the permissions',
      askedBy(user('bob'), { permissions: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }] }),
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: requester "bob" is not allowed: requesters.self needs a token of service account "etl" bound to the subject pod "etl-7xk2p"',
      },
    ],
    [
      'allows by a later policy that accepts the requester',
      {
        ...askedBy(user('alice', ['sre'])),
        policies: [
          accessPolicy('batch-readers'),
          clusterAccessPolicy('sre-on-call', { requesters: { groups: ['sre'] } }),
        ],
      },
      { allowed: true, message: 'allowed by ClusterAccessPolicy/sre-on-call' },
    ],
    [
      'denies a request without spec.requester by default',
      askedBy(undefined),
      {
        allowed: false,
        message:
          'denied: AccessPolicy/batch-readers: the request has no spec.requester (the admission webhook records who asked), so no requester rule can match',
      },
    ],
    [
      'decides a request without spec.requester by the other checks when requireRequester is false',
      {
        ...askedBy(undefined, { ttl: '2h' }),
        policies: [accessPolicy('batch-readers', { requesters: {} })],
        requireRequester: false,
      },
      { allowed: false, message: 'denied: AccessPolicy/batch-readers: ttl 2h exceeds maxTTL 1h' },
    ],
    [
      'allows a request without spec.requester when requireRequester is false and the rest allows it',
      {
        ...askedBy(undefined),
        policies: [accessPolicy('batch-readers', { requesters: {} })],
        requireRequester: false,
      },
      { allowed: true, message: 'allowed by AccessPolicy/batch-readers' },
    ],
  ];
  for (const [name, overrides, expected] of cases) {
    it(name, () => expect(decide(decisionInput(overrides))).to.deep.include(expected));
  }
});

describe('requesterPodOf', () => {
  it("reads a pod's identity, service account, controller and labels", () => {
    expect(requesterPodOf(jobControllerPod())).to.deep.equal({
      ...jobPod,
      serviceAccountName: 'etl',
      controller: JOB_OWNER,
      labels: JOB_CONTROLLER_LABELS,
    });
  });

  it('takes the owner marked controller, not the first owner', () => {
    const pod = jobControllerPod({
      owners: [{ ...JOB_OWNER }, { ...JOB_OWNER, uid: 'second', controller: true }],
    });
    expect(requesterPodOf(pod)?.controller?.uid).to.equal('second');
  });

  it('gives no controller for a pod whose owners are none marked controller', () => {
    expect(requesterPodOf(jobControllerPod({ owners: [{ ...JOB_OWNER }] }))).not.to.have.property(
      'controller',
    );
  });

  it('describes nothing for a pod without a UID', () => {
    const pod = jobControllerPod();
    expect(requesterPodOf({ ...pod, metadata: { ...pod.metadata, uid: undefined } })).to.equal(undefined);
  });
});
