import { expect } from 'chai';
import { ensureCrds, eventually, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  api,
  canI,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
  waitForPhase,
} from '../support/hourglass.ts';

describe('Job subjects and bursts', function () {
  this.timeout(180_000);
  const namespace = useNamespace('jobs');
  useController('jobs');

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers');
  });

  async function suspendedJob(name: string) {
    return api().batch.createNamespacedJob({
      namespace: namespace(),
      body: {
        metadata: { name },
        spec: {
          suspend: true,
          template: {
            metadata: { labels: { app: name } },
            spec: {
              serviceAccountName: 'etl',
              restartPolicy: 'Never',
              containers: [{ name: 'main', image: 'busybox' }],
            },
          },
        },
      },
    });
  }

  it('revokes with JobFinished when a real Job run by kwok completes', async () => {
    const job = await suspendedJob('nightly');
    await createRequest(namespace(), 'nightly-read', { subject: { jobName: 'nightly' } });
    const granted = await waitForPhase(namespace(), 'nightly-read', 'Granted');
    expect(granted.status?.subject?.jobUID).to.equal(job.metadata?.uid);
    expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(true);
    const { roleBinding } = await grantObjectsPresent(namespace(), 'nightly-read');
    expect(roleBinding?.metadata?.ownerReferences?.[0]).to.include({
      apiVersion: 'batch/v1',
      kind: 'Job',
      uid: job.metadata?.uid,
    });

    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await api().batch.patchNamespacedJob(
      { namespace: namespace(), name: 'nightly', body: { spec: { suspend: false } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const revoked = await waitForPhase(namespace(), 'nightly-read', 'Revoked', 60_000);
    expect(revoked.status?.revocation?.reason).to.equal('JobFinished');
    expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(false);
    expect((await grantObjectsPresent(namespace(), 'nightly-read')).any).to.equal(false);
  });

  it('revokes with JobDeleted when the Job is deleted', async () => {
    await suspendedJob('doomed');
    await createRequest(namespace(), 'doomed-read', { subject: { jobName: 'doomed' } });
    await waitForPhase(namespace(), 'doomed-read', 'Granted');
    await api().batch.deleteNamespacedJob({
      namespace: namespace(),
      name: 'doomed',
      propagationPolicy: 'Background',
    });
    const revoked = await waitForPhase(namespace(), 'doomed-read', 'Revoked');
    expect(revoked.status?.revocation?.reason).to.equal('JobDeleted');
  });

  it('grants 100 requests issued at once and revokes all of them at expiry', async () => {
    const count = 100;
    const names = Array.from({ length: count }, (_, i) => `burst-${i}`);
    await Promise.all(names.map((name) => createPod(namespace(), name, 'etl')));
    await Promise.all(
      names.map((name) => createRequest(namespace(), name, { subject: { podName: name }, ttl: '20s' })),
    );
    await eventually(
      async () => {
        const phases = await Promise.all(
          names.map(async (name) => (await getRequest(namespace(), name))?.status?.phase),
        );
        const granted = phases.filter((p) => p === 'Granted' || p === 'Expired').length;
        expect(granted, `phases: ${JSON.stringify(phases.filter((p) => p !== 'Granted'))}`).to.equal(count);
      },
      { timeout: 60_000, interval: 1000, what: 'all 100 requests to be granted' },
    );
    await eventually(
      async () => {
        const requests = await Promise.all(names.map((name) => getRequest(namespace(), name)));
        const expired = requests.filter((r) => r?.status?.phase === 'Expired').length;
        expect(expired).to.equal(count);
        expect(requests.every((r) => r?.status?.grant?.id)).to.equal(true);
      },
      { timeout: 90_000, interval: 1000, what: 'all 100 grants to expire' },
    );
    const [secrets, roleBindings] = await Promise.all([
      api().core.listNamespacedSecret({
        namespace: namespace(),
        labelSelector: 'app.kubernetes.io/managed-by=hourglass',
      }),
      api().rbac.listNamespacedRoleBinding({
        namespace: namespace(),
        labelSelector: 'app.kubernetes.io/managed-by=hourglass',
      }),
    ]);
    expect(secrets.items.filter((s) => s.metadata?.name?.startsWith('burst-'))).to.have.length(0);
    expect(roleBindings.items.filter((s) => s.metadata?.name?.startsWith('hourglass-burst-'))).to.have.length(
      0,
    );
  });
});
