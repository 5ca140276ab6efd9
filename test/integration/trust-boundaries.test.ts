// Attackers inside one namespace (docs/security.md): a tenant with the built-in `edit` role, a
// namespace admin, a requester and an approver, each trying to set a grant's terms, outlive a
// revocation, break a cap or move an approval. Each case failed on the code before its defence.
import { expect } from 'chai';
import { labels, MANAGED_BY, type AccessRequest } from '../../src/api/types.ts';
import { ensureCrds, eventually, kubectlOk, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  annotateRequest,
  api,
  canI,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
  patchPolicy,
  waitForPhase,
} from '../support/hourglass.ts';
import {
  decideAs,
  eventsOf,
  grantRole,
  kubectlAs,
  requestRules,
  settled,
  webhookRegistered,
} from '../support/identities.ts';

const mallory = { user: 'mallory' };
const alice = { user: 'alice' };
const bob = { user: 'bob' };
const b64 = (value: string) => Buffer.from(value).toString('base64');

/** Binds a built-in ClusterRole (edit, admin) to a user in one namespace, as a platform team does. */
async function bindClusterRole(namespace: string, clusterRole: string, user: string) {
  await api().rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: `${clusterRole}-${user}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    },
  });
}

describe('trust boundaries', function () {
  this.timeout(120_000);
  const namespace = useNamespace('trust');
  useController('trust');

  before(async () => {
    await ensureCrds();
    await webhookRegistered();
    const ns = namespace();
    for (const account of ['planted', 'relabelled', 'capped', 'moved', 'suspended']) {
      await createServiceAccount(ns, account);
    }
    await bindClusterRole(ns, 'edit', 'mallory');
    await bindClusterRole(ns, 'admin', 'nadia');
    await grantRole(ns, 'approvers', requestRules, { users: ['alice', 'bob'] });
  });

  beforeEach(webhookRegistered);

  it('a namespace tenant with edit who plants the grant Secret cannot set the expiry or grant id: the request fails NameConflict', async () => {
    const ns = namespace();
    await createPolicy(ns, 'planted-manual', {
      subjects: { serviceAccounts: ['planted'] },
      approval: { mode: 'Manual', approvers: { users: ['alice'] } },
    });
    await createPod(ns, 'planted-pod', 'planted');
    const request = await createRequest(ns, 'planted', { subject: { podName: 'planted-pod' } });
    await waitForPhase(ns, 'planted', 'AwaitingApproval');

    const planted = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'planted-grant',
        namespace: ns,
        labels: {
          [labels.managedBy]: MANAGED_BY,
          [labels.request]: 'planted',
          [labels.requestUid]: request.metadata.uid,
          [labels.grantId]: 'chosen-by-mallory',
        },
      },
      type: 'hourglass.dev/grant',
      data: { grantId: b64('chosen-by-mallory'), expiresAt: b64('9999-12-31T23:59:59Z') },
    };
    const created = await kubectlAs(mallory, ['create', '-f', '-'], JSON.stringify(planted));
    expect(created.code, created.stderr).to.equal(0);

    expect((await decideAs(alice, ns, 'planted', 'Approved')).code).to.equal(0);
    const ended = await settled(ns, 'planted');
    expect(ended.status?.phase).to.equal('Failed');
    expect(ended.status?.reason).to.equal('NameConflict');
    expect(ended.status?.grant?.id).to.not.equal('chosen-by-mallory');
    expect(ended.status?.grant?.expiresAt).to.not.equal('9999-12-31T23:59:59Z');
    const events = await eventsOf(ns, 'planted');
    expect(
      events.some((e) => e.startsWith('NameConflict:') && e.includes(`Secret "${ns}/planted-grant"`)),
    ).to.equal(true, events.join('\n'));
    const objects = await grantObjectsPresent(ns, 'planted');
    expect(objects.role ?? objects.roleBinding).to.equal(undefined);
    expect(objects.secret?.data?.grantId, 'the planted Secret is left as it was').to.equal(
      b64('chosen-by-mallory'),
    );
    expect(await canI(ns, 'planted', 'get', 'secrets', 'orders-db')).to.equal(false);
  });

  it('a namespace admin who removes the managed-by label from the grant objects cannot keep them past expiry', async () => {
    const ns = namespace();
    await createPolicy(ns, 'relabelled', { subjects: { serviceAccounts: ['relabelled'] } });
    await createPod(ns, 'relabelled-pod', 'relabelled');
    await createRequest(ns, 'relabelled', { subject: { podName: 'relabelled-pod' }, ttl: '12s' });
    const granted = await waitForPhase(ns, 'relabelled', 'Granted');
    expect(await canI(ns, 'relabelled', 'get', 'secrets', 'orders-db')).to.equal(true);

    for (const [kind = '', name = ''] of [
      ['secret', 'relabelled-grant'],
      ['role', 'hourglass-relabelled'],
      ['rolebinding', 'hourglass-relabelled'],
    ]) {
      const result = await kubectlAs({ user: 'nadia' }, [
        '-n',
        ns,
        'label',
        kind,
        name,
        `${labels.managedBy}-`,
        `${labels.request}-`,
      ]);
      expect(result.code, result.stderr).to.equal(0);
    }

    const expired = await waitForPhase(ns, 'relabelled', 'Expired', 40_000);
    expect(expired.status?.grant?.id).to.equal(granted.status?.grant?.id);
    await eventually(
      async () => {
        const objects = await grantObjectsPresent(ns, 'relabelled');
        if (objects.any) throw new Error(`left: ${JSON.stringify(Object.keys(objects))}`);
      },
      { timeout: 10_000, what: 'the relabelled grant objects to be deleted' },
    );
    expect(await canI(ns, 'relabelled', 'get', 'secrets', 'orders-db')).to.equal(false);
  });

  it('maxActivePerSubject holds when 30 requests of one service account arrive at once', async () => {
    const ns = namespace();
    await createPolicy(ns, 'capped', { subjects: { serviceAccounts: ['capped'] }, maxActivePerSubject: 5 });
    const names = Array.from({ length: 30 }, (_, i) => `capped-${i}`);
    await Promise.all(names.map((name) => createPod(ns, name, 'capped')));
    await Promise.all(names.map((name) => createRequest(ns, name, { subject: { podName: name } })));
    const outcomes = await Promise.all(names.map((name) => settled(ns, name, 60_000)));
    const granted = outcomes.filter((r) => r.status?.phase === 'Granted');
    const denied = outcomes.filter((r) => r.status?.phase === 'Denied');
    expect(granted.length, outcomes.map((r) => r.status?.phase).join(',')).to.equal(5);
    expect(denied.length).to.equal(25);
    expect(denied[0]?.status?.decision).to.contain('maxActivePerSubject 5');
  });

  it('a requester who relabels the pod onto another Manual policy needs that policy’s approver: the first approver cannot approve', async () => {
    const ns = namespace();
    await createPolicy(ns, 'team-a', {
      subjects: { serviceAccounts: ['moved'], podSelector: { matchLabels: { team: 'a' } } },
      approval: { mode: 'Manual', approvers: { users: ['alice'] } },
    });
    await createPolicy(ns, 'team-b', {
      subjects: { serviceAccounts: ['moved'], podSelector: { matchLabels: { team: 'b' } } },
      approval: { mode: 'Manual', approvers: { users: ['bob'] } },
      maxTTL: '8h',
    });
    await createPod(ns, 'moved-pod', 'moved', { team: 'a' });
    await createRequest(ns, 'moved', { subject: { podName: 'moved-pod' } });
    const awaiting = await waitForPhase(ns, 'moved', 'AwaitingApproval');
    expect(awaiting.status?.policy?.name).to.equal('team-a');

    await kubectlOk(['-n', ns, 'label', 'pod', 'moved-pod', 'team=b', '--overwrite']);
    await eventually(
      async () => {
        const request = await getRequest(ns, 'moved');
        if (request?.status?.policy?.name !== 'team-b')
          throw new Error(`awaits under ${request?.status?.policy?.name}`);
      },
      { timeout: 15_000, what: 'the request to await approval under team-b' },
    );
    const byAlice = await decideAs(alice, ns, 'moved', 'Approved');
    expect(byAlice.code).to.not.equal(0);
    expect(byAlice.stderr).to.match(/alice is not an approver of AccessPolicy\/team-b/);

    expect((await decideAs(bob, ns, 'moved', 'Approved')).code).to.equal(0);
    const granted = await waitForPhase(ns, 'moved', 'Granted');
    expect(granted.status?.policy?.name).to.equal('team-b');
    expect(granted.status?.approval).to.include({ by: 'bob', policy: 'AccessPolicy/team-b' });
    expect(granted.status?.approval?.policyUID).to.equal(granted.status?.policy?.uid);
  });

  it('a policy author who suspends a policy revokes its live grants, even when a Manual policy would also allow them', async () => {
    const ns = namespace();
    await createPolicy(ns, 'suspend-auto', { subjects: { serviceAccounts: ['suspended'] } });
    await createPolicy(ns, 'suspend-manual', {
      subjects: { serviceAccounts: ['suspended'] },
      approval: { mode: 'Manual', approvers: { users: ['alice'] } },
    });
    await createPod(ns, 'suspended-pod', 'suspended');
    await createRequest(ns, 'suspended', { subject: { podName: 'suspended-pod' } });
    const granted = await waitForPhase(ns, 'suspended', 'Granted');
    expect(granted.status?.policy?.name).to.equal('suspend-auto');

    await patchPolicy(ns, 'suspend-auto', { suspend: true });
    const revoked: AccessRequest = await waitForPhase(ns, 'suspended', 'Revoked', 15_000);
    expect(revoked.status?.reason).to.equal('PolicyChanged');
    expect((await grantObjectsPresent(ns, 'suspended')).any).to.equal(false);
    expect(await canI(ns, 'suspended', 'get', 'secrets', 'orders-db')).to.equal(false);
  });

  it('a renewal never moves a grant onto a Manual policy it has no approval for', async () => {
    const ns = namespace();
    await createServiceAccount(ns, 'renewing');
    await createPolicy(ns, 'renew-auto', { subjects: { serviceAccounts: ['renewing'] } });
    await createPolicy(ns, 'renew-manual', {
      subjects: { serviceAccounts: ['renewing'] },
      approval: { mode: 'Manual', approvers: { users: ['alice'] } },
      maxTTL: '8h',
    });
    await createPod(ns, 'renewing-pod', 'renewing');
    await createRequest(ns, 'renewing', { subject: { podName: 'renewing-pod' } });
    await waitForPhase(ns, 'renewing', 'Granted');
    // The Automatic policy goes away; only the Manual one would allow a renewal.
    await api().custom.deleteNamespacedCustomObject({
      group: 'hourglass.dev',
      version: 'v1alpha1',
      plural: 'accesspolicies',
      namespace: ns,
      name: 'renew-auto',
    });
    await annotateRequest(ns, 'renewing', { 'hourglass.dev/renew': 'r1' });
    const ended = await waitForPhase(ns, 'renewing', 'Revoked', 15_000);
    expect(ended.status?.reason).to.equal('PolicyChanged');
    expect(ended.status?.renewals ?? 0).to.equal(0);
    expect(ended.status?.policy?.name).to.equal('renew-auto');
  });
});
