import { createHash } from 'node:crypto';
import { API_VERSION, type AccessRequest } from '../api/types.ts';
import type { EventRecorder } from '../k8s/events.ts';
import type { Logger } from '../log.ts';

export type AuditEventName =
  | 'request.received'
  | 'decision'
  | 'approval'
  | 'grant.issued'
  | 'grant.renewed'
  | 'grant.revoked'
  | 'request.failed';

export interface AuditDetails {
  /** CamelCase reason: the Event reason and the audit record's reason. */
  reason: string;
  /** One sentence for people: the log message and the Event note. */
  message: string;
  decision?: string;
  approver?: string;
  /** Who set the renew or revoke annotation, when known. */
  actor?: string;
  grantId?: string;
  expiresAt?: string;
  warning?: boolean;
}

/** An audit event that is also a Kubernetes Event; a request's arrival is in the log only. */
export type TransitionEventName = Exclude<AuditEventName, 'request.received'>;

const EVENT_ACTIONS: Record<TransitionEventName, string> = {
  decision: 'Decide',
  approval: 'Approve',
  'grant.issued': 'Issue',
  'grant.renewed': 'Renew',
  'grant.revoked': 'Revoke',
  'request.failed': 'Fail',
};

/** A stable hash of the requested permissions, so audit records can be compared and grouped. */
export function permissionsHash(request: AccessRequest): string {
  return createHash('sha256')
    .update(JSON.stringify(request.spec.permissions ?? []))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Writes one JSON audit line per event on stdout; a transition that a person reads (awaiting
 * approval, approved, issued, renewed, revoked, denied, failed) is also a Kubernetes Event on the
 * AccessRequest. Secret values and tokens are never passed in, so never written.
 */
export class Auditor {
  readonly #log: Logger;
  readonly #events: EventRecorder;

  constructor(log: Logger, events: EventRecorder) {
    this.#log = log;
    this.#events = events;
  }

  /** The audit line and the Event of a transition. */
  record(event: TransitionEventName, request: AccessRequest, details: AuditDetails): void {
    this.log(event, request, details);
    const { metadata } = request;
    this.#events.record(
      {
        apiVersion: API_VERSION,
        kind: 'AccessRequest',
        namespace: metadata.namespace,
        name: metadata.name,
        uid: metadata.uid,
      },
      details.warning ? 'Warning' : 'Normal',
      details.reason,
      EVENT_ACTIONS[event],
      details.message,
    );
  }

  /** The audit line alone, for a step whose transition is published by a later record of the same pass. */
  log(event: AuditEventName, request: AccessRequest, details: AuditDetails): void {
    const { metadata, spec, status } = request;
    this.#log.info(details.message, {
      audit: true,
      event,
      request: { namespace: metadata.namespace, name: metadata.name, uid: metadata.uid },
      requester: spec.requester,
      subject: { ...spec.subject, ...status?.subject },
      purpose: spec.purpose,
      permissions: spec.permissions,
      permissionsHash: permissionsHash(request),
      token: spec.token,
      policy: status?.policy,
      decision: details.decision ?? status?.decision,
      reason: details.reason,
      approver: details.approver ?? status?.approval?.by,
      actor: details.actor,
      grantId: details.grantId ?? status?.grant?.id,
      expiresAt: details.expiresAt ?? status?.grant?.expiresAt,
    });
  }
}
