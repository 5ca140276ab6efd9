// Policy as code at work: Manual approvals by listed approvers (impersonated users, since the
// admin is the controller's own identity here), requesters.self with a pod-bound token, and the
// warnings of `kubectl create --dry-run=server`.
import { expect } from 'chai';
import { POD_NAME_EXTRA, POD_UID_EXTRA } from '../../src/policy/requesters.ts';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { isNotFound } from '../../src/k8s/errors.ts';
import { LOCAL_STATUS_POLICY_NAME, LOCAL_WEBHOOK_NAME } from '../../src/k8s/webhook-registration.ts';
import {
  adminConfig,
  ensureCrds,
  eventually,
  kubectl,
  useNamespace,
  type Result,
} from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  api,
  canI,
  createPod,
  createPolicy,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
  readOrders,
  waitForPhase,
} from '../support/hourglass.ts';
import {
  appendConditionAs,
  createRequestAs,
  decideAs,
  eventsOf,
  grantRole,
  patchStatusAs,
  podBoundToken,
  requestManifest,
  requestRules,
  webhookRegistered,
  type Actor,
} from '../support/identities.ts';

const alice = { user: 'alice' };
const bob = { user: 'bob' };
const carol = { user: 'carol' };

describe('policy as code: approvals, requesters.self and dry-run', function () {
  this.timeout(90_000);
  const namespace = useNamespace('approvals');
  const controller = useController('approvals');
  let podCount = 0;

  before(async () => {
    await ensureCrds();
    await webhookRegistered();
    const ns = namespace();
    for (const account of ['etl', 'timed', 'worker']) await createServiceAccount(ns, account);
    await createPolicy(ns, 'reviewed', {
      subjects: { serviceAccounts: ['etl'] },
      requesters: { users: ['carol'], groups: ['system:masters'] },
      approval: { mode: 'Manual', approvers: { users: ['alice', 'carol'] } },
    });
    await createPolicy(ns, 'timed', {
      subjects: { serviceAccounts: ['timed'] },
      approval: { mode: 'Manual', approvers: { users: ['alice'] }, timeout: '10s' },
    });
    await createPolicy(ns, 'self-service', {
      subjects: { serviceAccounts: ['worker'] },
      requesters: { self: true },
    });
    await grantRole(ns, 'requesters', requestRules, {
      users: ['alice', 'bob', 'carol'],
      serviceAccounts: ['worker'],
    });
  });

  beforeEach(webhookRegistered);

  /** A fresh pod of the service account, so that every test's grant is its own. */
  async function freshPod(serviceAccount: string): Promise<string> {
    const podName = `${serviceAccount}-${podCount++}`;
    await createPod(namespace(), podName, serviceAccount);
    return podName;
  }

  /** A request for a fresh pod of the service account, created by the requester. */
  async function request(name: string, serviceAccount: string, requester: Actor = 'admin') {
    const podName = await freshPod(serviceAccount);
    const result = await createRequestAs(requester, namespace(), name, {
      subject: { podName },
      purpose: 'OPS-7 read the orders table',
      ttl: '5m',
      ...readOrders,
    });
    if (result.refused !== undefined) throw new Error(result.refused);
    expect(result.created.spec.requester, 'spec.requester stamped by the webhook').to.be.an('object');
    return { podName, created: result.created };
  }

  /** The audit records this controller wrote for the request (another local controller may have written them instead). */
  const auditOf = (event: string, name: string) =>
    controller()
      .audit(event)
      .filter((line) => (line.request as { name: string }).name === name);

  /**
   * Waits for the request's Event with this reason, and checks the approver of its decision record
   * (with that reason, or `decisionReason`) when this controller wrote it.
   */
  async function expectAudited(
    name: string,
    reason: string,
    approver: string | undefined,
    decisionReason = reason,
  ) {
    const events = await eventually(
      async () => {
        const all = await eventsOf(namespace(), name);
        expect(all.some((event) => event.startsWith(`${reason}: `))).to.equal(true);
        return all;
      },
      { what: `a ${reason} Event on ${name}` },
    );
    const records = auditOf('decision', name).filter((line) => line.reason === decisionReason);
    for (const record of records) expect(record.approver, JSON.stringify(record)).to.equal(approver);
    return events;
  }

  describe('Manual approval', () => {
    it('holds a request under a Manual policy in AwaitingApproval, with no grant', async () => {
      await request('awaits', 'etl');
      const awaiting = await waitForPhase(namespace(), 'awaits', 'AwaitingApproval');
      expect(awaiting.status?.policy).to.include({ kind: 'AccessPolicy', name: 'reviewed' });
      expect(awaiting.status?.conditions ?? []).to.deep.equal([]);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await getRequest(namespace(), 'awaits'))?.status?.phase).to.equal('AwaitingApproval');
      expect((await grantObjectsPresent(namespace(), 'awaits')).any).to.equal(false);
      expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(false);
    });

    it('grants once a listed approver adds Approved, and records who, when and under which policy', async () => {
      await request('approved', 'etl');
      await waitForPhase(namespace(), 'approved', 'AwaitingApproval');
      const before = Date.now();
      const patch = await decideAs(alice, namespace(), 'approved', 'Approved', { reason: 'Reviewed' });
      expect(patch.code, patch.stderr).to.equal(0);

      const granted = await waitForPhase(namespace(), 'approved', 'Granted');
      const approval = granted.status?.approval;
      expect(approval).to.include({ decision: 'Approved', by: 'alice', policy: 'AccessPolicy/reviewed' });
      expect(Date.parse(approval!.at!)).to.be.within(before - 2000, Date.now());
      const approved = granted.status?.conditions?.find((c) => c.type === 'Approved');
      expect(approved).to.include({ status: 'True' });
      expect(granted.status?.conditions?.some((c) => c.type === 'Denied')).to.equal(false);
      expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(true);
      expect((await grantObjectsPresent(namespace(), 'approved')).any).to.equal(true);
      await expectAudited('approved', 'Issued', 'alice', 'PolicyAllowed');
    });

    it('ends Denied when a listed approver adds Denied, and issues nothing', async () => {
      await request('rejected', 'etl');
      await waitForPhase(namespace(), 'rejected', 'AwaitingApproval');
      const patch = await decideAs(alice, namespace(), 'rejected', 'Denied', {
        reason: 'NotNeeded',
        message: 'the nightly job reads a replica',
      });
      expect(patch.code, patch.stderr).to.equal(0);

      const denied = await waitForPhase(namespace(), 'rejected', 'Denied');
      expect(denied.status?.reason).to.equal('NotNeeded');
      expect(denied.status?.decision).to.equal('the nightly job reads a replica');
      expect(denied.status?.approval).to.include({
        decision: 'Denied',
        by: 'alice',
        policy: 'AccessPolicy/reviewed',
      });
      expect(denied.status?.conditions?.some((c) => c.type === 'Approved')).to.equal(false);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await grantObjectsPresent(namespace(), 'rejected')).any).to.equal(false);
      expect(denied.status?.grant).to.equal(undefined);
      await expectAudited('rejected', 'NotNeeded', 'alice');
    });

    it('refuses the requester approving their own request, though the policy lists them', async () => {
      const { created } = await request('own', 'etl', carol);
      expect(created.spec.requester?.username).to.equal('carol');
      await waitForPhase(namespace(), 'own', 'AwaitingApproval');
      const patch = await decideAs(carol, namespace(), 'own', 'Approved');
      expect(patch.code).to.not.equal(0);
      expect(patch.stderr).to.match(
        /denied the request: the requester cannot approve or deny their own request/,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const after = await getRequest(namespace(), 'own');
      expect(after?.status?.phase).to.equal('AwaitingApproval');
      expect(after?.status?.approval).to.equal(undefined);
      expect((await grantObjectsPresent(namespace(), 'own')).any).to.equal(false);
    });

    it('refuses an approver the policy does not list', async () => {
      await request('unlisted', 'etl');
      await waitForPhase(namespace(), 'unlisted', 'AwaitingApproval');
      for (const type of ['Approved', 'Denied'] as const) {
        const patch = await decideAs(bob, namespace(), 'unlisted', type);
        expect(patch.code).to.not.equal(0);
        expect(patch.stderr).to.match(/denied the request: bob is not an approver of AccessPolicy\/reviewed/);
      }
      await new Promise((r) => setTimeout(r, 1000));
      expect((await getRequest(namespace(), 'unlisted'))?.status?.phase).to.equal('AwaitingApproval');
      expect((await grantObjectsPresent(namespace(), 'unlisted')).any).to.equal(false);
    });

    it('never lets Approved flip to Denied, neither before the grant is issued nor after', async () => {
      await request('no-flip', 'etl');
      await waitForPhase(namespace(), 'no-flip', 'AwaitingApproval');
      const approve = await decideAs(alice, namespace(), 'no-flip', 'Approved');
      expect(approve.code, approve.stderr).to.equal(0);
      // At once, before the controller has acted on the approval (the phase is still
      // AwaitingApproval), as a second approver deciding at the same moment would.
      const early = await appendConditionAs('alice', namespace(), 'no-flip', {
        type: 'Denied',
        status: 'True',
        reason: 'ChangedMind',
        message: 'no after all',
      });
      expect(early.ok, 'a Denied added right after Approved was accepted').to.equal(false);
      expect(early.ok ? '' : early.message).to.match(
        /a request cannot be both Approved and Denied|this one is Granted/,
      );

      const granted = await waitForPhase(namespace(), 'no-flip', 'Granted');
      const late = await decideAs(alice, namespace(), 'no-flip', 'Denied');
      expect(late.code).to.not.equal(0);
      expect(late.stderr).to.match(
        /only a request AwaitingApproval can be approved or denied; this one is Granted/,
      );
      await new Promise((r) => setTimeout(r, 1000));
      const after = await getRequest(namespace(), 'no-flip');
      expect(after?.status?.phase).to.equal('Granted');
      expect(after?.status?.conditions?.map((c) => c.type)).to.not.include('Denied');
      expect(after?.status?.approval).to.include({ decision: 'Approved', by: 'alice' });
      expect(after?.status?.grant?.id).to.equal(granted.status?.grant?.id);
    });

    it('ends Denied with ApprovalTimeout when nobody decides within approval.timeout', async () => {
      const { created } = await request('timed-out', 'timed');
      await waitForPhase(namespace(), 'timed-out', 'AwaitingApproval');
      const denied = await waitForPhase(namespace(), 'timed-out', 'Denied', 40_000);
      expect(denied.status?.reason).to.equal('ApprovalTimeout');
      const condition = denied.status?.conditions?.find((c) => c.type === 'Denied');
      expect(condition).to.include({ status: 'True', reason: 'ApprovalTimeout' });
      const waited =
        Date.parse(condition!.lastTransitionTime) - Date.parse(String(created.metadata.creationTimestamp));
      expect(waited).to.be.at.least(9_000);
      expect((await grantObjectsPresent(namespace(), 'timed-out')).any).to.equal(false);

      const late = await decideAs(alice, namespace(), 'timed-out', 'Approved');
      expect(late.code).to.not.equal(0);
      expect(late.stderr).to.match(/this one is Denied/);
      await expectAudited('timed-out', 'ApprovalTimeout', undefined);
    });
  });

  describe('the API server backstop: a ValidatingAdmissionPolicy', () => {
    const admission = () => adminConfig().makeApiClient(AdmissionregistrationV1Api);

    /**
     * A dry-run write with the mutating webhook unregistered, as when it is misconfigured; tried
     * again when the controller re-registered it in between. Answers the refusal.
     */
    function withoutWebhook(write: () => Promise<Result>): Promise<string> {
      return eventually(
        async () => {
          await admission()
            .deleteMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME })
            .catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
          const result = await write();
          expect(result.code, 'refused').to.not.equal(0);
          expect(result.stderr).to.contain(`ValidatingAdmissionPolicy '${LOCAL_STATUS_POLICY_NAME}'`);
          return result.stderr;
        },
        { what: 'a refusal by the ValidatingAdmissionPolicy' },
      );
    }

    it("refuses a listed approver's decision that did not pass the webhook, which records who decided", async () => {
      await request('backstop-approval', 'etl');
      await waitForPhase(namespace(), 'backstop-approval', 'AwaitingApproval');
      const refusal = await withoutWebhook(() =>
        decideAs(alice, namespace(), 'backstop-approval', 'Approved', { dryRun: true }),
      );
      expect(refusal).to.contain(
        'an approval must pass the hourglass admission webhook, which records the approver in status.approval',
      );
      await webhookRegistered();
      expect((await getRequest(namespace(), 'backstop-approval'))?.status?.phase).to.equal(
        'AwaitingApproval',
      );
    });

    it('refuses any other status change by another identity than the controller', async () => {
      await request('backstop-phase', 'etl');
      await waitForPhase(namespace(), 'backstop-phase', 'AwaitingApproval');
      const refusal = await withoutWebhook(() =>
        patchStatusAs(alice, namespace(), 'backstop-phase', { phase: 'Granted' }, ['--dry-run=server']),
      );
      expect(refusal).to.contain('the status of an AccessRequest is written by hourglass');
    });
  });

  describe('requesters.self', () => {
    it("grants a pod's own bound token access for its own pod, with the requester stamped from the token", async () => {
      const podName = await freshPod('worker');
      const pod = await api().core.readNamespacedPod({ namespace: namespace(), name: podName });
      const token = await podBoundToken(namespace(), 'worker', podName);
      const result = await createRequestAs({ token }, namespace(), 'self-granted', {
        subject: { podName },
        purpose: 'OPS-8 read my own orders',
        ttl: '5m',
        ...readOrders,
      });
      expect(result.refused).to.equal(undefined);
      const requester = result.created!.spec.requester;
      expect(requester?.username).to.equal(`system:serviceaccount:${namespace()}:worker`);
      expect(requester?.extra?.[POD_NAME_EXTRA]).to.deep.equal([podName]);
      expect(requester?.extra?.[POD_UID_EXTRA]).to.deep.equal([pod.metadata?.uid]);

      const granted = await waitForPhase(namespace(), 'self-granted', 'Granted');
      expect(granted.status?.policy).to.include({ name: 'self-service' });
      expect(await canI(namespace(), 'worker', 'get', 'secrets', 'orders-db')).to.equal(true);
    });

    it('denies the same token asking for another pod, naming the requesters rule', async () => {
      const own = await freshPod('worker');
      const other = await freshPod('worker');
      const token = await podBoundToken(namespace(), 'worker', own);
      const result = await createRequestAs({ token }, namespace(), 'self-other', {
        subject: { podName: other },
        purpose: 'OPS-8 read the orders of another pod',
        ttl: '5m',
        ...readOrders,
      });
      expect(result.refused).to.equal(undefined);
      const denied = await waitForPhase(namespace(), 'self-other', 'Denied');
      expect(denied.status?.reason).to.equal('NoPolicyAllows');
      expect(denied.status?.decision).to.contain(
        `AccessPolicy/self-service: requester "system:serviceaccount:${namespace()}:worker" (pod ${own}) is not allowed: requesters.self needs a token bound to the subject pod "${other}"`,
      );
      expect((await grantObjectsPresent(namespace(), 'self-other')).any).to.equal(false);
    });
  });

  describe('--dry-run=server', () => {
    const dryRun = async (name: string, spec: object) =>
      kubectl(
        ['create', '--dry-run=server', '-o', 'name', '-f', '-'],
        JSON.stringify(requestManifest(namespace(), name, spec)),
      );

    it('warns that hourglass would allow a request a policy allows', async () => {
      await createServiceAccount(namespace(), 'dry');
      await createPolicy(namespace(), 'dry-readers', { subjects: { serviceAccounts: ['dry'] } });
      const podName = await freshPod('dry');
      await eventually(
        async () => {
          const result = await dryRun('dry-ok', {
            subject: { podName },
            purpose: 'OPS-9 try first',
            ttl: '5m',
            ...readOrders,
          });
          expect(result.code, result.stderr).to.equal(0);
          expect(result.stderr, result.stderr).to.contain(
            'Warning: hourglass would allow this request: allowed by AccessPolicy/dry-readers',
          );
        },
        { what: 'the dry-run warning to allow', timeout: 25_000, interval: 1000 },
      );
      expect(await getRequest(namespace(), 'dry-ok')).to.equal(undefined);
    });

    it('warns that hourglass would deny a request, with the reason', async () => {
      const podName = await freshPod('dry');
      const result = await dryRun('dry-denied', {
        subject: { podName },
        purpose: 'OPS-9 try first',
        ttl: '5m',
        permissions: [
          { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['escalate'] },
        ],
      });
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr).to.contain(
        'Warning: hourglass would deny this request: permissions[0]: verb "escalate" is never granted',
      );
      expect(await getRequest(namespace(), 'dry-denied')).to.equal(undefined);
    });
  });
});
