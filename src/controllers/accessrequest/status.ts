import {
  grantObjectNames,
  type AccessRequest,
  type AccessRequestStatus,
  type AnyAccessPolicy,
  type RevocationReason,
} from '../../api/types.ts';
import type { Allowed } from '../../policy/decide.ts';
import { setCondition } from '../conditions.ts';
import { uidFields, type RecordedUids } from './grant-objects.ts';
import type { Workload } from './subject.ts';

// The status a request moves to at each step, built from what the reconcile decided and the one
// instant it decided at. Pure: the reconciler only writes what these return.

/** status.subject completed from the workload as it is now; the pinned fields stay otherwise. */
export function subjectStatus(
  request: AccessRequest,
  workload: Workload | undefined,
  serviceAccountUid: string | undefined,
): AccessRequestStatus['subject'] {
  const pinned = request.status?.subject ?? {};
  if (!workload) return pinned;
  return {
    ...pinned,
    serviceAccountName: workload.serviceAccountName,
    ...(serviceAccountUid ? { serviceAccountUID: serviceAccountUid } : {}),
    ...(workload.kind === 'Pod'
      ? { podName: workload.name, podUID: workload.uid }
      : { jobName: workload.name, jobUID: workload.uid }),
    ref: `${workload.kind.toLowerCase()}/${workload.name}`,
  };
}

export function policyRef(policy: AnyAccessPolicy): NonNullable<AccessRequestStatus['policy']> {
  return {
    kind: policy.kind,
    name: policy.metadata.name,
    ...(policy.kind === 'AccessPolicy' ? { namespace: policy.metadata.namespace } : {}),
    uid: policy.metadata.uid,
    generation: policy.metadata.generation ?? 1,
  };
}

export interface IssueTerms {
  decision: Allowed;
  grantId: string;
  expiresAt: Date;
  lifetimeEndsAt: Date;
  subject: AccessRequestStatus['subject'];
}

/**
 * The intent of an issuance, recorded before any grant object exists: its grant id, expiry and
 * lifetime come from here, never from objects found in the namespace.
 */
export function issuingStatus(request: AccessRequest, terms: IssueTerms, now: Date): AccessRequestStatus {
  const status = request.status ?? {};
  return {
    ...status,
    phase: status.phase ?? 'Pending',
    reason: 'Issuing',
    conditions: setCondition(
      status.conditions,
      { type: 'Granted', status: 'False', reason: 'Issuing', message: `Issuing grant ${terms.grantId}.` },
      now,
    ),
    subject: terms.subject,
    policy: policyRef(terms.decision.policy),
    decision: terms.decision.message,
    firstIssuedAt: now.toISOString(),
    lifetimeEndsAt: terms.lifetimeEndsAt.toISOString(),
    grant: {
      id: terms.grantId,
      issuedAt: now.toISOString(),
      expiresAt: terms.expiresAt.toISOString(),
      ...grantObjectNames(request.metadata.name),
    },
    renewals: 0,
  };
}

/** The issuance completed: its objects' UIDs recorded, phase Granted. */
export function grantedStatus(request: AccessRequest, uids: RecordedUids, now: Date): AccessRequestStatus {
  const status = request.status ?? {};
  const approved = setCondition(
    status.conditions,
    { type: 'Approved', status: 'True', reason: 'PolicyAllowed', message: status.decision ?? '' },
    now,
  );
  return {
    ...status,
    phase: 'Granted',
    reason: 'Issued',
    conditions: setCondition(
      approved,
      { type: 'Granted', status: 'True', reason: 'Issued', message: `Grant ${status.grant?.id} issued.` },
      now,
    ),
    grant: { ...status.grant, ...uidFields(uids) },
  };
}

/** A renewal: the new grant id and expiry, recorded before the objects carry them. */
export function renewedStatus(
  request: AccessRequest,
  renewal: { decision: Allowed; grantId: string; expiresAt: Date; renewValue: string },
  now: Date,
): AccessRequestStatus {
  const status = request.status ?? {};
  return {
    ...status,
    reason: 'Renewed',
    conditions: setCondition(
      status.conditions,
      {
        type: 'Granted',
        status: 'True',
        reason: 'Renewed',
        message: `Grant ${renewal.grantId} replaced ${status.grant?.id}.`,
      },
      now,
    ),
    policy: policyRef(renewal.decision.policy),
    decision: renewal.decision.message,
    grant: {
      ...status.grant,
      id: renewal.grantId,
      issuedAt: now.toISOString(),
      expiresAt: renewal.expiresAt.toISOString(),
    },
    renewals: (status.renewals ?? 0) + 1,
    lastRenewal: renewal.renewValue,
  };
}

export function renewalRefusedStatus(
  request: AccessRequest,
  renewValue: string,
  message: string,
  now: Date,
): AccessRequestStatus {
  const status = request.status ?? {};
  return {
    ...status,
    lastRenewal: renewValue,
    conditions: setCondition(
      status.conditions,
      { type: 'Renewed', status: 'False', reason: 'RenewalRefused', message },
      now,
    ),
  };
}

export function revokedStatus(
  request: AccessRequest,
  revocation: { reason: RevocationReason; message: string },
  now: Date,
): AccessRequestStatus {
  const status = request.status ?? {};
  return {
    ...status,
    phase: revocation.reason === 'Expired' ? 'Expired' : 'Revoked',
    reason: revocation.reason,
    conditions: setCondition(
      status.conditions,
      { type: 'Granted', status: 'False', reason: revocation.reason, message: revocation.message },
      now,
    ),
    revocation: { reason: revocation.reason, at: now.toISOString(), message: revocation.message },
  };
}

export function concludedStatus(
  request: AccessRequest,
  outcome: { phase: 'Denied' | 'Failed'; reason: string; message: string },
  subject: AccessRequestStatus['subject'],
  now: Date,
): AccessRequestStatus {
  const status = request.status ?? {};
  const { phase, reason, message } = outcome;
  return {
    ...status,
    phase,
    reason,
    conditions:
      phase === 'Denied'
        ? setCondition(status.conditions, { type: 'Denied', status: 'True', reason, message }, now)
        : status.reason === 'AwaitingSubject'
          ? setCondition(status.conditions, { type: 'Granted', status: 'False', reason, message }, now)
          : status.conditions,
    subject,
    // An issuance that failed says why in place of the decision it was acting on.
    decision: phase === 'Denied' || status.grant?.id ? message : (status.decision ?? message),
  };
}

export function awaitingApprovalStatus(
  request: AccessRequest,
  decision: Allowed,
  subject: AccessRequestStatus['subject'],
): AccessRequestStatus {
  return {
    ...request.status,
    phase: 'AwaitingApproval',
    reason: 'AwaitingApproval',
    subject,
    policy: policyRef(decision.policy),
    decision: decision.message,
  };
}

/** Pending: the subject does not exist yet, and the request waits for it (request-before-subject). */
export function awaitingSubjectStatus(
  request: AccessRequest,
  message: string,
  now: Date,
): AccessRequestStatus {
  const status = request.status ?? {};
  const reason = 'AwaitingSubject';
  return {
    ...status,
    phase: 'Pending',
    reason,
    conditions: setCondition(status.conditions, { type: 'Granted', status: 'False', reason, message }, now),
  };
}
