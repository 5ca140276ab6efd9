import { randomUUID } from 'node:crypto';
import type {
  KubernetesObject,
  V1Job,
  V1ManagedFieldsEntry,
  V1Namespace,
  V1Pod,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import {
  annotations,
  FINALIZER,
  grantObjectNames,
  labels,
  type AccessRequest,
  type AccessRequestStatus,
  type AnyAccessPolicy,
  type RevocationReason,
} from '../../api/types.ts';
import type { Auditor } from '../../audit/audit.ts';
import { isAlreadyExists, isForbidden, statusMessage } from '../../k8s/errors.ts';
import type { GrantObject, GrantObjectKind, GrantObjectStore } from '../../k8s/grant-store.ts';
import type { AccessRequestClient } from '../../k8s/resources.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import { decide, type Decision } from '../../policy/decide.ts';
import { boundPod, requesterPodOf } from '../../policy/requesters.ts';
import type { GrantTokenClaims } from '../../tokens/grant-token.ts';
import { setCondition } from '../conditions.ts';
import {
  grantLabels,
  grantRole,
  grantRoleBinding,
  grantSecret,
  secretData,
  secretValue,
  type Issuance,
} from './grant-objects.ts';
import { lifetimeEndOf, plan, type GrantObjects, type Observed, type Plan, type Revocation } from './plan.ts';
import { workloadOfJob, workloadOfPod, type Workload } from './subject.ts';

type Allowed = Extract<Decision, { allowed: true }>;

export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
}

/** A cache that takes this process's own writes at once (see SupervisedInformer.recordWrite). */
export interface WrittenCache<T> extends ObjectCache<T> {
  recordWrite(obj: T): void;
  recordDeletion(obj: T): void;
}

export interface Caches {
  requests: WrittenCache<AccessRequest>;
  pods: ObjectCache<V1Pod>;
  jobs: ObjectCache<V1Job>;
  serviceAccounts: ObjectCache<V1ServiceAccount>;
  namespaces: ObjectCache<V1Namespace>;
  policies: ObjectCache<AnyAccessPolicy>;
  clusterPolicies: ObjectCache<AnyAccessPolicy>;
  secrets: WrittenCache<V1Secret>;
  roles: WrittenCache<V1Role>;
  roleBindings: WrittenCache<V1RoleBinding>;
}

export interface ReconcilerDeps {
  caches: Caches;
  requests: AccessRequestClient;
  grantObjects: GrantObjectStore;
  signToken: (claims: Omit<GrantTokenClaims, 'issuer'>) => Promise<string>;
  /** Marks a grant id inactive for introspection until its token would have expired. */
  recordRevoked: (grantId: string, expiresAt: Date) => void;
  isNamespaced: (group: string, resource: string) => boolean | undefined;
  controllerNamespace: string;
  signingKeySecretName: string;
  auditor: Auditor;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
  /** Final requests are deleted this long after they ended; undefined keeps them. */
  retainForMs?: number;
  /** Reads an object from the API server, undefined when it does not exist. */
  readLive: (
    kind: 'Pod' | 'Job' | 'ServiceAccount',
    namespace: string,
    name: string,
  ) => Promise<KubernetesObject | undefined>;
  /** UIDs of the requests Granted to this service account now, as the request cache has them. */
  grantedRequests: (namespace: string, serviceAccountName: string) => ReadonlySet<string>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

class NameConflict extends Error {}
class BeyondCeiling extends Error {}
/** An object of ours exists that the cache has not shown yet: retried once the cache catches up. */
class CacheBehind extends Error {}

const KINDS: GrantObjectKind[] = ['Secret', 'Role', 'RoleBinding'];

/** A managedFields entry of a field manager that set annotations (renew, revoke): who asked. */
export const setsAnnotations = (entry: V1ManagedFieldsEntry): boolean =>
  JSON.stringify(entry.fieldsV1 ?? {}).includes('"f:annotations"');

/** Reconciles one AccessRequest, by key "namespace/name", towards what plan() decides. */
export class AccessRequestReconciler {
  readonly #d: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    let request = this.#d.caches.requests.get(namespace, name);
    if (!request) {
      await this.#deleteObjectsOfMissingRequest(namespace, name);
      return {};
    }
    await this.#deleteStaleObjects(request);
    for (let step = 0; step < 2; step++) {
      const next = plan(this.observe(request));
      if (next.action !== 'addFinalizer') return this.#apply(request, next);
      request = this.#wrote(
        await this.#d.requests.setFinalizers(request, [...(request.metadata.finalizers ?? []), FINALIZER]),
      );
    }
    return { requeueAfterMs: 0 };
  }

  /** Reads, from caches only, everything plan() needs. */
  observe(request: AccessRequest): Observed {
    const { caches } = this.#d;
    const now = this.#d.now();
    const { namespace } = request.metadata;
    const workload = this.#workload(request);
    const serviceAccount = workload && caches.serviceAccounts.get(namespace, workload.serviceAccountName);
    const decision = this.#decide(request, workload);
    return {
      request,
      now,
      workload,
      serviceAccountUid: serviceAccount?.metadata?.uid,
      grantObjects: this.#grantObjects(request),
      decision,
      recordedPolicy: this.#recordedPolicyState(request),
      ...(this.#d.retainForMs === undefined ? {} : { retainForMs: this.#d.retainForMs }),
    };
  }

  #workload(request: AccessRequest): Workload | undefined {
    const { namespace } = request.metadata;
    const { podName, jobName } = request.spec.subject;
    if (podName) {
      const pod = this.#d.caches.pods.get(namespace, podName);
      return pod && !pod.metadata?.deletionTimestamp ? workloadOfPod(pod) : undefined;
    }
    const job = jobName ? this.#d.caches.jobs.get(namespace, jobName) : undefined;
    return job && !job.metadata?.deletionTimestamp ? workloadOfJob(job) : undefined;
  }

  #decide(request: AccessRequest, workload: Workload | undefined): Decision {
    const { caches } = this.#d;
    const { namespace } = request.metadata;
    const serviceAccountName =
      workload?.serviceAccountName ?? request.status?.subject?.serviceAccountName ?? '';
    const granted = request.status?.phase === 'Granted';
    const { podName, jobName } = request.spec.subject;
    const namespaceObject = caches.namespaces.get('', namespace);
    return decide({
      request,
      subject: { serviceAccountName, labels: workload?.labels ?? {} },
      namespaceLabels: namespaceObject?.metadata?.labels ?? {},
      policies: [...caches.policies.list(namespace), ...caches.clusterPolicies.list()],
      // The cap on live grants is checked when issuing, not again for a grant already live.
      activeGrants: granted ? 0 : this.#activeGrants(request, serviceAccountName),
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
        now: this.#d.now(),
      },
    });
  }

  /** The pod a pod-bound requester token names, as the pod cache has it. */
  #requesterPod(request: AccessRequest) {
    const bound = boundPod(request.spec.requester);
    const pod = bound && this.#d.caches.pods.get(request.metadata.namespace, bound.name);
    return pod ? requesterPodOf(pod) : undefined;
  }

  #activeGrants(request: AccessRequest, serviceAccountName: string): number {
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
    return policy.metadata.generation === recorded.generation ? 'unchanged' : 'changed';
  }

  /** The cached grant objects of this request (labelled with its UID). */
  #ownObjects(request: AccessRequest): Partial<Record<GrantObjectKind, GrantObject>> {
    const { caches } = this.#d;
    const names = grantObjectNames(request.metadata.name);
    const { namespace, uid } = request.metadata;
    const own = <T extends GrantObject>(object: T | undefined) =>
      object?.metadata?.labels?.[labels.requestUid] === uid ? object : undefined;
    return {
      Secret: own(caches.secrets.get(namespace, names.secretName)),
      Role: own(caches.roles.get(namespace, names.roleName)),
      RoleBinding: own(caches.roleBindings.get(namespace, names.roleBindingName)),
    };
  }

  #grantObjects(request: AccessRequest): GrantObjects {
    const own = this.#ownObjects(request);
    const grantIdOf = (object: GrantObject | undefined) =>
      object ? { grantId: object.metadata?.labels?.[labels.grantId] } : undefined;
    const secret = own.Secret as V1Secret | undefined;
    return {
      ...(secret
        ? { secret: { grantId: secretValue(secret, 'grantId'), expiresAt: secretValue(secret, 'expiresAt') } }
        : {}),
      ...(own.Role ? { role: grantIdOf(own.Role) } : {}),
      ...(own.RoleBinding ? { roleBinding: grantIdOf(own.RoleBinding) } : {}),
    };
  }

  async #apply(request: AccessRequest, next: Plan): Promise<ReconcileResult> {
    if (!request.status?.phase && ['conclude', 'awaitApproval', 'issue'].includes(next.action)) {
      this.#d.auditor.record('request.received', request, {
        reason: 'Received',
        message: `Received request for ${request.spec.subject.podName ? `pod ${request.spec.subject.podName}` : `Job ${request.spec.subject.jobName}`}`,
        ...(request.spec.requester?.username ? { actor: request.spec.requester.username } : {}),
      });
    }
    const approval = request.status?.approval;
    if (
      approval?.by &&
      request.status?.phase === 'AwaitingApproval' &&
      ['conclude', 'issue'].includes(next.action)
    ) {
      this.#d.auditor.record('approval', request, {
        reason: approval.decision ?? 'Approved',
        message: `${approval.decision} by ${approval.by} under ${approval.policy ?? 'the policy'}`,
        approver: approval.by,
      });
    }
    switch (next.action) {
      case 'wait':
        return next.requeueAfterMs === undefined ? {} : { requeueAfterMs: next.requeueAfterMs };
      case 'addFinalizer':
        return { requeueAfterMs: 0 };
      case 'finalize':
        if (next.revocation) await this.#revoke(request, next.revocation, { writeStatus: false });
        else await this.#deleteGrantObjects(request);
        await this.#removeFinalizer(request);
        return {};
      case 'cleanup':
        await this.#deleteGrantObjects(request);
        return {};
      case 'delete':
        // Retention: the audit log is the lasting record; the finalizer clears on the next pass.
        await this.#d.requests.delete(request);
        this.#d.log.info('Deleted final AccessRequest after its retention', {
          request: `${request.metadata.namespace}/${request.metadata.name}`,
          phase: request.status?.phase,
        });
        return {};
      case 'conclude':
        if (next.reason === 'SubjectNotFound' && (await this.#subjectCacheBehind(request)))
          return { requeueAfterMs: 200 };
        await this.#conclude(request, next.phase, next.reason, next.message);
        return {};
      case 'awaitApproval':
        await this.#awaitApproval(request, next.decision);
        return { requeueAfterMs: next.requeueAfterMs };
      case 'issue':
        return this.#issue(request, next.decision);
      case 'renew':
        return this.#renew(request, next.decision, next.renewValue);
      case 'rejectRenewal':
        return this.#rejectRenewal(request, next.renewValue, next.message);
      case 'revoke':
        await this.#revoke(request, next.revocation, { writeStatus: true });
        return {};
      case 'repair':
        await this.#repair(request);
        return { requeueAfterMs: next.requeueAfterMs };
    }
  }

  #subjectStatus(request: AccessRequest, workload: Workload | undefined): AccessRequestStatus['subject'] {
    const pinned = request.status?.subject ?? {};
    if (!workload) return pinned;
    const saUid = this.#d.caches.serviceAccounts.get(request.metadata.namespace, workload.serviceAccountName)
      ?.metadata?.uid;
    return {
      ...pinned,
      serviceAccountName: workload.serviceAccountName,
      ...(saUid ? { serviceAccountUID: saUid } : {}),
      ...(workload.kind === 'Pod'
        ? { podName: workload.name, podUID: workload.uid }
        : { jobName: workload.name, jobUID: workload.uid }),
      ref: `${workload.kind.toLowerCase()}/${workload.name}`,
    };
  }

  async #writeStatus(request: AccessRequest, status: AccessRequestStatus): Promise<AccessRequest> {
    return this.#wrote(
      await this.#d.requests.patchStatus(request, {
        ...status,
        observedGeneration: request.metadata.generation ?? 1,
      }),
    );
  }

  /** Every write's answer goes into the cache, so the next reconcile never acts on older state. */
  #wrote(request: AccessRequest): AccessRequest {
    this.#d.caches.requests.recordWrite(request);
    return request;
  }

  async #removeFinalizer(request: AccessRequest): Promise<void> {
    const after = await this.#d.requests.removeFinalizer(request, FINALIZER);
    if (!after) return;
    if (after.metadata.deletionTimestamp && !after.metadata.finalizers?.length)
      this.#d.caches.requests.recordDeletion(after);
    else this.#wrote(after);
  }

  #cacheOf(kind: GrantObjectKind): WrittenCache<GrantObject> {
    const { secrets, roles, roleBindings } = this.#d.caches;
    return { Secret: secrets, Role: roles, RoleBinding: roleBindings }[kind] as WrittenCache<GrantObject>;
  }

  async #createGrantObject(kind: GrantObjectKind, namespace: string, body: GrantObject): Promise<void> {
    this.#cacheOf(kind).recordWrite(await this.#d.grantObjects.create(kind, namespace, body));
  }

  async #patchGrantObject(kind: GrantObjectKind, namespace: string, name: string, body: object) {
    this.#cacheOf(kind).recordWrite(await this.#d.grantObjects.patch(kind, namespace, name, body));
  }

  async #deleteGrantObject(kind: GrantObjectKind, object: GrantObject): Promise<void> {
    const { namespace = '', name = '', uid = '' } = object.metadata ?? {};
    await this.#d.grantObjects.delete(kind, namespace, name, uid);
    this.#cacheOf(kind).recordDeletion(object);
  }

  async #conclude(request: AccessRequest, phase: 'Denied' | 'Failed', reason: string, message: string) {
    const now = this.#d.now();
    const status = request.status ?? {};
    const workload = this.#workload(request);
    let conditions = status.conditions;
    if (phase === 'Denied')
      conditions = setCondition(conditions, { type: 'Denied', status: 'True', reason, message }, now);
    await this.#writeStatus(request, {
      ...status,
      phase,
      reason,
      conditions,
      subject: this.#subjectStatus(request, workload),
      decision: phase === 'Denied' ? message : (status.decision ?? message),
    });
    if (phase === 'Denied') {
      this.#d.metrics.decisions.inc({ decision: 'denied' });
      this.#d.auditor.record('decision', request, {
        reason,
        message: `Denied request: ${message}`,
        decision: message,
        warning: true,
      });
    } else {
      this.#d.auditor.record('request.failed', request, {
        reason,
        message: `Failed request: ${message}`,
        warning: true,
      });
    }
  }

  #policyRef(policy: AnyAccessPolicy): NonNullable<AccessRequestStatus['policy']> {
    return {
      kind: policy.kind,
      name: policy.metadata.name,
      ...(policy.kind === 'AccessPolicy' ? { namespace: policy.metadata.namespace } : {}),
      uid: policy.metadata.uid,
      generation: policy.metadata.generation ?? 1,
    };
  }

  async #awaitApproval(request: AccessRequest, decision: Allowed) {
    if (request.status?.phase === 'AwaitingApproval') return;
    await this.#writeStatus(request, {
      ...request.status,
      phase: 'AwaitingApproval',
      reason: 'AwaitingApproval',
      subject: this.#subjectStatus(request, this.#workload(request)),
      policy: this.#policyRef(decision.policy),
      decision: decision.message,
    });
    this.#d.auditor.record('decision', request, {
      reason: 'AwaitingApproval',
      message: `Request awaits approval under ${decision.policy.kind}/${decision.policy.metadata.name}`,
      decision: decision.message,
    });
  }

  async #issue(request: AccessRequest, decision: Allowed): Promise<ReconcileResult> {
    const now = this.#d.now();
    const workload = this.#workload(request);
    if (!workload) throw new Error('unreachable: plan() issues only with a subject');
    // A Secret left by an issuance that a crash interrupted is continued, never issued twice.
    const leftover = this.#grantObjects(request).secret;
    if (leftover?.grantId) {
      // Either a crash interrupted this issuance, or the cache has not seen its status yet.
      const fresh = await this.#d.requests.get(request.metadata.namespace, request.metadata.name);
      if (fresh.status?.grant?.id === leftover.grantId) return { requeueAfterMs: 1000 };
    }
    const lifetimeEnds = new Date(now.getTime() + decision.maxLifetimeSeconds * 1000);
    const grantId = leftover?.grantId ?? randomUUID();
    const expiresAt = leftover?.expiresAt
      ? new Date(leftover.expiresAt)
      : new Date(Math.min(now.getTime() + decision.ttlSeconds * 1000, lifetimeEnds.getTime()));

    const issuance: Issuance = { request, workload, grantId, expiresAt };
    try {
      await this.#ensureGrantObjects(issuance, 0);
    } catch (error) {
      if (error instanceof NameConflict || error instanceof BeyondCeiling) {
        await this.#deleteGrantObjects(request, true);
        await this.#conclude(
          request,
          'Failed',
          error instanceof NameConflict ? 'NameConflict' : 'BeyondCeiling',
          error.message,
        );
        return {};
      }
      throw error;
    }

    const names = grantObjectNames(request.metadata.name);
    const approved = setCondition(
      request.status?.conditions,
      { type: 'Approved', status: 'True', reason: 'PolicyAllowed', message: decision.message },
      now,
    );
    const status: AccessRequestStatus = {
      ...request.status,
      phase: 'Granted',
      reason: 'Issued',
      conditions: setCondition(
        approved,
        { type: 'Granted', status: 'True', reason: 'Issued', message: `Grant ${grantId} issued.` },
        now,
      ),
      subject: this.#subjectStatus(request, workload),
      policy: this.#policyRef(decision.policy),
      decision: decision.message,
      firstIssuedAt: now.toISOString(),
      lifetimeEndsAt: lifetimeEnds.toISOString(),
      grant: { id: grantId, issuedAt: now.toISOString(), expiresAt: expiresAt.toISOString(), ...names },
      renewals: 0,
    };
    // Audited before the status write: a crash in between repeats the record (same grant id)
    // rather than losing it.
    const { metrics, auditor } = this.#d;
    const issued = { ...request, status };
    auditor.record('decision', issued, {
      reason: 'PolicyAllowed',
      message: `Allowed request: ${decision.message}`,
      decision: decision.message,
    });
    auditor.record('grant.issued', issued, {
      reason: 'Issued',
      message: `Issued grant ${grantId} until ${expiresAt.toISOString()}`,
      grantId,
      expiresAt: expiresAt.toISOString(),
    });
    await this.#writeStatus(request, status);
    metrics.decisions.inc({ decision: 'allowed' });
    metrics.grantsIssued.inc();
    const created = Date.parse(String(request.metadata.creationTimestamp ?? now.toISOString()));
    metrics.grantLatency.observe(Math.max(0, (now.getTime() - created) / 1000));
    return { requeueAfterMs: expiresAt.getTime() - now.getTime() };
  }

  async #signedToken(issuance: Issuance, renewal: number): Promise<string | undefined> {
    const { request, workload } = issuance;
    const token = request.spec.token;
    if (!token) return undefined;
    return this.#d.signToken({
      namespace: request.metadata.namespace,
      serviceAccountName: workload.serviceAccountName,
      audience: token.audience[0] ?? '',
      grantId: issuance.grantId,
      issuedAt: this.#d.now(),
      expiresAt: issuance.expiresAt,
      request: {
        namespace: request.metadata.namespace,
        name: request.metadata.name,
        uid: request.metadata.uid,
      },
      purpose: request.spec.purpose,
      actions: token.actions,
      target: token.target,
      workload: { kind: workload.kind, name: workload.name, uid: workload.uid },
      renewal,
    });
  }

  /**
   * Makes the Secret, Role and RoleBinding of this issuance exist, in that order, creating what is
   * missing and updating what carries another grant id. Never adopts an object it does not own.
   */
  async #ensureGrantObjects(issuance: Issuance, renewal: number): Promise<void> {
    const { request } = issuance;
    const { namespace } = request.metadata;
    const own = this.#ownObjects(request);
    const cachedSecret = own.Secret as V1Secret | undefined;
    const secretCurrent = cachedSecret && secretValue(cachedSecret, 'grantId') === issuance.grantId;
    const token = secretCurrent ? undefined : await this.#signedToken(issuance, renewal);
    const desired: Record<GrantObjectKind, GrantObject> = {
      Secret: grantSecret({ ...issuance, ...(token ? { token } : {}) }),
      Role: grantRole(issuance),
      RoleBinding: grantRoleBinding(issuance),
    };
    for (const kind of KINDS) {
      const body = desired[kind];
      const name = body.metadata?.name ?? '';
      const cached = own[kind];
      if (
        cached?.metadata?.labels?.[labels.grantId] === issuance.grantId &&
        (kind !== 'Secret' || secretCurrent)
      )
        continue;
      if (cached) {
        await this.#patchGrantObject(kind, namespace, name, {
          metadata: { labels: grantLabels(request, issuance.grantId) },
          ...(kind === 'Secret' ? { data: secretData({ ...issuance, ...(token ? { token } : {}) }) } : {}),
        });
        continue;
      }
      try {
        await this.#createGrantObject(kind, namespace, body);
      } catch (error) {
        if (isForbidden(error) && kind !== 'Secret') {
          throw new BeyondCeiling(
            `hourglass itself does not hold what the ${kind} would grant: ${statusMessage(error)}`,
          );
        }
        if (!isAlreadyExists(error)) throw error;
        const existing = await this.#d.grantObjects.read(kind, namespace, name);
        if (existing?.metadata?.labels?.[labels.requestUid] !== request.metadata.uid) {
          throw new NameConflict(`${kind} "${name}" already exists and is not hourglass's to use.`);
        }
        throw new CacheBehind(`${kind} "${namespace}/${name}" exists but is not cached yet`);
      }
    }
  }

  async #renew(request: AccessRequest, decision: Allowed, renewValue: string): Promise<ReconcileResult> {
    const now = this.#d.now();
    const status = request.status ?? {};
    const workload = this.#workload(request);
    if (!workload || !status.grant?.id) throw new Error('unreachable: plan() renews only a live grant');
    const oldId = status.grant.id;
    const oldExpiry = new Date(status.grant.expiresAt ?? now.toISOString());
    const lifetimeEnds = lifetimeEndOf(status, decision);
    const grantId = randomUUID();
    const expiresAt = new Date(Math.min(now.getTime() + decision.ttlSeconds * 1000, lifetimeEnds));
    const renewals = (status.renewals ?? 0) + 1;
    // The new id is recorded before its token is signed: the old token is inactive from here on,
    // and no token exists that status does not know of.
    const updated = await this.#writeStatus(request, {
      ...status,
      reason: 'Renewed',
      conditions: setCondition(
        status.conditions,
        {
          type: 'Granted',
          status: 'True',
          reason: 'Renewed',
          message: `Grant ${grantId} replaced ${oldId}.`,
        },
        now,
      ),
      policy: this.#policyRef(decision.policy),
      decision: decision.message,
      grant: {
        ...status.grant,
        id: grantId,
        issuedAt: now.toISOString(),
        expiresAt: expiresAt.toISOString(),
      },
      renewals,
      lastRenewal: renewValue,
    });
    this.#d.recordRevoked(oldId, oldExpiry);
    await this.#ensureGrantObjects({ request: updated, workload, grantId, expiresAt }, renewals);
    const { metrics, auditor } = this.#d;
    metrics.grantsRevoked.inc({ reason: 'Renewed' });
    metrics.grantsIssued.inc();
    auditor.record('grant.revoked', request, {
      reason: 'Renewed',
      message: `Revoked grant ${oldId}: renewed`,
      grantId: oldId,
      actor: this.#annotationManager(request),
    });
    auditor.record('grant.renewed', updated, {
      reason: 'Renewed',
      message: `Renewed grant as ${grantId} until ${expiresAt.toISOString()}`,
      grantId,
      expiresAt: expiresAt.toISOString(),
      actor: this.#annotationManager(request),
    });
    return { requeueAfterMs: expiresAt.getTime() - now.getTime() };
  }

  async #rejectRenewal(
    request: AccessRequest,
    renewValue: string,
    message: string,
  ): Promise<ReconcileResult> {
    const now = this.#d.now();
    const status = request.status ?? {};
    await this.#writeStatus(request, {
      ...status,
      lastRenewal: renewValue,
      conditions: setCondition(
        status.conditions,
        { type: 'Renewed', status: 'False', reason: 'RenewalRefused', message },
        now,
      ),
    });
    this.#d.auditor.record('decision', request, {
      reason: 'RenewalRefused',
      message,
      warning: true,
      actor: this.#annotationManager(request),
    });
    return { requeueAfterMs: Date.parse(status.grant?.expiresAt ?? '') - now.getTime() };
  }

  /**
   * Whether the API server has the subject (or its service account) in a newer state than the
   * cache: a pod created just before its request may not have reached the cache yet.
   */
  async #subjectCacheBehind(request: AccessRequest): Promise<boolean> {
    const { namespace } = request.metadata;
    const { podName, jobName } = request.spec.subject;
    const kind = podName ? 'Pod' : 'Job';
    const name = podName ?? jobName ?? '';
    const cache = podName ? this.#d.caches.pods : this.#d.caches.jobs;
    const live = await this.#d.readLive(kind, namespace, name);
    if (live && live.metadata?.uid !== cache.get(namespace, name)?.metadata?.uid) return true;
    const serviceAccountName =
      (live as V1Pod | undefined)?.spec?.serviceAccountName ??
      (live as V1Job | undefined)?.spec?.template?.spec?.serviceAccountName;
    if (!live || !serviceAccountName || this.#d.caches.serviceAccounts.get(namespace, serviceAccountName))
      return false;
    return (await this.#d.readLive('ServiceAccount', namespace, serviceAccountName)) !== undefined;
  }

  /** The field manager that last set the annotations: the best record of who asked, short of admission. */
  #annotationManager(request: AccessRequest): string | undefined {
    const entry = request.metadata.managedFields?.filter(setsAnnotations).at(-1);
    return entry?.manager;
  }

  async #repair(request: AccessRequest) {
    const status = request.status ?? {};
    const workload = this.#workload(request);
    if (!workload || !status.grant?.id) return;
    await this.#ensureGrantObjects(
      { request, workload, grantId: status.grant.id, expiresAt: new Date(status.grant.expiresAt ?? '') },
      status.renewals ?? 0,
    );
    this.#d.log.info('Repaired grant objects', {
      request: `${request.metadata.namespace}/${request.metadata.name}`,
      grantId: status.grant.id,
    });
  }

  async #revoke(request: AccessRequest, revocation: Revocation, { writeStatus }: { writeStatus: boolean }) {
    const now = this.#d.now();
    const status = request.status ?? {};
    await this.#deleteGrantObjects(request);
    const grantId = status.grant?.id;
    const expiresAt = status.grant?.expiresAt ? new Date(status.grant.expiresAt) : now;
    if (grantId) this.#d.recordRevoked(grantId, expiresAt);
    if (writeStatus) {
      const phase = revocation.reason === 'Expired' ? 'Expired' : 'Revoked';
      await this.#writeStatus(request, {
        ...status,
        phase,
        reason: revocation.reason,
        conditions: setCondition(
          status.conditions,
          { type: 'Granted', status: 'False', reason: revocation.reason, message: revocation.message },
          now,
        ),
        revocation: { reason: revocation.reason, at: now.toISOString(), message: revocation.message },
      });
    }
    const { metrics, auditor } = this.#d;
    metrics.grantsRevoked.inc({ reason: revocation.reason });
    const triggeredAt = this.#triggerTime(request, revocation.reason, expiresAt);
    if (triggeredAt)
      metrics.revocationLag.observe(Math.max(0, (now.getTime() - triggeredAt.getTime()) / 1000));
    auditor.record('grant.revoked', request, {
      reason: revocation.reason,
      message: `Revoked grant ${grantId ?? ''}: ${revocation.message}`,
      ...(grantId ? { grantId } : {}),
      ...(revocation.reason === 'Manual' ? { actor: this.#annotationManager(request) } : {}),
    });
  }

  #triggerTime(request: AccessRequest, reason: RevocationReason, expiresAt: Date): Date | undefined {
    if (reason === 'Expired') return expiresAt;
    if (reason === 'JobFinished' && request.spec.subject.jobName) {
      const job = this.#d.caches.jobs.get(request.metadata.namespace, request.spec.subject.jobName);
      const done = job?.status?.conditions?.find(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      );
      return done?.lastTransitionTime ? new Date(done.lastTransitionTime) : undefined;
    }
    if (reason === 'RequestDeleted' && request.metadata.deletionTimestamp)
      return new Date(request.metadata.deletionTimestamp);
    return undefined;
  }

  /** Deletes this request's grant objects in reverse order of creation. */
  async #deleteGrantObjects(request: AccessRequest, fresh = false): Promise<void> {
    const own = fresh ? await this.#readOwnObjects(request) : this.#ownObjects(request);
    for (const kind of [...KINDS].reverse()) {
      const object = own[kind];
      if (object?.metadata?.name && object.metadata.uid) {
        await this.#deleteGrantObject(kind, object);
      }
    }
  }

  async #readOwnObjects(request: AccessRequest): Promise<Partial<Record<GrantObjectKind, GrantObject>>> {
    const names = grantObjectNames(request.metadata.name);
    const nameOf: Record<GrantObjectKind, string> = {
      Secret: names.secretName,
      Role: names.roleName,
      RoleBinding: names.roleBindingName,
    };
    const own: Partial<Record<GrantObjectKind, GrantObject>> = {};
    for (const kind of KINDS) {
      const object = await this.#d.grantObjects.read(kind, request.metadata.namespace, nameOf[kind]);
      if (object?.metadata?.labels?.[labels.requestUid] === request.metadata.uid) own[kind] = object;
    }
    return own;
  }

  /** Objects of an earlier request of the same name (another UID) are leftovers. */
  async #deleteStaleObjects(request: AccessRequest): Promise<void> {
    await this.#deleteManaged(request.metadata.namespace, request.metadata.name, request.metadata.uid);
  }

  async #deleteObjectsOfMissingRequest(namespace: string, name: string): Promise<void> {
    await this.#deleteManaged(namespace, name, undefined);
  }

  /** Deletes the objects named for this request that another request of that name (or none) left. */
  async #deleteManaged(namespace: string, requestName: string, keepUid: string | undefined) {
    const { caches } = this.#d;
    const names = grantObjectNames(requestName);
    const named: Record<GrantObjectKind, GrantObject | undefined> = {
      RoleBinding: caches.roleBindings.get(namespace, names.roleBindingName),
      Role: caches.roles.get(namespace, names.roleName),
      Secret: caches.secrets.get(namespace, names.secretName),
    };
    for (const kind of ['RoleBinding', 'Role', 'Secret'] as const) {
      const object = named[kind];
      const objectLabels = object?.metadata?.labels ?? {};
      if (
        !object ||
        objectLabels[labels.request] !== requestName ||
        objectLabels[labels.requestUid] === keepUid
      )
        continue;
      await this.#deleteGrantObject(kind, object);
      this.#d.log.info('Deleted orphaned grant object', {
        kind,
        namespace,
        name: object.metadata?.name,
        grantId: objectLabels[labels.grantId],
      });
    }
  }
}
