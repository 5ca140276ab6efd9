import type { KubernetesObject, V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { expect } from 'chai';
import { annotations, type AccessRequest, type AnyAccessPolicy } from '../../../../src/api/types.ts';
import type { Auditor } from '../../../../src/audit/audit.ts';
import type { Caches, ObjectCache, WrittenCache } from '../../../../src/controllers/accessrequest/caches.ts';
import type { GrantObjectPort } from '../../../../src/controllers/accessrequest/grant-object-port.ts';
import type { LiveReader } from '../../../../src/controllers/accessrequest/live.ts';
import { AccessRequestReconciler } from '../../../../src/controllers/accessrequest/reconcile.ts';
import type { AccessRequestClient } from '../../../../src/k8s/resources.ts';
import { createLogger } from '../../../../src/log.ts';
import { createMetrics } from '../../../../src/metrics.ts';
import { MINUTE, NAMESPACE, NOW, POD_NAME, POD_UID, policy, request, SA_NAME, SA_UID } from './fixtures.ts';

/** An informer cache: what it holds is what the test has delivered to it so far. */
class FakeCache<T extends KubernetesObject> implements WrittenCache<T> {
  readonly #objects = new Map<string, T>();
  get(namespace: string, name: string): T | undefined {
    return this.#objects.get(`${namespace}/${name}`);
  }
  list(namespace?: string): T[] {
    return [...this.#objects.values()].filter(
      (o) => namespace === undefined || o.metadata?.namespace === namespace,
    );
  }
  deliver(object: T): void {
    this.#objects.set(`${object.metadata?.namespace ?? ''}/${object.metadata?.name}`, object);
  }
  recordWrite(object: T): void {
    this.deliver(object);
  }
  recordDeletion(object: T): void {
    this.#objects.delete(`${object.metadata?.namespace ?? ''}/${object.metadata?.name}`);
  }
}

const pod: V1Pod = {
  metadata: { name: POD_NAME, namespace: NAMESPACE, uid: POD_UID, labels: { team: 'data' } },
  spec: { serviceAccountName: SA_NAME, containers: [] },
  status: { phase: 'Running' },
};
const serviceAccount: V1ServiceAccount = { metadata: { name: SA_NAME, namespace: NAMESPACE, uid: SA_UID } };
const namespace: V1Namespace = { metadata: { name: NAMESPACE, uid: 'namespace-uid' } };

/**
 * One reconciler over fake caches, a fake API server (`live`) and a recorder of status writes and
 * audit records. `onLiveRead` runs inside a live read, before it answers: there a test delivers
 * objects to the caches, as an informer may while the read is in flight.
 */
function harness({ awaitSubjectMs = 0 } = {}) {
  const caches = {
    requests: new FakeCache<AccessRequest>(),
    pods: new FakeCache<V1Pod>(),
    jobs: new FakeCache(),
    serviceAccounts: new FakeCache<V1ServiceAccount>(),
    namespaces: new FakeCache<V1Namespace>(),
    policies: new FakeCache<AnyAccessPolicy>(),
    clusterPolicies: new FakeCache<AnyAccessPolicy>(),
    secrets: new FakeCache(),
    roles: new FakeCache(),
    roleBindings: new FakeCache(),
  } satisfies Record<keyof Caches, ObjectCache<KubernetesObject>>;
  const live = {
    objects: new Map<string, KubernetesObject>(),
    policies: [] as AnyAccessPolicy[],
    onLiveRead: () => {},
  };
  const statuses: NonNullable<AccessRequest['status']>[] = [];
  const records: { reason: string; message: string }[] = [];
  let resourceVersion = 1;
  const requests = {
    patchStatus: async (r: AccessRequest, status: AccessRequest['status']) => {
      statuses.push(status ?? {});
      return { ...r, metadata: { ...r.metadata, resourceVersion: String(++resourceVersion) }, status };
    },
    setFinalizers: async (r: AccessRequest, finalizers: string[]) => ({
      ...r,
      metadata: { ...r.metadata, finalizers, resourceVersion: String(++resourceVersion) },
    }),
  } as unknown as AccessRequestClient;
  const reader: LiveReader = {
    readLive: async (kind, ns, name) => {
      live.onLiveRead();
      return live.objects.get(`${kind}/${ns}/${name}`);
    },
    listLivePolicies: async () => {
      live.onLiveRead();
      return { namespaced: live.policies, cluster: [] };
    },
  };
  const grantObjects = {
    own: () => ({}),
    delete: async () => {},
    deleteCached: async () => {},
    deleteLeftovers: async () => {},
  } as unknown as GrantObjectPort;
  const record = (_event: string, _request: AccessRequest, details: { reason: string; message: string }) =>
    records.push({ reason: details.reason, message: details.message });
  const reconciler = new AccessRequestReconciler({
    ...reader,
    caches: caches as unknown as Caches,
    grantObjects,
    requests,
    recordRevoked: () => {},
    auditor: { record, log: () => {} } as unknown as Auditor,
    metrics: createMetrics(() => 0),
    log: createLogger('error'),
    now: () => NOW,
    isNamespaced: () => true,
    controllerNamespace: 'hourglass-system',
    signingKeySecretName: 'hourglass-signing-keys',
    grantedRequests: () => new Set(),
    awaitSubjectMs,
  });
  const exists = (kind: string, object: KubernetesObject) =>
    live.objects.set(`${kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name}`, object);
  return { caches, live, exists, statuses, records, reconciler };
}

/** A request just created by user bob, not yet decided, as admission left it. */
function newRequest(overrides: Partial<AccessRequest['metadata']> = {}): AccessRequest {
  const r = request({ creationTimestamp: NOW, spec: { requester: { username: 'bob', groups: [] } } });
  return { ...r, metadata: { ...r.metadata, resourceVersion: '1', ...overrides } };
}

/** A policy that allows bob's request. */
function bobsPolicy(): AnyAccessPolicy {
  const p = policy();
  return { ...p, spec: { ...p.spec, requesters: { users: ['bob'] } } };
}

/** The API server has the pod, its service account and its namespace. */
function subjectExistsLive(h: ReturnType<typeof harness>): void {
  for (const [kind, object] of [
    ['Pod', pod],
    ['ServiceAccount', serviceAccount],
    ['Namespace', namespace],
  ] as const)
    h.exists(kind, object);
}

const phases = (statuses: NonNullable<AccessRequest['status']>[]) =>
  statuses.map((s) => `${s.phase} ${s.reason}`);

describe('AccessRequestReconciler: final outcomes from consistent reads', () => {
  it('does not fail a request whose pod the informer delivers during the live read', async () => {
    const h = harness();
    h.caches.requests.deliver(newRequest());
    h.caches.serviceAccounts.deliver(serviceAccount);
    h.caches.namespaces.deliver(namespace);
    h.caches.policies.deliver(bobsPolicy());
    subjectExistsLive(h);
    h.live.policies = [bobsPolicy()];
    h.live.onLiveRead = () => h.caches.pods.deliver(pod);

    const result = await h.reconciler.reconcile(`${NAMESPACE}/${newRequest().metadata.name}`);

    expect(h.statuses.map((s) => s.decision)).to.deep.equal([]);
    expect(result.requeueAfterMs).to.be.greaterThan(0);
  });

  it('does not deny a request whose policy was created before it and has not reached the cache', async () => {
    const h = harness();
    h.caches.requests.deliver(newRequest());
    h.caches.pods.deliver(pod);
    h.caches.serviceAccounts.deliver(serviceAccount);
    h.caches.namespaces.deliver(namespace);
    subjectExistsLive(h);
    h.live.policies = [bobsPolicy()];
    h.live.onLiveRead = () => h.caches.policies.deliver(bobsPolicy());

    const result = await h.reconciler.reconcile(`${NAMESPACE}/${newRequest().metadata.name}`);

    expect(h.statuses.map((s) => s.decision)).to.deep.equal([]);
    expect(result.requeueAfterMs).to.be.greaterThan(0);
  });

  it('fails SubjectNotFound once the API server confirms that the pod does not exist', async () => {
    const h = harness();
    h.caches.requests.deliver(newRequest());
    h.exists('Namespace', namespace);

    await h.reconciler.reconcile(`${NAMESPACE}/${newRequest().metadata.name}`);

    expect(phases(h.statuses)).to.deep.equal(['Failed SubjectNotFound']);
    expect(h.records.map((r) => r.reason)).to.deep.equal(['SubjectNotFound']);
  });

  it('denies once the API server confirms that no policy allows', async () => {
    const h = harness();
    h.caches.requests.deliver(newRequest());
    h.caches.pods.deliver(pod);
    h.caches.serviceAccounts.deliver(serviceAccount);
    subjectExistsLive(h);

    await h.reconciler.reconcile(`${NAMESPACE}/${newRequest().metadata.name}`);

    expect(h.statuses.map((s) => s.phase)).to.deep.equal(['Denied']);
  });
});

describe('AccessRequestReconciler: a request created before its subject', () => {
  it('stays Pending with reason AwaitingSubject, said by one Event, and issues nothing', async () => {
    const h = harness({ awaitSubjectMs: 2 * MINUTE });
    h.caches.requests.deliver(newRequest());
    h.exists('Namespace', namespace);
    const key = `${NAMESPACE}/${newRequest().metadata.name}`;

    const first = await h.reconciler.reconcile(key);
    const second = await h.reconciler.reconcile(key);

    expect(phases(h.statuses)).to.deep.equal(['Pending AwaitingSubject']);
    expect(h.statuses[0]?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}`)).to.deep.equal([
      'Granted=False AwaitingSubject',
    ]);
    expect(h.records.map((r) => r.reason)).to.deep.equal(['AwaitingSubject']);
    expect(h.statuses[0]?.grant).to.equal(undefined);
    expect(first.requeueAfterMs).to.equal(2 * MINUTE);
    expect(second.requeueAfterMs).to.equal(2 * MINUTE);
  });

  it('a tenant who recreates the pinned pod under the same name gets no wait and no grant', async () => {
    const h = harness({ awaitSubjectMs: 2 * MINUTE });
    const pinned = newRequest({ annotations: { [annotations.subjectUid]: 'the-pod-admission-saw' } });
    h.caches.requests.deliver(pinned);
    h.caches.pods.deliver(pod);
    h.caches.serviceAccounts.deliver(serviceAccount);
    h.caches.policies.deliver(bobsPolicy());
    subjectExistsLive(h);
    h.live.policies = [bobsPolicy()];

    await h.reconciler.reconcile(`${NAMESPACE}/${pinned.metadata.name}`);

    expect(phases(h.statuses)).to.deep.equal(['Failed SubjectNotFound']);
    expect(h.statuses[0]?.decision).to.match(/was replaced/);
  });
});
