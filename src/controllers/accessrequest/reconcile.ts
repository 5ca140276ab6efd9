import { randomUUID } from 'node:crypto';
import {
  annotations,
  FINALIZER,
  type AccessRequest,
  type AccessRequestStatus,
  type RevocationReason,
} from '../../api/types.ts';
import type { Auditor } from '../../audit/audit.ts';
import type { AccessRequestClient } from '../../k8s/resources.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import type { Allowed } from '../../policy/decide.ts';
import { GRANT_KINDS, issuanceOf, recordedUids, uidFields } from './grant-objects.ts';
import { BeyondCeiling, NameConflict, type GrantObjectPort } from './grant-object-port.ts';
import { liveCaches, type LiveReader } from './live.ts';
import { RequestObserver, type ObserverDeps } from './observe.ts';
import { lifetimeEndOf, plan, type Plan, type Revocation } from './plan.ts';
import {
  awaitingApprovalStatus,
  awaitingSubjectStatus,
  concludedStatus,
  grantedStatus,
  issuingStatus,
  renewalRefusedStatus,
  renewedStatus,
  revokedStatus,
  subjectStatus,
} from './status.ts';
import type { Workload } from './subject.ts';

export type { Caches, ObjectCache, WrittenCache } from './caches.ts';

export interface ReconcilerDeps extends ObserverDeps, LiveReader {
  requests: AccessRequestClient;
  grantObjects: GrantObjectPort;
  /** Marks a grant id inactive for introspection until its token would have expired. */
  recordRevoked: (grantId: string, expiresAt: Date) => void;
  auditor: Auditor;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
}

/** How soon a request is planned again when its caches were found behind the API server. */
const CACHE_BEHIND_REQUEUE_MS = 200;

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** Reconciles one AccessRequest, by key "namespace/name", towards what plan() decides. */
export class AccessRequestReconciler {
  readonly #d: ReconcilerDeps;
  readonly #observerDeps: ObserverDeps;
  readonly observer: RequestObserver;
  /**
   * "namespace/serviceAccount" → UIDs of requests whose issuance intent is being written: they
   * count against maxActivePerSubject until the cache holds the write.
   */
  readonly #reserved = new Map<string, Set<string>>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
    this.#observerDeps = {
      ...deps,
      grantedRequests: (namespace, serviceAccountName) => {
        const granted = deps.grantedRequests(namespace, serviceAccountName);
        const reserved = this.#reserved.get(`${namespace}/${serviceAccountName}`);
        return reserved ? new Set([...granted, ...reserved]) : granted;
      },
    };
    this.observer = new RequestObserver(this.#observerDeps);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    let request = this.#d.caches.requests.get(namespace, name);
    await this.#d.grantObjects.deleteLeftovers(namespace, name, request?.metadata.uid);
    if (!request) return {};
    const now = this.#d.now();
    for (let step = 0; step < 2; step++) {
      const next = plan(this.observer.observe(request, now));
      if (next.action !== 'addFinalizer') return this.#apply(request, next, now);
      request = this.#wrote(
        await this.#d.requests.setFinalizers(request, [...(request.metadata.finalizers ?? []), FINALIZER]),
      );
    }
    return { requeueAfterMs: 0 };
  }

  async #apply(request: AccessRequest, next: Plan, now: Date): Promise<ReconcileResult> {
    this.#auditArrival(request, next);
    switch (next.action) {
      case 'wait':
        return next.requeueAfterMs === undefined ? {} : { requeueAfterMs: next.requeueAfterMs };
      case 'addFinalizer':
        return { requeueAfterMs: 0 };
      case 'finalize':
        if (next.revocation) await this.#revoke(request, next.revocation, now, { writeStatus: false });
        else await this.#d.grantObjects.deleteCached(request);
        await this.#removeFinalizer(request);
        return {};
      case 'cleanup':
        await this.#d.grantObjects.deleteCached(request);
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
      case 'awaitSubject':
        return this.#decideFromLive(request, next, now);
      case 'awaitApproval':
        await this.#awaitApproval(request, next.decision);
        return { requeueAfterMs: next.requeueAfterMs };
      case 'issue':
        return this.#issue(request, now);
      case 'renew':
        return this.#renew(request, next.decision, next.renewValue, now);
      case 'rejectRenewal':
        return this.#rejectRenewal(request, next.renewValue, next.message, now);
      case 'revoke':
        await this.#revoke(request, next.revocation, now, { writeStatus: true });
        return {};
      case 'repair':
        return this.#repair(request, now, next.requeueAfterMs);
    }
  }

  /** The first decision on a request, and an approver's decision, are on record once each. */
  #auditArrival(request: AccessRequest, next: Plan): void {
    const status = request.status;
    const deciding = ['conclude', 'awaitApproval', 'issue'].includes(next.action);
    if (!status?.phase && deciding) {
      const { podName, jobName } = request.spec.subject;
      this.#d.auditor.log('request.received', request, {
        reason: 'Received',
        message: `Received request for ${podName ? `pod ${podName}` : `Job ${jobName}`}`,
        ...(request.spec.requester?.username ? { actor: request.spec.requester.username } : {}),
      });
    }
    const approval = status?.approval;
    if (approval?.by && status?.phase === 'AwaitingApproval' && !status.grant?.id && deciding) {
      this.#d.auditor.record('approval', request, {
        reason: approval.decision ?? 'Approved',
        message: `${approval.decision} by ${approval.by} under ${approval.policy ?? 'the policy'}`,
        approver: approval.by,
      });
    }
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

  #subjectStatus(request: AccessRequest, workload: Workload | undefined) {
    const saUid =
      workload &&
      this.#d.caches.serviceAccounts.get(request.metadata.namespace, workload.serviceAccountName)?.metadata
        ?.uid;
    return subjectStatus(request, workload, saUid);
  }

  /**
   * A final outcome (and the wait for a subject) is decided again from live reads of everything
   * it rests on, never from the caches alone: an informer may not have delivered an object that
   * exists, or deliver it while it is being read. When the live plan differs, the caches are
   * behind the API server and the request is planned again shortly, from caches that caught up.
   */
  async #decideFromLive(request: AccessRequest, next: Plan, now: Date): Promise<ReconcileResult> {
    // The subject first, on its own: a pod created just before its request is the common lag.
    for (const scope of ['subject', 'all'] as const) {
      const caches = await liveCaches(this.#d.caches, request, this.#d, scope);
      const live = new RequestObserver({ ...this.#observerDeps, caches });
      const confirmed = plan(live.observe(request, now));
      if (confirmed.action !== next.action) return { requeueAfterMs: CACHE_BEHIND_REQUEUE_MS };
      if (scope === 'subject') continue;
      if (confirmed.action === 'conclude') {
        await this.#conclude(request, confirmed, now, { workload: live.workload(request) });
        return {};
      }
      if (confirmed.action === 'awaitSubject') {
        await this.#awaitSubject(request, confirmed.message, now);
        return { requeueAfterMs: confirmed.requeueAfterMs };
      }
    }
    return { requeueAfterMs: CACHE_BEHIND_REQUEUE_MS };
  }

  /** Pending until the subject is created: said once in status and in one Event; nothing issued. */
  async #awaitSubject(request: AccessRequest, message: string, now: Date): Promise<void> {
    if (request.status?.reason === 'AwaitingSubject') return;
    await this.#writeStatus(request, awaitingSubjectStatus(request, message, now));
    this.#d.auditor.record('decision', request, { reason: 'AwaitingSubject', message });
  }

  async #conclude(
    request: AccessRequest,
    outcome: { phase: 'Denied' | 'Failed'; reason: string; message: string },
    now: Date,
    { abandonIssuance = true, workload = this.observer.workload(request) } = {},
  ): Promise<void> {
    // An issuance interrupted before it completed leaves nothing behind.
    if (abandonIssuance) await this.#d.grantObjects.delete(request);
    const subject = this.#subjectStatus(request, workload);
    await this.#writeStatus(request, concludedStatus(request, outcome, subject, now));
    const { phase, reason, message } = outcome;
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

  /** Awaits an approver of the policy that would allow the request now; a new policy is recorded. */
  async #awaitApproval(request: AccessRequest, decision: Allowed) {
    const recorded = request.status?.policy;
    if (
      request.status?.phase === 'AwaitingApproval' &&
      recorded?.uid === decision.policy.metadata.uid &&
      recorded.generation === (decision.policy.metadata.generation ?? 1)
    )
      return;
    const subject = this.#subjectStatus(request, this.observer.workload(request));
    await this.#writeStatus(request, awaitingApprovalStatus(request, decision, subject));
    this.#d.auditor.record('decision', request, {
      reason: 'AwaitingApproval',
      message: `Request awaits approval under ${decision.policy.kind}/${decision.policy.metadata.name}`,
      decision: decision.message,
    });
  }

  /**
   * Issues in two steps: the intent (grant id, expiry) goes to status first, then the objects are
   * created and their UIDs recorded. A crash in between resumes from status.
   */
  async #issue(request: AccessRequest, now: Date): Promise<ReconcileResult> {
    const workload = this.observer.workload(request);
    if (!workload) throw new Error('unreachable: plan() issues only with a subject');
    const resumed = Boolean(request.status?.grant?.id);
    const issuing = resumed ? request : await this.#recordIntent(request, workload, now);
    if (!issuing) return { requeueAfterMs: 0 };
    let uids;
    try {
      uids = await this.#d.grantObjects.create(issuanceOf(issuing, workload), { resumed });
    } catch (error) {
      if (!(error instanceof NameConflict || error instanceof BeyondCeiling)) throw error;
      const reason = error instanceof NameConflict ? 'NameConflict' : 'BeyondCeiling';
      // create() took back what it had created; what stands in the way is not hourglass's.
      await this.#conclude(issuing, { phase: 'Failed', reason, message: error.message }, now, {
        abandonIssuance: false,
      });
      return {};
    }
    const issued = { ...issuing, status: grantedStatus(issuing, uids, now) };
    const grant = issued.status.grant ?? {};
    const policy = issued.status.policy;
    // Audited before the status write: a crash in between repeats the record (same grant id)
    // rather than losing it.
    const { metrics, auditor } = this.#d;
    auditor.log('decision', issued, {
      reason: 'PolicyAllowed',
      message: `Allowed request: ${issued.status.decision}`,
      decision: issued.status.decision ?? '',
    });
    auditor.record('grant.issued', issued, {
      reason: 'Issued',
      message: `Issued grant ${grant.id} until ${grant.expiresAt} under ${policy?.kind}/${policy?.name}`,
      ...(grant.id ? { grantId: grant.id } : {}),
      ...(grant.expiresAt ? { expiresAt: grant.expiresAt } : {}),
    });
    await this.#writeStatus(issuing, issued.status);
    metrics.decisions.inc({ decision: 'allowed' });
    metrics.grantsIssued.inc();
    const created = Date.parse(String(request.metadata.creationTimestamp ?? now.toISOString()));
    metrics.grantLatency.observe(Math.max(0, (now.getTime() - created) / 1000));
    return { requeueAfterMs: Date.parse(grant.expiresAt ?? '') - now.getTime() };
  }

  /**
   * Decides again and records the intent of an issuance. From the decision to the moment the cache
   * holds the write, the request is reserved (without an await in between, so no other decision
   * of this process can slip in): the next decision counts it against maxActivePerSubject.
   * Undefined when the request changed, or no longer plans an issuance: the caller requeues.
   */
  async #recordIntent(
    request: AccessRequest,
    workload: Workload,
    now: Date,
  ): Promise<AccessRequest | undefined> {
    const { namespace, name, uid } = request.metadata;
    const current = this.#d.caches.requests.get(namespace, name);
    if (!current || current.metadata.resourceVersion !== request.metadata.resourceVersion) return undefined;
    const next = plan(this.observer.observe(current, now));
    if (next.action !== 'issue') return undefined;
    const { decision } = next;
    const lifetimeEndsAt = new Date(now.getTime() + decision.maxLifetimeSeconds * 1000);
    const expiresAt = new Date(
      Math.min(now.getTime() + decision.ttlSeconds * 1000, lifetimeEndsAt.getTime()),
    );
    const subject = this.#subjectStatus(current, workload);
    const terms = { decision, grantId: randomUUID(), expiresAt, lifetimeEndsAt, subject };
    const key = `${namespace}/${workload.serviceAccountName}`;
    let reserved = this.#reserved.get(key);
    if (!reserved) this.#reserved.set(key, (reserved = new Set()));
    reserved.add(uid);
    try {
      return await this.#writeStatus(current, issuingStatus(current, terms, now));
    } finally {
      reserved.delete(uid);
      if (reserved.size === 0 && this.#reserved.get(key) === reserved) this.#reserved.delete(key);
    }
  }

  async #renew(
    request: AccessRequest,
    decision: Allowed,
    renewValue: string,
    now: Date,
  ): Promise<ReconcileResult> {
    const status = request.status ?? {};
    const workload = this.observer.workload(request);
    if (!workload || !status.grant?.id) throw new Error('unreachable: plan() renews only a live grant');
    const oldId = status.grant.id;
    const oldExpiry = new Date(status.grant.expiresAt ?? now.toISOString());
    const grantId = randomUUID();
    const expiresAt = new Date(
      Math.min(now.getTime() + decision.ttlSeconds * 1000, lifetimeEndOf(status, decision)),
    );
    // The new id is recorded before its token is signed: the old token is inactive from here on,
    // and no token exists that status does not know of.
    const renewed = await this.#writeStatus(
      request,
      renewedStatus(request, { decision, grantId, expiresAt, renewValue }, now),
    );
    this.#d.recordRevoked(oldId, oldExpiry);
    const { metrics, auditor } = this.#d;
    metrics.grantsRevoked.inc({ reason: 'Renewed' });
    const actor = request.metadata.annotations?.[annotations.renewRequestedBy];
    auditor.record('grant.revoked', request, {
      reason: 'Renewed',
      message: `Revoked grant ${oldId}: renewed`,
      grantId: oldId,
      actor,
    });
    const conflict = await this.#ensureObjects(renewed, workload);
    if (conflict) {
      await this.#revoke(renewed, conflict, now, { writeStatus: true });
      return {};
    }
    metrics.grantsIssued.inc();
    auditor.record('grant.renewed', renewed, {
      reason: 'Renewed',
      message: `Renewed grant as ${grantId} until ${expiresAt.toISOString()}`,
      grantId,
      expiresAt: expiresAt.toISOString(),
      actor,
    });
    return { requeueAfterMs: expiresAt.getTime() - now.getTime() };
  }

  async #rejectRenewal(
    request: AccessRequest,
    renewValue: string,
    message: string,
    now: Date,
  ): Promise<ReconcileResult> {
    await this.#writeStatus(request, renewalRefusedStatus(request, renewValue, message, now));
    this.#d.auditor.record('decision', request, {
      reason: 'RenewalRefused',
      message,
      warning: true,
      actor: request.metadata.annotations?.[annotations.renewRequestedBy],
    });
    return { requeueAfterMs: Date.parse(request.status?.grant?.expiresAt ?? '') - now.getTime() };
  }

  /**
   * Brings the recorded objects to what status says, recording the UIDs of any it had to create.
   * A recorded name held by an object hourglass did not create ends the grant (NameConflict).
   */
  async #ensureObjects(request: AccessRequest, workload: Workload): Promise<Revocation | undefined> {
    let uids;
    try {
      uids = await this.#d.grantObjects.ensure(issuanceOf(request, workload));
    } catch (error) {
      if (error instanceof NameConflict) return { reason: 'NameConflict', message: error.message };
      throw error;
    }
    const recorded = recordedUids(request.status?.grant);
    if (GRANT_KINDS.some((kind) => uids[kind] !== recorded[kind])) {
      const status = request.status ?? {};
      await this.#writeStatus(request, { ...status, grant: { ...status.grant, ...uidFields(uids) } });
    }
    return undefined;
  }

  async #repair(request: AccessRequest, now: Date, requeueAfterMs: number): Promise<ReconcileResult> {
    const workload = this.observer.workload(request);
    if (!workload || !request.status?.grant?.id) return { requeueAfterMs };
    const conflict = await this.#ensureObjects(request, workload);
    if (conflict) {
      await this.#revoke(request, conflict, now, { writeStatus: true });
      return {};
    }
    this.#d.log.info('Repaired grant objects', {
      request: `${request.metadata.namespace}/${request.metadata.name}`,
      grantId: request.status.grant.id,
    });
    return { requeueAfterMs };
  }

  async #revoke(
    request: AccessRequest,
    revocation: Revocation,
    now: Date,
    { writeStatus }: { writeStatus: boolean },
  ) {
    const status = request.status ?? {};
    await this.#d.grantObjects.delete(request);
    const grantId = status.grant?.id;
    const expiresAt = status.grant?.expiresAt ? new Date(status.grant.expiresAt) : now;
    if (grantId) this.#d.recordRevoked(grantId, expiresAt);
    if (writeStatus) await this.#writeStatus(request, revokedStatus(request, revocation, now));
    if (revocation.reason === 'NameConflict') {
      this.#d.log.warn('Revoked grant whose object was replaced', {
        request: `${request.metadata.namespace}/${request.metadata.name}`,
        message: revocation.message,
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
      ...(revocation.reason === 'Manual'
        ? { actor: request.metadata.annotations?.[annotations.revokeRequestedBy] }
        : {}),
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
}
