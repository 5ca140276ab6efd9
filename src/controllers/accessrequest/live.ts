import type { KubernetesObject, V1Job, V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import type { AccessRequest, AnyAccessPolicy } from '../../api/types.ts';
import { boundPod } from '../../policy/requesters.ts';
import type { Caches, ObjectCache } from './caches.ts';

/** Reads from the API server, for the decisions that must not rest on a cache that may lag. */
export interface LiveReader {
  /** The object as the API server has it now; undefined when it does not exist. */
  readLive: (
    kind: 'Pod' | 'Job' | 'ServiceAccount' | 'Namespace',
    namespace: string,
    name: string,
  ) => Promise<KubernetesObject | undefined>;
  /** The AccessPolicies of a namespace and all ClusterAccessPolicies, as the API server has them now. */
  listLivePolicies: (
    namespace: string,
  ) => Promise<{ namespaced: AnyAccessPolicy[]; cluster: AnyAccessPolicy[] }>;
}

/** A cache whose answers for the keys read live come from those reads, and from the cache otherwise. */
function overlay<T extends KubernetesObject>(
  cache: ObjectCache<T>,
  live: Map<string, T | undefined>,
): ObjectCache<T> {
  const key = (namespace: string, name: string) => `${namespace}/${name}`;
  return {
    get: (namespace, name) => {
      const k = key(namespace, name);
      return live.has(k) ? live.get(k) : cache.get(namespace, name);
    },
    list: (namespace) => cache.list(namespace),
  };
}

/** A cache holding exactly one list, read live. */
function listed<T extends KubernetesObject>(items: T[]): ObjectCache<T> {
  return {
    get: (namespace, name) =>
      items.find((o) => o.metadata?.name === name && (o.metadata?.namespace ?? '') === namespace),
    list: () => items,
  };
}

/**
 * The caches as seen through live reads of what a final outcome rests on. `subject`: the subject
 * and its service account (what a lagging pod or Job informer gets wrong most often, and cheap to
 * read). `all`: also the requester's pod, the namespace and the policies. A request is Denied or
 * Failed only on what `all` says, so that an informer that has not yet delivered an object (or
 * delivers it while it is being read) never decides a final outcome.
 */
export async function liveCaches(
  caches: Caches,
  request: AccessRequest,
  reader: LiveReader,
  scope: 'subject' | 'all',
): Promise<Caches> {
  const { namespace } = request.metadata;
  const { podName, jobName } = request.spec.subject;
  const pods = new Map<string, V1Pod | undefined>();
  const jobs = new Map<string, V1Job | undefined>();
  const serviceAccounts = new Map<string, V1ServiceAccount | undefined>();
  const subject = await reader.readLive(podName ? 'Pod' : 'Job', namespace, podName ?? jobName ?? '');
  if (podName) pods.set(`${namespace}/${podName}`, subject as V1Pod | undefined);
  else jobs.set(`${namespace}/${jobName}`, subject as V1Job | undefined);
  const serviceAccountName =
    (podName
      ? (subject as V1Pod | undefined)?.spec?.serviceAccountName
      : (subject as V1Job | undefined)?.spec?.template?.spec?.serviceAccountName) ??
    (subject ? 'default' : undefined);
  if (serviceAccountName) {
    const account = await reader.readLive('ServiceAccount', namespace, serviceAccountName);
    serviceAccounts.set(`${namespace}/${serviceAccountName}`, account as V1ServiceAccount | undefined);
  }
  const subjectOnly = {
    ...caches,
    pods: overlay(caches.pods, pods),
    jobs: overlay(caches.jobs, jobs),
    serviceAccounts: overlay(caches.serviceAccounts, serviceAccounts),
  };
  if (scope === 'subject') return subjectOnly;

  const namespaces = new Map<string, V1Namespace | undefined>();
  const requesterPod = boundPod(request.spec.requester)?.name;
  const [requester, namespaceObject, policies] = await Promise.all([
    requesterPod && requesterPod !== podName ? reader.readLive('Pod', namespace, requesterPod) : undefined,
    reader.readLive('Namespace', '', namespace),
    reader.listLivePolicies(namespace),
  ]);
  if (requesterPod && requesterPod !== podName) pods.set(`${namespace}/${requesterPod}`, requester as V1Pod);
  namespaces.set(`/${namespace}`, namespaceObject as V1Namespace | undefined);
  return {
    ...subjectOnly,
    pods: overlay(caches.pods, pods),
    namespaces: overlay(caches.namespaces, namespaces),
    policies: listed(policies.namespaced),
    clusterPolicies: listed(policies.cluster),
  };
}
