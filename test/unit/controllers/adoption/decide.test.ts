import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { AccessRequest } from '../../../../src/api/types.ts';
import { planGatedPod, planRenewal } from '../../../../src/controllers/adoption/decide.ts';

const NOW = new Date('2026-01-01T12:00:00Z');
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();
const GRACE = 60_000;

const pod: V1Pod = {
  metadata: {
    name: 'etl-x1',
    namespace: 'batch',
    uid: 'pod-uid',
    creationTimestamp: new Date(at(-5_000)),
    labels: { 'hourglass.dev/inject': 'true' },
    annotations: { 'hourglass.dev/access': 'get secrets/orders-db' },
    ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid', controller: true }],
  },
  spec: { serviceAccountName: 'etl', containers: [], schedulingGates: [{ name: 'hourglass.dev/grant' }] },
};

function adopted(status: AccessRequest['status'], annotations: Record<string, string> = {}): AccessRequest {
  return {
    apiVersion: 'hourglass.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: {
      name: 'job-etl',
      namespace: 'batch',
      uid: 'req-uid',
      annotations: { 'hourglass.dev/adopted-for': 'pod-uid', ...annotations },
    },
    spec: {
      subject: { jobName: 'etl' },
      purpose: 'p',
      requester: { username: 'system:serviceaccount:batch:etl' },
    },
    ...(status ? { status } : {}),
  };
}

describe('planning a gated pod', () => {
  it("creates its Job's request, asked as a token bound to the pod would ask, owned by the Job", () => {
    const plan = planGatedPod(pod, undefined, NOW, GRACE);
    if (plan.action !== 'create') throw new Error(plan.action);
    expect(plan.request.metadata.name).to.equal('job-etl');
    expect(plan.request.metadata.ownerReferences).to.deep.equal([
      { apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid' },
    ]);
    expect(plan.request.spec.requester).to.deep.equal({
      username: 'system:serviceaccount:batch:etl',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:batch', 'system:authenticated'],
      extra: {
        'authentication.kubernetes.io/pod-name': ['etl-x1'],
        'authentication.kubernetes.io/pod-uid': ['pod-uid'],
      },
    });
  });

  it('records a renew value the Job already carries, so that it asks for no renewal', () => {
    const job: V1Job = { metadata: { name: 'etl', annotations: { 'hourglass.dev/renew': 'old' } } };
    const plan = planGatedPod(pod, undefined, NOW, GRACE, job);
    if (plan.action !== 'create') throw new Error(plan.action);
    expect(plan.request.metadata.annotations?.['hourglass.dev/job-renewal']).to.equal('old');
  });

  it('lifts the gate once its request is Granted', () => {
    expect(planGatedPod(pod, adopted({ phase: 'Granted' }), NOW, GRACE)).to.deep.equal({ action: 'ungate' });
  });

  it('waits while its request is pending or awaiting approval', () => {
    expect(planGatedPod(pod, adopted({ phase: 'AwaitingApproval' }), NOW, GRACE).action).to.equal('wait');
    expect(planGatedPod(pod, adopted(undefined), NOW, GRACE).action).to.equal('wait');
  });

  it('refuses and fails the pod a grace period after its request was denied', () => {
    const denied = adopted({
      phase: 'Denied',
      reason: 'NoPolicyAllows',
      decision: 'denied: no policy',
      conditions: [
        {
          type: 'Denied',
          status: 'True',
          reason: 'NoPolicyAllows',
          message: 'm',
          lastTransitionTime: at(-1_000),
        },
      ],
    });
    const plan = planGatedPod(pod, denied, NOW, GRACE);
    expect(plan).to.deep.include({ action: 'refuse', reason: 'AccessDenied' });
    if (plan.action === 'refuse') expect(plan.failAt.toISOString()).to.equal(at(GRACE - 1_000));
  });

  it("fails a retried pod at once when its Job's request was denied longer ago than the grace", () => {
    const denied = adopted({
      phase: 'Denied',
      conditions: [
        {
          type: 'Denied',
          status: 'True',
          reason: 'NoPolicyAllows',
          message: 'm',
          lastTransitionTime: at(-2 * GRACE),
        },
      ],
    });
    const plan = planGatedPod(pod, denied, NOW, GRACE);
    if (plan.action !== 'refuse') throw new Error(plan.action);
    expect(plan.failAt.getTime()).to.be.at.most(NOW.getTime());
  });

  it('does not lift the gate on a request of the same name that hourglass did not make', () => {
    const planted = adopted({ phase: 'Granted' });
    delete planted.metadata.annotations;
    expect(planGatedPod(pod, planted, NOW, GRACE)).to.deep.include({
      action: 'refuse',
      reason: 'RequestNameTaken',
    });
  });
});

describe('planning a renewal', () => {
  const granted = (renewals = 0, lastRenewal?: string) =>
    adopted({
      phase: 'Granted',
      renewals,
      ...(lastRenewal ? { lastRenewal } : {}),
      grant: { id: 'g', issuedAt: at(-10 * 60_000), expiresAt: at(5 * 60_000) },
    });
  const job = (renew?: string): V1Job => ({
    metadata: { name: 'etl', ...(renew ? { annotations: { 'hourglass.dev/renew': renew } } : {}) },
  });

  it('asks for one renewal once renewBefore remains', () => {
    expect(planRenewal(granted(), job(), '5m', NOW)).to.deep.equal({ renewValue: 'auto-1' });
  });

  it('waits until renewBefore remains', () => {
    expect(planRenewal(granted(), job(), '2m', NOW)).to.deep.equal({ requeueAfterMs: 3 * 60_000 });
  });

  it('renews at a third of the lifetime before expiry when the policy sets no renewBefore', () => {
    expect(planRenewal(granted(), job(), undefined, NOW)).to.deep.equal({ renewValue: 'auto-1' });
  });

  it('passes on a new hourglass.dev/renew value of the Job once', () => {
    expect(planRenewal(granted(), job('r1'), '1m', NOW)).to.deep.equal({
      renewValue: 'job-r1',
      jobRenewal: 'r1',
    });
    const passed = granted(1, 'job-r1');
    passed.metadata.annotations = { ...passed.metadata.annotations, 'hourglass.dev/job-renewal': 'r1' };
    expect(planRenewal(passed, job('r1'), '1m', NOW)).to.deep.equal({ requeueAfterMs: 4 * 60_000 });
  });

  it('asks no more after a refused automatic renewal (the same value is not asked twice)', () => {
    expect(planRenewal(granted(0, 'auto-1'), job(), '5m', NOW)).to.deep.equal({});
  });

  it('waits while a renewal asked for is not honoured yet', () => {
    const asked = granted();
    asked.metadata.annotations = { ...asked.metadata.annotations, 'hourglass.dev/renew': 'auto-1' };
    expect(planRenewal(asked, job(), '5m', NOW)).to.deep.equal({});
  });
});
