import type { V1Secret } from '@kubernetes/client-node';
import { findCondition } from '../conditions.ts';
import { annotations, labels, type AccessRequest } from '../../api/types.ts';
import { decide, type Decision, type DecisionInput } from '../../policy/decide.ts';
import { boundPod, requesterPodOf } from '../../policy/requesters.ts';
import type { Caches } from './caches.ts';
import type { GrantObjectPort } from './grant-object-port.ts';
import { secretValue } from './grant-objects.ts';
import type { GrantObjects, Observed } from './plan.ts';
import { workloadOfJob, workloadOfPod, type Workload } from './subject.ts';

export interface ObserverDeps {
  caches: Caches;
  grantObjects: GrantObjectPort;
  isNamespaced: DecisionInput['isNamespaced'];
  controllerNamespace: string;
  signingKeySecretName: string;
  /** Final requests are deleted this long after they ended; undefined keeps them. */
  retainForMs?: number;
  /** A request waits this long after its creation for a subject not created yet; 0 fails it at once. */
  awaitSubjectMs?: number;
  /** UIDs of the requests that hold or are issuing a grant for this service account, as cached. */
  grantedRequests: (namespace: string, serviceAccountName: string) => ReadonlySet<string>;
}

/** Reads, from caches only, everything plan() needs about one request at one instant. */
export class RequestObserver {
  readonly #d: ObserverDeps;

  constructor(deps: ObserverDeps) {
    this.#d = deps;
  }

  observe(request: AccessRequest, now: Date): Observed {
    const { caches } = this.#d;
    const workload = this.workload(request);
    const serviceAccount =
      workload && caches.serviceAccounts.get(request.metadata.namespace, workload.serviceAccountName);
    return {
      request,
      now,
      workload,
      serviceAccountUid: serviceAccount?.metadata?.uid,
      grantObjects: this.#grantObjects(request),
      decision: this.decide(request, workload, now),
      recordedPolicy: this.#recordedPolicyState(request),
      ...(this.#d.retainForMs === undefined ? {} : { retainForMs: this.#d.retainForMs }),
      ...(this.#d.awaitSubjectMs ? { awaitSubjectMs: this.#d.awaitSubjectMs } : {}),
    };
  }

  /** The subject pod or Job as cached, unless it is gone or going. */
  workload(request: AccessRequest): Workload | undefined {
    const { namespace } = request.metadata;
    const { podName, jobName } = request.spec.subject;
    if (podName) {
      const pod = this.#d.caches.pods.get(namespace, podName);
      return pod && !pod.metadata?.deletionTimestamp ? workloadOfPod(pod) : undefined;
    }
    const job = jobName ? this.#d.caches.jobs.get(namespace, jobName) : undefined;
    return job && !job.metadata?.deletionTimestamp ? workloadOfJob(job) : undefined;
  }

  decide(request: AccessRequest, workload: Workload | undefined, now: Date): Decision {
    const { caches } = this.#d;
    const { namespace } = request.metadata;
    const serviceAccountName =
      workload?.serviceAccountName ?? request.status?.subject?.serviceAccountName ?? '';
    const { podName, jobName } = request.spec.subject;
    const namespaceObject = caches.namespaces.get('', namespace);
    return decide({
      request,
      subject: { serviceAccountName, labels: workload?.labels ?? {} },
      namespaceLabels: namespaceObject?.metadata?.labels ?? {},
      policies: [...caches.policies.list(namespace), ...caches.clusterPolicies.list()],
      activeGrants: this.#activeGrants(request, serviceAccountName),
      approvedPolicy: approvedPolicy(request),
      isNamespaced: this.#d.isNamespaced,
      controllerNamespace: this.#d.controllerNamespace,
      signingKeySecretName: this.#d.signingKeySecretName,
      subjectUid: workload?.uid ?? request.metadata.annotations?.[annotations.subjectUid],
      requesterPod: this.#requesterPod(request),
      celContext: {
        ...(podName ? { pod: caches.pods.get(namespace, podName) } : {}),
        ...(jobName ? { job: caches.jobs.get(namespace, jobName) } : {}),
        ...(workload
          ? { serviceAccount: caches.serviceAccounts.get(namespace, workload.serviceAccountName) }
          : {}),
        ...(namespaceObject ? { namespace: namespaceObject } : {}),
        now,
      },
    });
  }

  /** The pod a pod-bound requester token names, as the pod cache has it. */
  #requesterPod(request: AccessRequest) {
    const bound = boundPod(request.spec.requester);
    const pod = bound && this.#d.caches.pods.get(request.metadata.namespace, bound.name);
    return pod ? requesterPodOf(pod) : undefined;
  }

  /**
   * Live grants of other requests of this service account. The cap is checked when issuing, not
   * again for a grant already live or being issued.
   */
  #activeGrants(request: AccessRequest, serviceAccountName: string): number {
    if (request.status?.grant?.id) return 0;
    const granted = this.#d.grantedRequests(request.metadata.namespace, serviceAccountName);
    return granted.size - (granted.has(request.metadata.uid) ? 1 : 0);
  }

  #recordedPolicyState(request: AccessRequest): Observed['recordedPolicy'] {
    const recorded = request.status?.policy;
    if (!recorded?.name) return 'unchanged';
    const policy =
      recorded.kind === 'ClusterAccessPolicy'
        ? this.#d.caches.clusterPolicies.get('', recorded.name)
        : this.#d.caches.policies.get(recorded.namespace ?? request.metadata.namespace, recorded.name);
    if (!policy || policy.metadata.uid !== recorded.uid) return 'gone';
    if (policy.spec.suspend) return 'suspended';
    return policy.metadata.generation === recorded.generation ? 'unchanged' : 'changed';
  }

  #grantObjects(request: AccessRequest): GrantObjects {
    const own = this.#d.grantObjects.own(request);
    const grantIdOf = (object: { metadata?: { labels?: Record<string, string> } }) => ({
      grantId: object.metadata?.labels?.[labels.grantId],
    });
    const secret = own.Secret as V1Secret | undefined;
    return {
      ...(secret
        ? { secret: { grantId: secretValue(secret, 'grantId'), expiresAt: secretValue(secret, 'expiresAt') } }
        : {}),
      ...(own.Role ? { role: grantIdOf(own.Role) } : {}),
      ...(own.RoleBinding ? { roleBinding: grantIdOf(own.RoleBinding) } : {}),
    };
  }
}

/**
 * Which Manual policy may allow this request (see DecisionInput.approvedPolicy): the one an
 * approver approved under, bound to its generation until the grant is issued; none for a grant
 * issued without approval; any while no approver has decided.
 */
export function approvedPolicy(request: AccessRequest): DecisionInput['approvedPolicy'] {
  const status = request.status ?? {};
  const approval = status.approval;
  // An approver's Approved condition; hourglass's own (reason PolicyAllowed) marks an Automatic grant.
  const condition = findCondition(status.conditions, 'Approved');
  const approved = condition !== undefined && condition.reason !== 'PolicyAllowed';
  const uid = approval?.policyUID ?? status.policy?.uid;
  const ref = approval?.policy ?? `${status.policy?.kind}/${status.policy?.name}`;
  if (status.phase === 'Granted') return approved && uid ? { ref, uid } : 'none';
  if (!approved || !uid) return 'any';
  return { ref, uid, generation: approval?.policyGeneration ?? status.policy?.generation };
}
