import { expect } from 'chai';
import { GROUP, VERSION, labels, plural, type AccessRequest } from '../../src/api/types.ts';
import { ensureCrds, eventually, kubectlOk, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import { api, createPolicy, createServiceAccount, readOrders } from '../support/hourglass.ts';

// Steady churn as a platform team runs it (issue 18: 20 pairs every 10 s, deleted after 60 s), five
// times faster: every 2 s a batch of pods and their AccessRequests is created (each pod just before
// its request), while the batch created 20 s earlier (once decided) is deleted, requests and pods.
// About 3.5 minutes on an idle machine; longer when the controller cannot decide 10 requests/s.
const BATCHES = 100;
const PER_BATCH = 20;
const BATCH_PERIOD_MS = 2_000;
const DELETE_AFTER_BATCHES = 10;

/** Creates each pod, then its request, the pairs of a batch side by side. */
async function createBatch(namespace: string, batch: number): Promise<void> {
  const batchLabel = { 'churn-batch': String(batch) };
  await Promise.all(
    Array.from({ length: PER_BATCH }, async (_, i) => {
      const name = `churn-${batch}-${i}`;
      await api().core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name, labels: batchLabel },
          spec: {
            serviceAccountName: 'etl',
            nodeName: 'kwok-node-0',
            containers: [{ name: 'main', image: 'busybox' }],
          },
        },
      });
      await api().custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: plural.AccessRequest,
        namespace,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'AccessRequest',
          metadata: { name, namespace, labels: batchLabel },
          spec: { subject: { podName: name }, purpose: 'OPS-1 churn', ttl: '5m', ...readOrders },
        },
      });
    }),
  );
}

/**
 * Deletes a batch, requests then pods, without waiting for either to be gone; first it waits (up
 * to 5 minutes) until each of its requests has been decided, so that every request meets the
 * caches' race with its decision, however loaded the machine is.
 */
async function deleteBatch(namespace: string, batch: number): Promise<void> {
  const labelSelector = `churn-batch=${batch}`;
  const crd = { group: GROUP, version: VERSION, plural: plural.AccessRequest };
  await eventually(
    async () => {
      const list = (await api().custom.listNamespacedCustomObject({ ...crd, namespace, labelSelector })) as {
        items: AccessRequest[];
      };
      const undecided = list.items.filter((r) => !r.status?.phase || r.status.reason === 'Issuing');
      if (undecided.length) throw new Error(`${undecided.length} undecided`);
    },
    { timeout: 300_000, interval: 500, what: `batch ${batch} to be decided` },
  );
  await api().custom.deleteCollectionNamespacedCustomObject({ ...crd, namespace, labelSelector });
  await api().core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 0 });
}

describe('churn: concurrent creation and deletion', function () {
  this.timeout(1_200_000);
  const namespace = useNamespace('churn');
  const controller = useController('churn');

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers', { maxActivePerSubject: 10_000 });
  });

  it(`fails no request of ${BATCHES * PER_BATCH} created while earlier ones are deleted, and leaves nothing behind`, async () => {
    const deletions: Promise<void>[] = [];
    const errors: string[] = [];
    const track = (deletion: Promise<void>) =>
      deletions.push(deletion.catch((error: unknown) => void errors.push(String(error))));
    const start = Date.now();
    for (let batch = 0; batch < BATCHES; batch++) {
      await createBatch(namespace(), batch);
      if (batch >= DELETE_AFTER_BATCHES) track(deleteBatch(namespace(), batch - DELETE_AFTER_BATCHES));
      const next = start + (batch + 1) * BATCH_PERIOD_MS;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
    }
    for (let batch = BATCHES - DELETE_AFTER_BATCHES; batch < BATCHES; batch++)
      track(deleteBatch(namespace(), batch));
    await Promise.all(deletions);
    expect(errors, 'deletions').to.deep.equal([]);

    const inNamespace = (event: string) =>
      controller()
        .audit(event)
        .filter((line) => (line.request as { namespace: string }).namespace === namespace());
    await eventually(
      async () => {
        const left = await kubectlOk([
          '-n',
          namespace(),
          'get',
          'secrets,roles,rolebindings',
          '-l',
          `${labels.managedBy}=hourglass`,
          '-o',
          'name',
        ]);
        const requests = await kubectlOk(['-n', namespace(), 'get', 'accessrequests', '-o', 'name']);
        if (left.trim() || requests.trim()) throw new Error(`left: ${left} ${requests}`);
      },
      { timeout: 120_000, what: 'every request and grant object to be gone' },
    );

    const failed = inNamespace('request.failed').map(
      (l) => `${(l.request as { name: string }).name}: ${l.message}`,
    );
    const denied = inNamespace('decision')
      .filter((l) => String(l.message).startsWith('Denied'))
      .map((l) => `${(l.request as { name: string }).name}: ${l.message}`);
    const awaiting = inNamespace('decision').filter((l) => l.reason === 'AwaitingSubject');
    expect(failed, 'failed requests').to.deep.equal([]);
    expect(denied, 'denied requests').to.deep.equal([]);
    expect(awaiting, 'requests that waited for a pod created before them').to.deep.equal([]);
    const received = new Set(inNamespace('request.received').map((l) => (l.request as { uid: string }).uid));
    const issued = new Set(inNamespace('grant.issued').map((l) => (l.request as { uid: string }).uid));
    console.log(
      `      churn: ${received.size} decided, ${issued.size} granted in ${Math.round((Date.now() - start) / 1000)} s`,
    );
    expect(issued.size).to.equal(BATCHES * PER_BATCH);
  });
});
