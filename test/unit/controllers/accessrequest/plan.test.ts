import { expect } from 'chai';
import { annotations } from '../../../../src/api/types.ts';
import { plan, type Observed, type Plan } from '../../../../src/controllers/accessrequest/plan.ts';
import {
  allowed,
  at,
  condition,
  denied,
  EXPIRES_IN,
  GRANT_ID,
  grantedRequest,
  HOUR,
  intactObjects,
  iso,
  MINUTE,
  NOW,
  observe,
  pendingRequest,
  POD_UID,
  projectOnto,
  request,
  SECOND,
  terminalRequest,
  workload,
} from './fixtures.ts';

/** A case names only the parts of the plan it is about; `key: undefined` asserts a key is absent. */
type Expected = { action: Plan['action'] } & Record<string, unknown>;
interface Case {
  name: string;
  given: Observed;
  expected: Expected;
}

const renew = (value: string) => ({ [annotations.renew]: value });
const revoke = (note: string) => ({ [annotations.revoke]: note });
const manual = allowed({ approval: 'Manual', approvalTimeoutSeconds: 3600 });
const revocation = (reason: string) => ({ action: 'revoke', revocation: { reason } }) as const;
const waitUntilExpiry: Expected = { action: 'wait', requeueAfterMs: EXPIRES_IN };
const staysFinal: Expected = { action: 'wait', requeueAfterMs: undefined };

function check(cases: Case[]) {
  for (const { name, given, expected } of cases) {
    it(name, () => expect(projectOnto(plan(given), expected)).to.deep.equal(expected));
  }
}

describe('plan', () => {
  describe('a request being deleted', () => {
    check([
      {
        name: 'finalizes a deleted request with RequestDeleted when a grant is live',
        given: observe(grantedRequest({ deletionTimestamp: at(-SECOND) })),
        expected: { action: 'finalize', revocation: { reason: 'RequestDeleted' } },
      },
      {
        name: 'finalizes with RequestDeleted when the grant objects are already gone but the phase is Granted',
        given: observe(grantedRequest({ deletionTimestamp: at(-SECOND) }), { grantObjects: {} }),
        expected: { action: 'finalize', revocation: { reason: 'RequestDeleted' } },
      },
      {
        name: 'finalizes with RequestDeleted when an interrupted issuance recorded its intent',
        given: observe(
          pendingRequest({
            deletionTimestamp: at(-SECOND),
            status: { grant: { id: GRANT_ID, issuedAt: iso(-SECOND), expiresAt: iso(EXPIRES_IN) } },
          }),
        ),
        expected: { action: 'finalize', revocation: { reason: 'RequestDeleted' } },
      },
      {
        name: 'revokes with PolicyChanged when the policy that issued the grant was suspended',
        given: observe(grantedRequest(), { recordedPolicy: 'suspended' }),
        expected: { action: 'revoke', revocation: { reason: 'PolicyChanged' } },
      },
      {
        name: 'finalizes without a revocation when nothing was ever granted',
        given: observe(pendingRequest({ deletionTimestamp: at(-SECOND) })),
        expected: { action: 'finalize', revocation: undefined },
      },
      {
        name: 'finalizes a deleted terminal request without revoking it again',
        given: observe(terminalRequest('Expired', { deletionTimestamp: at(-SECOND) }), { grantObjects: {} }),
        expected: { action: 'finalize', revocation: undefined },
      },
      {
        name: 'lets deletion win over a revoke annotation',
        given: observe(grantedRequest({ deletionTimestamp: at(-SECOND), annotations: revoke('done') })),
        expected: { action: 'finalize', revocation: { reason: 'RequestDeleted' } },
      },
      {
        name: 'does nothing for a deleted request that no longer carries the finalizer',
        given: observe(grantedRequest({ deletionTimestamp: at(-SECOND), finalizers: [] })),
        expected: { action: 'wait', requeueAfterMs: undefined },
      },
    ]);
  });

  describe('a request in a terminal phase', () => {
    for (const phase of ['Denied', 'Expired', 'Revoked', 'Failed'] as const) {
      check([
        {
          name: `keeps a ${phase} request final whatever the subject, policy and annotations say`,
          given: observe(terminalRequest(phase, { annotations: renew('again') }), {
            grantObjects: {},
            decision: allowed(),
          }),
          expected: staysFinal,
        },
        {
          name: `cleans up grant objects left behind by a ${phase} request`,
          given: observe(terminalRequest(phase), { grantObjects: { roleBinding: { grantId: 'grant-1' } } }),
          expected: { action: 'cleanup' },
        },
      ]);
    }
    check([
      {
        name: 'keeps a Denied request final even after an approver approves',
        given: observe(
          terminalRequest('Denied', {
            status: { conditions: [condition('Approved', 'ApprovedByApprover')] },
          }),
          { grantObjects: {}, decision: manual },
        ),
        expected: staysFinal,
      },
      {
        name: 'deletes a final request once its retention has passed since it ended',
        given: observe(
          terminalRequest('Expired', {
            status: { revocation: { reason: 'Expired', at: iso(-2 * HOUR), message: 'x' } },
          }),
          { grantObjects: {}, retainForMs: HOUR },
        ),
        expected: { action: 'delete' },
      },
      {
        name: 'keeps a final request until its retention has passed, requeueing at that moment',
        given: observe(
          terminalRequest('Expired', {
            status: { revocation: { reason: 'Expired', at: iso(-10 * MINUTE), message: 'x' } },
          }),
          { grantObjects: {}, retainForMs: HOUR },
        ),
        expected: { action: 'wait', requeueAfterMs: 50 * MINUTE },
      },
      {
        name: 'keeps a terminal request final even without its finalizer',
        given: observe(terminalRequest('Revoked', { finalizers: [] }), { grantObjects: {} }),
        expected: staysFinal,
      },
    ]);
  });

  describe('a new request', () => {
    check([
      {
        name: 'asks to add the finalizer before anything else',
        given: observe(request({ finalizers: [] }), { workload: undefined, decision: denied() }),
        expected: { action: 'addFinalizer' },
      },
      {
        name: 'asks to add the finalizer back before acting on a Granted request',
        given: observe(grantedRequest({ finalizers: [], annotations: revoke('done') })),
        expected: { action: 'addFinalizer' },
      },
      {
        name: 'issues under an Automatic policy when the pod and its service account exist',
        given: observe(pendingRequest()),
        expected: { action: 'issue', decision: allowed() },
      },
      {
        name: 'issues to a Job subject',
        given: observe(pendingRequest({ subject: 'Job' })),
        expected: { action: 'issue', decision: allowed() },
      },
      {
        name: 'issues a request whose status is still empty',
        given: observe(request()),
        expected: { action: 'issue' },
      },
      {
        name: 'fails with SubjectNotFound when the pod does not exist',
        given: observe(pendingRequest(), { workload: undefined }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'fails with SubjectNotFound when the Job does not exist',
        given: observe(pendingRequest({ subject: 'Job' }), { workload: undefined }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'fails with SubjectNotFound when the pod was replaced since admission',
        given: observe(pendingRequest(), { workload: workload('Pod', { uid: 'pod-uid-2' }) }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: "fails with SubjectNotFound when the subject's service account does not exist",
        given: observe(pendingRequest(), { serviceAccountUid: undefined }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'fails with SubjectFinished when the pod has already finished',
        given: observe(pendingRequest(), { workload: workload('Pod', { finished: true }) }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectFinished' },
      },
      {
        name: 'waits for a subject not created yet, until the bound after the request was created',
        given: observe(request({ creationTimestamp: at(-MINUTE) }), {
          workload: undefined,
          awaitSubjectMs: 2 * MINUTE,
        }),
        expected: { action: 'awaitSubject', requeueAfterMs: MINUTE },
      },
      {
        name: 'fails with SubjectNotFound a subject not created within the bound',
        given: observe(request({ creationTimestamp: at(-2 * MINUTE) }), {
          workload: undefined,
          awaitSubjectMs: 2 * MINUTE,
        }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'does not wait for a subject that admission pinned and that is gone',
        given: observe(request({ annotations: { [annotations.subjectUid]: POD_UID } }), {
          workload: undefined,
          awaitSubjectMs: 2 * MINUTE,
        }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'does not wait for a subject whose UID an earlier reconcile recorded',
        given: observe(pendingRequest(), { workload: undefined, awaitSubjectMs: 2 * MINUTE }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'fails a subject that appears with another UID than admission pinned, whatever the bound',
        given: observe(request({ annotations: { [annotations.subjectUid]: POD_UID } }), {
          workload: workload('Pod', { uid: 'pod-uid-2' }),
          awaitSubjectMs: 2 * MINUTE,
        }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: 'fails on a missing subject before asking the policy',
        given: observe(pendingRequest(), { workload: undefined, decision: denied() }),
        expected: { action: 'conclude', phase: 'Failed', reason: 'SubjectNotFound' },
      },
      {
        name: "denies with the policy's message",
        given: observe(pendingRequest(), {
          decision: denied('denied: AccessPolicy/batch-readers: ttl above maxTTL'),
        }),
        expected: {
          action: 'conclude',
          phase: 'Denied',
          reason: 'NoPolicyAllows',
          message: 'denied: AccessPolicy/batch-readers: ttl above maxTTL',
        },
      },
      {
        name: "denies with the decision's own reason",
        given: observe(pendingRequest(), {
          decision: { allowed: false, reason: 'NeverGranted', message: 'escalate is never granted' },
        }),
        expected: {
          action: 'conclude',
          phase: 'Denied',
          reason: 'NeverGranted',
          message: 'escalate is never granted',
        },
      },
    ]);
  });

  describe('a request under a Manual policy', () => {
    check([
      {
        name: 'waits for approval under a Manual policy and requeues at the timeout',
        given: observe(pendingRequest({ creationTimestamp: at(-5 * MINUTE) }), { decision: manual }),
        expected: { action: 'awaitApproval', decision: manual, requeueAfterMs: 55 * MINUTE },
      },
      {
        name: 'keeps awaiting approval until the timeout',
        given: observe(pendingRequest({ phase: 'AwaitingApproval', creationTimestamp: at(-59 * MINUTE) }), {
          decision: manual,
        }),
        expected: { action: 'awaitApproval', requeueAfterMs: MINUTE },
      },
      {
        name: 'denies with ApprovalTimeout after the approval timeout',
        given: observe(pendingRequest({ phase: 'AwaitingApproval', creationTimestamp: at(-2 * HOUR) }), {
          decision: manual,
        }),
        expected: { action: 'conclude', phase: 'Denied', reason: 'ApprovalTimeout' },
      },
      {
        name: 'denies with ApprovalTimeout at the very instant the timeout is reached',
        given: observe(pendingRequest({ phase: 'AwaitingApproval', creationTimestamp: at(-HOUR) }), {
          decision: manual,
        }),
        expected: { action: 'conclude', phase: 'Denied', reason: 'ApprovalTimeout' },
      },
      {
        name: 'issues once an approver approved',
        given: observe(
          pendingRequest({
            phase: 'AwaitingApproval',
            status: { conditions: [condition('Approved', 'ApprovedByApprover')] },
          }),
          { decision: manual },
        ),
        expected: { action: 'issue', decision: manual },
      },
      {
        name: 'issues an approved request even when the approval timeout has passed since',
        given: observe(
          pendingRequest({
            phase: 'AwaitingApproval',
            creationTimestamp: at(-2 * HOUR),
            status: { conditions: [condition('Approved', 'ApprovedByApprover')] },
          }),
          { decision: manual },
        ),
        expected: { action: 'issue' },
      },
      {
        name: "denies with the approver's reason and message when an approver denied",
        given: observe(
          pendingRequest({
            phase: 'AwaitingApproval',
            status: { conditions: [condition('Denied', 'NotJustified')] },
          }),
          { decision: manual },
        ),
        expected: {
          action: 'conclude',
          phase: 'Denied',
          reason: 'NotJustified',
          message: 'Denied: NotJustified',
        },
      },
      {
        name: 'keeps an approver denial even when the policy has become Automatic since',
        given: observe(
          pendingRequest({
            phase: 'AwaitingApproval',
            status: { conditions: [condition('Denied', 'NotJustified')] },
          }),
          { decision: allowed({ approval: 'Automatic' }) },
        ),
        expected: { action: 'conclude', phase: 'Denied', reason: 'NotJustified' },
      },
      {
        name: "denies an approved request with the policy's message when no policy allows it any more",
        given: observe(
          pendingRequest({
            phase: 'AwaitingApproval',
            status: { conditions: [condition('Approved', 'ApprovedByApprover')] },
          }),
          { decision: denied('denied: AccessPolicy/batch-readers: suspended') },
        ),
        expected: {
          action: 'conclude',
          phase: 'Denied',
          reason: 'NoPolicyAllows',
          message: 'denied: AccessPolicy/batch-readers: suspended',
        },
      },
    ]);
  });

  describe('a Granted request', () => {
    check([
      {
        name: 'waits until expiry when the grant is intact (requeueAfterMs = expiresAt - now)',
        given: observe(grantedRequest()),
        expected: waitUntilExpiry,
      },
      {
        name: 'waits until the exact expiry of a grant that ends in 1.5s',
        given: observe(grantedRequest({ status: { grant: { id: 'grant-1', expiresAt: iso(1500) } } })),
        expected: { action: 'wait', requeueAfterMs: 1500 },
      },
      {
        name: 'repairs when the RoleBinding is missing',
        given: observe(grantedRequest(), { grantObjects: { ...intactObjects(), roleBinding: undefined } }),
        expected: { action: 'repair', requeueAfterMs: EXPIRES_IN },
      },
      {
        name: 'repairs when the Secret is missing',
        given: observe(grantedRequest(), { grantObjects: { ...intactObjects(), secret: undefined } }),
        expected: { action: 'repair', requeueAfterMs: EXPIRES_IN },
      },
      {
        name: 'repairs when the Role still carries the previous grant id',
        given: observe(grantedRequest(), {
          grantObjects: { ...intactObjects(), role: { grantId: 'grant-0' } },
        }),
        expected: { action: 'repair', requeueAfterMs: EXPIRES_IN },
      },
      {
        name: 'revokes with Expired once expiresAt has passed',
        given: observe(grantedRequest({ status: { grant: { id: 'grant-1', expiresAt: iso(-SECOND) } } })),
        expected: revocation('Expired'),
      },
      {
        name: 'revokes with Expired at the very instant expiresAt is reached',
        given: observe(
          grantedRequest({ status: { grant: { id: 'grant-1', expiresAt: NOW.toISOString() } } }),
        ),
        expected: revocation('Expired'),
      },
      {
        name: 'revokes with PodDeleted when the pod UID changed',
        given: observe(grantedRequest(), { workload: workload('Pod', { uid: 'pod-uid-2' }) }),
        expected: revocation('PodDeleted'),
      },
      {
        name: 'revokes with PodDeleted when the pod is gone',
        given: observe(grantedRequest(), { workload: undefined }),
        expected: revocation('PodDeleted'),
      },
      {
        name: 'revokes with PodFinished when the pod finished',
        given: observe(grantedRequest(), { workload: workload('Pod', { finished: true }) }),
        expected: revocation('PodFinished'),
      },
      {
        name: 'revokes with JobDeleted when the Job is gone',
        given: observe(grantedRequest({ subject: 'Job' }), { workload: undefined }),
        expected: revocation('JobDeleted'),
      },
      {
        name: 'revokes with JobDeleted when the Job UID changed',
        given: observe(grantedRequest({ subject: 'Job' }), {
          workload: workload('Job', { uid: 'job-uid-2' }),
        }),
        expected: revocation('JobDeleted'),
      },
      {
        name: 'revokes with JobFinished when the Job is Complete or Failed',
        given: observe(grantedRequest({ subject: 'Job' }), { workload: workload('Job', { finished: true }) }),
        expected: revocation('JobFinished'),
      },
      {
        name: 'revokes with ServiceAccountChanged when the service account was recreated (its UID changed)',
        given: observe(grantedRequest(), { serviceAccountUid: 'sa-uid-2' }),
        expected: revocation('ServiceAccountChanged'),
      },
      {
        name: 'revokes with ServiceAccountChanged when the service account was deleted',
        given: observe(grantedRequest(), { serviceAccountUid: undefined }),
        expected: revocation('ServiceAccountChanged'),
      },
      {
        name: 'revokes with ServiceAccountChanged when the Job now runs as another service account',
        given: observe(grantedRequest({ subject: 'Job' }), {
          workload: workload('Job', { serviceAccountName: 'other' }),
        }),
        expected: revocation('ServiceAccountChanged'),
      },
      {
        name: 'revokes with PolicyChanged when the recorded policy changed and no policy allows',
        given: observe(grantedRequest(), { decision: denied(), recordedPolicy: 'changed' }),
        expected: revocation('PolicyChanged'),
      },
      {
        name: 'revokes with PolicyChanged when the recorded policy is gone and no policy allows',
        given: observe(grantedRequest(), { decision: denied(), recordedPolicy: 'gone' }),
        expected: revocation('PolicyChanged'),
      },
      {
        name: 'revokes with ContextChanged when the policy is unchanged but no longer allows',
        given: observe(grantedRequest(), { decision: denied(), recordedPolicy: 'unchanged' }),
        expected: revocation('ContextChanged'),
      },
      {
        name: 'keeps the grant when the recorded policy changed but still allows',
        given: observe(grantedRequest(), { recordedPolicy: 'changed' }),
        expected: waitUntilExpiry,
      },
      {
        name: 'revokes with Manual, quoting the revoke annotation',
        given: observe(grantedRequest({ annotations: revoke('task done early') })),
        expected: {
          action: 'revoke',
          revocation: { reason: 'Manual', message: 'Revoked on request: task done early' },
        },
      },
      {
        name: 'revokes with Manual for an empty revoke annotation',
        given: observe(grantedRequest({ annotations: revoke('') })),
        expected: revocation('Manual'),
      },
      {
        name: 'lets a revoke annotation win over a pending renewal',
        given: observe(grantedRequest({ annotations: { ...renew('r1'), ...revoke('stop') } })),
        expected: revocation('Manual'),
      },
      {
        name: 'lets a revoke annotation win over a missing pod',
        given: observe(grantedRequest({ annotations: revoke('stop') }), { workload: undefined }),
        expected: revocation('Manual'),
      },
      {
        name: 'revokes with Expired instead of renewing a grant that has already expired',
        given: observe(
          grantedRequest({
            annotations: renew('r1'),
            status: { grant: { id: 'grant-1', expiresAt: iso(-SECOND) } },
          }),
        ),
        expected: revocation('Expired'),
      },
      {
        name: 'revokes with ContextChanged instead of renewing when no policy allows any more',
        given: observe(grantedRequest({ annotations: renew('r1') }), { decision: denied() }),
        expected: revocation('ContextChanged'),
      },
    ]);
  });

  describe('a renewal', () => {
    check([
      {
        name: 'renews for a new renew value',
        given: observe(grantedRequest({ annotations: renew('r1') })),
        expected: { action: 'renew', renewValue: 'r1', decision: allowed() },
      },
      {
        name: 'renews again for a value other than the one last honoured',
        given: observe(
          grantedRequest({ annotations: renew('r2'), status: { lastRenewal: 'r1', renewals: 1 } }),
        ),
        expected: { action: 'renew', renewValue: 'r2' },
      },
      {
        name: 'does not renew again for the value last honoured',
        given: observe(
          grantedRequest({ annotations: renew('r1'), status: { lastRenewal: 'r1', renewals: 1 } }),
        ),
        expected: waitUntilExpiry,
      },
      {
        name: 'renews up to maxRenewals',
        given: observe(
          grantedRequest({ annotations: renew('r8'), status: { lastRenewal: 'r7', renewals: 7 } }),
          {
            decision: allowed({ maxRenewals: 8 }),
          },
        ),
        expected: { action: 'renew', renewValue: 'r8' },
      },
      {
        name: 'refuses a renewal beyond maxRenewals',
        given: observe(
          grantedRequest({ annotations: renew('r9'), status: { lastRenewal: 'r8', renewals: 8 } }),
          {
            decision: allowed({ maxRenewals: 8 }),
          },
        ),
        expected: { action: 'rejectRenewal', renewValue: 'r9' },
      },
      {
        name: 'refuses every renewal when the policy allows none',
        given: observe(grantedRequest({ annotations: renew('r1') }), {
          decision: allowed({ maxRenewals: 0 }),
        }),
        expected: { action: 'rejectRenewal', renewValue: 'r1' },
      },
      {
        name: 'does not retry a refused renewal for the same value',
        given: observe(
          grantedRequest({ annotations: renew('r9'), status: { lastRenewal: 'r9', renewals: 8 } }),
          {
            decision: allowed({ maxRenewals: 8 }),
          },
        ),
        expected: waitUntilExpiry,
      },
      {
        name: 'refuses a renewal past the maxLifetime',
        given: observe(
          grantedRequest({ annotations: renew('r1'), status: { lifetimeEndsAt: iso(-MINUTE) } }),
        ),
        expected: { action: 'rejectRenewal', renewValue: 'r1' },
      },
      {
        name: 'refuses a renewal when the maxLifetime ends within the second',
        given: observe(
          grantedRequest({
            annotations: renew('r1'),
            status: { lifetimeEndsAt: iso(500), grant: { id: 'grant-1', expiresAt: iso(500) } },
          }),
        ),
        expected: { action: 'rejectRenewal', renewValue: 'r1' },
      },
      {
        name: 'renews when the maxLifetime leaves less than a full ttl (the expiry is capped when issued)',
        given: observe(
          grantedRequest({ annotations: renew('r1'), status: { lifetimeEndsAt: iso(5 * MINUTE) } }),
        ),
        expected: { action: 'renew', renewValue: 'r1' },
      },
      {
        name: 'renews rather than repairs when the grant objects are damaged (renewal rewrites them)',
        given: observe(grantedRequest({ annotations: renew('r1') }), { grantObjects: {} }),
        expected: { action: 'renew', renewValue: 'r1' },
      },
    ]);

    it('renews once for a new renew value and not again for the same value', () => {
      const first = plan(observe(grantedRequest({ annotations: renew('r1') })));
      expect(first).to.deep.include({ action: 'renew', renewValue: 'r1' });

      // What the reconcile records after that renewal: a new grant, one renewal, the value honoured.
      const renewed = grantedRequest({
        annotations: renew('r1'),
        status: { grant: { id: 'grant-2', expiresAt: iso(EXPIRES_IN) }, renewals: 1, lastRenewal: 'r1' },
      });
      const second = plan(observe(renewed, { grantObjects: intactObjects('grant-2') }));
      expect(second).to.deep.equal(waitUntilExpiry);
    });
  });

  it('does not modify what it observes', () => {
    const given = observe(grantedRequest({ annotations: renew('r1') }));
    const before = structuredClone(given);
    plan(given);
    expect(given).to.deep.equal(before);
  });

  it('plans the same step for the same observation', () => {
    const given = observe(pendingRequest({ creationTimestamp: at(-5 * MINUTE) }), { decision: manual });
    expect(plan(given)).to.deep.equal(plan(given));
  });
});
