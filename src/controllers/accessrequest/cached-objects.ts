import type {
  KubernetesObject,
  V1Container,
  V1Job,
  V1Pod,
  V1PodSpec,
  V1Secret,
} from '@kubernetes/client-node';

// What the caches keep of each object. Every function here changes the object in place, before it
// is cached: client-node's ListWatch holds the same object, so what is dropped here is freed. Each
// is idempotent (a relist hands an object through again). What CEL sees of a subject is what is
// kept here: docs/policy-cel.md lists it, and changing it is a contract change.

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** What no reconciler, policy or CEL condition reads: the bulk of a cached object's metadata. */
export function dropManagedFields(object: KubernetesObject): void {
  if (!object.metadata) return;
  delete object.metadata.managedFields;
  if (object.metadata.annotations?.[LAST_APPLIED] !== undefined)
    delete object.metadata.annotations[LAST_APPLIED];
}

/** A grant Secret as the reconciler reads it: its grant id and expiry, never the token. */
export function dropTokenAndManagedFields(secret: V1Secret): void {
  dropManagedFields(secret);
  if (secret.data) delete secret.data.token;
}

/**
 * A Pod as the lifecycle, the requester checks and CEL read it: its metadata, the service account
 * and node it runs on, its containers' names, images and security contexts, and its phase. A
 * cluster's pods are mostly ones no request names; their env, volumes, resources and status
 * details are most of their size.
 */
export function projectPod(pod: V1Pod): void {
  dropManagedFields(pod);
  const { spec, status } = pod;
  if (spec) {
    pod.spec = {
      ...podSpecIdentity(spec),
      ...defined({ nodeName: spec.nodeName, schedulingGates: spec.schedulingGates }),
    };
  }
  if (status) pod.status = defined({ phase: status.phase });
}

/**
 * A Job as the lifecycle, the requester checks and CEL read it: its metadata, its pod template's
 * labels, annotations, service account and containers (as for a pod), and its conditions and
 * counts.
 */
export function projectJob(job: V1Job): void {
  dropManagedFields(job);
  const { spec, status } = job;
  if (spec) {
    const template = spec.template;
    job.spec = {
      template: defined({
        metadata:
          template.metadata &&
          defined({ labels: template.metadata.labels, annotations: template.metadata.annotations }),
        spec: template.spec && podSpecIdentity(template.spec),
      }),
    };
  }
  if (status) {
    job.status = defined({
      conditions: status.conditions,
      active: status.active,
      succeeded: status.succeeded,
      failed: status.failed,
      startTime: status.startTime,
      completionTime: status.completionTime,
    });
  }
}

/** Who a pod runs as and what it runs: what both a pod and a Job's template keep of a pod spec. */
function podSpecIdentity(spec: V1PodSpec): V1PodSpec {
  return defined({
    serviceAccountName: spec.serviceAccountName,
    securityContext: spec.securityContext,
    hostNetwork: spec.hostNetwork,
    hostPID: spec.hostPID,
    hostIPC: spec.hostIPC,
    containers: spec.containers.map(containerIdentity),
    initContainers: spec.initContainers?.map(containerIdentity),
  });
}

function containerIdentity(container: V1Container): V1Container {
  return defined({
    name: container.name,
    image: container.image,
    securityContext: container.securityContext,
  });
}

/** The object without its undefined fields, so that a projected object has only what it had. */
function defined<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}
