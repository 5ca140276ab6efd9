import {
  annotations,
  FINALIZER,
  TERMINAL_PHASES,
  type AccessRequest,
  type RevocationReason,
} from '../../api/types.ts';
import type { Decision } from '../../policy/decide.ts';
import { findCondition } from '../conditions.ts';
import type { Workload } from './subject.ts';

type Allowed = Extract<Decision, { allowed: true }>;

/** The grant objects of this request that exist now: only those whose UID status records count. */
export interface GrantObjects {
  secret?: { grantId?: string; expiresAt?: string };
  role?: { grantId?: string };
  roleBinding?: { grantId?: string };
}

/** Everything one reconcile of one AccessRequest looks at, read from caches before planning. */
export interface Observed {
  request: AccessRequest;
  now: Date;
  /** The subject pod or Job; undefined when it does not exist. */
  workload: Workload | undefined;
  /** The UID of the subject's service account; undefined when it does not exist. */
  serviceAccountUid: string | undefined;
  grantObjects: GrantObjects;
  /** The policy decision for this request as things are now. */
  decision: Decision;
  /** How the policy recorded in status has fared since: it decides PolicyChanged vs ContextChanged. */
  recordedPolicy: 'unchanged' | 'changed' | 'suspended' | 'gone';
  /** How long a final request is kept for audit before it is deleted; undefined keeps it. */
  retainForMs?: number;
  /**
   * How long after its creation a request waits for a subject that does not exist yet (and that
   * admission did not pin); undefined or 0 fails it at once.
   */
  awaitSubjectMs?: number;
}

export interface Revocation {
  reason: RevocationReason;
  message: string;
}

export type Plan =
  | { action: 'wait'; requeueAfterMs?: number }
  | { action: 'addFinalizer' }
  | { action: 'finalize'; revocation?: Revocation }
  | { action: 'cleanup' }
  | { action: 'delete' }
  | { action: 'conclude'; phase: 'Denied' | 'Failed'; reason: string; message: string }
  | { action: 'awaitSubject'; message: string; requeueAfterMs: number }
  | { action: 'awaitApproval'; decision: Allowed; requeueAfterMs: number }
  | { action: 'issue'; decision: Allowed }
  | { action: 'renew'; decision: Allowed; renewValue: string }
  | { action: 'rejectRenewal'; renewValue: string; message: string }
  | { action: 'revoke'; revocation: Revocation }
  | { action: 'repair'; requeueAfterMs: number };

const hasGrantObjects = (objects: GrantObjects) =>
  Boolean(objects.secret || objects.role || objects.roleBinding);

/** Status records the intent of an issuance (its grant id) that has not completed. */
export const issuing = (request: AccessRequest): boolean =>
  request.status?.phase !== 'Granted' && Boolean(request.status?.grant?.id);

/** Decides the one next step for a request from what is observed now. Pure. */
export function plan(observed: Observed): Plan {
  const { request, grantObjects } = observed;
  const phase = request.status?.phase;

  if (request.metadata.deletionTimestamp) {
    if (!request.metadata.finalizers?.includes(FINALIZER)) return { action: 'wait' };
    // A final request's revocation is on record already; an interrupted issuance's is not.
    const live = phase === 'Granted' || (!(phase && TERMINAL_PHASES.has(phase)) && issuing(request));
    return {
      action: 'finalize',
      ...(live
        ? { revocation: { reason: 'RequestDeleted', message: 'The AccessRequest was deleted.' } }
        : {}),
    };
  }
  if (phase && TERMINAL_PHASES.has(phase)) {
    if (hasGrantObjects(grantObjects)) return { action: 'cleanup' };
    if (observed.retainForMs === undefined) return { action: 'wait' };
    const keepUntil = finalSince(request) + observed.retainForMs;
    const remaining = keepUntil - observed.now.getTime();
    return remaining <= 0 ? { action: 'delete' } : { action: 'wait', requeueAfterMs: remaining };
  }
  if (!request.metadata.finalizers?.includes(FINALIZER)) return { action: 'addFinalizer' };
  if (phase === 'Granted') return planGranted(observed);
  return planUndecided(observed);
}

/**
 * The end of a request's lifetime: what was fixed at first issue, or earlier when the policy's
 * maxLifetime has been shortened since (policy is evaluated again at each renewal).
 */
export function lifetimeEndOf(status: NonNullable<AccessRequest['status']>, decision: Allowed): number {
  const recorded = Date.parse(status.lifetimeEndsAt ?? '');
  const byPolicy = Date.parse(status.firstIssuedAt ?? '') + decision.maxLifetimeSeconds * 1000;
  return Math.min(Number.isNaN(recorded) ? Infinity : recorded, Number.isNaN(byPolicy) ? Infinity : byPolicy);
}

/** When the request reached its final phase, as best status tells. */
function finalSince(request: AccessRequest): number {
  const status = request.status ?? {};
  const revokedAt = Date.parse(status.revocation?.at ?? '');
  if (!Number.isNaN(revokedAt)) return revokedAt;
  const times = (status.conditions ?? [])
    .map((c) => Date.parse(c.lastTransitionTime))
    .filter((t) => !Number.isNaN(t));
  return times.length ? Math.max(...times) : Date.parse(String(request.metadata.creationTimestamp ?? 0));
}

/** The UID of the subject as admission or a previous reconcile pinned it, if any. */
function pinnedSubjectUid(request: AccessRequest): string | undefined {
  const pinned = request.status?.subject;
  return (
    (request.spec.subject.podName ? pinned?.podUID : pinned?.jobUID) ??
    request.metadata.annotations?.[annotations.subjectUid]
  );
}

interface SubjectProblem {
  reason: string;
  message: string;
  /** The subject was never seen: it may still be created (request-before-subject). */
  notYetCreated?: boolean;
}

function subjectProblem(observed: Observed): SubjectProblem | undefined {
  const { request, workload, serviceAccountUid } = observed;
  const ref = request.spec.subject.podName
    ? `pod "${request.spec.subject.podName}"`
    : `Job "${request.spec.subject.jobName}"`;
  const pinnedUid = pinnedSubjectUid(request);
  if (!workload)
    return {
      reason: 'SubjectNotFound',
      message: `The subject ${ref} does not exist in namespace "${request.metadata.namespace}".`,
      notYetCreated: pinnedUid === undefined,
    };
  if (pinnedUid && pinnedUid !== workload.uid)
    return { reason: 'SubjectNotFound', message: `The subject ${ref} was replaced (its UID changed).` };
  if (workload.finished)
    return { reason: 'SubjectFinished', message: `The subject ${ref} has already finished.` };
  if (!serviceAccountUid) {
    return {
      reason: 'SubjectNotFound',
      message: `The service account "${workload.serviceAccountName}" of the subject ${ref} does not exist.`,
    };
  }
  return undefined;
}

function planUndecided(observed: Observed): Plan {
  const { request, decision, now } = observed;
  const problem = subjectProblem(observed);
  if (problem?.notYetCreated && observed.awaitSubjectMs) {
    const created = Date.parse(String(request.metadata.creationTimestamp ?? now.toISOString()));
    const until = created + observed.awaitSubjectMs;
    const remaining = until - now.getTime();
    if (remaining > 0) {
      const message = `${problem.message} Waiting for it until ${new Date(until).toISOString()}.`;
      return { action: 'awaitSubject', message, requeueAfterMs: remaining };
    }
    const waited = `${Math.round(observed.awaitSubjectMs / 1000)}s`;
    return {
      action: 'conclude',
      phase: 'Failed',
      reason: problem.reason,
      message: `${problem.message} It did not appear within ${waited} of the request.`,
    };
  }
  if (problem)
    return { action: 'conclude', phase: 'Failed', reason: problem.reason, message: problem.message };
  const conditions = request.status?.conditions;
  const denied = findCondition(conditions, 'Denied');
  if (denied) return { action: 'conclude', phase: 'Denied', reason: denied.reason, message: denied.message };
  if (!decision.allowed)
    return { action: 'conclude', phase: 'Denied', reason: decision.reason, message: decision.message };
  if (decision.approval === 'Manual') {
    if (!findCondition(conditions, 'Approved')) {
      const since = Date.parse(request.metadata.creationTimestamp?.toString() ?? now.toISOString());
      const remaining = since + decision.approvalTimeoutSeconds * 1000 - now.getTime();
      if (remaining <= 0) {
        return {
          action: 'conclude',
          phase: 'Denied',
          reason: 'ApprovalTimeout',
          message: `No approver decided within ${decision.approvalTimeoutSeconds}s.`,
        };
      }
      return { action: 'awaitApproval', decision, requeueAfterMs: remaining };
    }
  }
  return { action: 'issue', decision };
}

function revocationOf(observed: Observed): Revocation | undefined {
  const { request, workload, serviceAccountUid, decision, now } = observed;
  const status = request.status ?? {};
  const revokeNote = request.metadata.annotations?.[annotations.revoke];
  if (revokeNote !== undefined)
    return { reason: 'Manual', message: `Revoked on request: ${revokeNote || 'no reason given'}` };

  const isPod = Boolean(request.spec.subject.podName);
  const pinnedUid = isPod ? status.subject?.podUID : status.subject?.jobUID;
  if (!workload || workload.uid !== pinnedUid) {
    return isPod
      ? {
          reason: 'PodDeleted',
          message: `The pod "${request.spec.subject.podName}" was deleted or replaced.`,
        }
      : {
          reason: 'JobDeleted',
          message: `The Job "${request.spec.subject.jobName}" was deleted or replaced.`,
        };
  }
  if (workload.finished) {
    return isPod
      ? { reason: 'PodFinished', message: `The pod "${workload.name}" finished.` }
      : { reason: 'JobFinished', message: `The Job "${workload.name}" finished.` };
  }
  if (
    !serviceAccountUid ||
    serviceAccountUid !== status.subject?.serviceAccountUID ||
    workload.serviceAccountName !== status.subject?.serviceAccountName
  ) {
    return {
      reason: 'ServiceAccountChanged',
      message: `The service account "${status.subject?.serviceAccountName}" was deleted, recreated or changed.`,
    };
  }
  if (observed.recordedPolicy === 'suspended') {
    return {
      reason: 'PolicyChanged',
      message: `${status.policy?.kind}/${status.policy?.name}, which issued this grant, was suspended.`,
    };
  }
  if (!decision.allowed) {
    return observed.recordedPolicy === 'unchanged'
      ? { reason: 'ContextChanged', message: `No policy allows this grant any more: ${decision.message}` }
      : { reason: 'PolicyChanged', message: `No policy allows this grant any more: ${decision.message}` };
  }
  const expiresAt = Date.parse(status.grant?.expiresAt ?? '');
  if (!(expiresAt > now.getTime())) return { reason: 'Expired', message: 'The grant reached its expiry.' };
  return undefined;
}

function planGranted(observed: Observed): Plan {
  const { request, decision, grantObjects, now } = observed;
  const revocation = revocationOf(observed);
  if (revocation) return { action: 'revoke', revocation };
  if (!decision.allowed) throw new Error('unreachable: a disallowed grant is revoked');

  const status = request.status ?? {};
  const renewValue = request.metadata.annotations?.[annotations.renew];
  if (renewValue !== undefined && renewValue !== status.lastRenewal) {
    const renewals = status.renewals ?? 0;
    if (renewals >= decision.maxRenewals) {
      return {
        action: 'rejectRenewal',
        renewValue,
        message: `Renewal refused: the policy allows at most ${decision.maxRenewals} renewals.`,
      };
    }
    const lifetimeEnds = lifetimeEndOf(status, decision);
    if (!(lifetimeEnds > now.getTime() + 1000)) {
      return {
        action: 'rejectRenewal',
        renewValue,
        message: `Renewal refused: the request's maxLifetime ends at ${status.lifetimeEndsAt}.`,
      };
    }
    return { action: 'renew', decision, renewValue };
  }

  const expiresInMs = Date.parse(status.grant?.expiresAt ?? '') - now.getTime();
  const grantId = status.grant?.id;
  const intact = [grantObjects.secret, grantObjects.role, grantObjects.roleBinding].every(
    (object) => object?.grantId === grantId,
  );
  if (!intact) return { action: 'repair', requeueAfterMs: expiresInMs };
  return { action: 'wait', requeueAfterMs: expiresInMs };
}
