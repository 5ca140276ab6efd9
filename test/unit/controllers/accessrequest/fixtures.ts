import {
  API_VERSION,
  FINALIZER,
  type AccessPolicy,
  type AccessRequest,
  type AccessRequestSpec,
  type AccessRequestStatus,
  type Condition,
} from '../../../../src/api/types.ts';
import type { GrantObjects, Observed } from '../../../../src/controllers/accessrequest/plan.ts';
import type { Workload } from '../../../../src/controllers/accessrequest/subject.ts';
import type { Allowed, Denied } from '../../../../src/policy/decide.ts';

/** The fake clock: every case is planned at this instant. */
export const NOW = new Date('2030-01-01T12:00:00.000Z');
export const SECOND = 1_000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

/** An instant `ms` after (or, negative, before) NOW. */
export const at = (ms: number): Date => new Date(NOW.getTime() + ms);
export const iso = (ms: number): string => at(ms).toISOString();

export const NAMESPACE = 'batch';
export const REQUEST_NAME = 'etl-read-orders';
export const REQUEST_UID = 'request-uid';
export const POD_NAME = 'etl-7xk2p';
export const POD_UID = 'pod-uid-1';
export const JOB_NAME = 'etl';
export const JOB_UID = 'job-uid-1';
export const SA_NAME = 'etl';
export const SA_UID = 'sa-uid-1';
export const GRANT_ID = 'grant-1';
/** The live grant of grantedRequest() expires this long after NOW. */
export const EXPIRES_IN = 10 * MINUTE;

export type SubjectKind = 'Pod' | 'Job';

export interface RequestOptions {
  subject?: SubjectKind;
  spec?: Partial<AccessRequestSpec>;
  status?: AccessRequestStatus;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: Date;
  creationTimestamp?: Date;
}

/** An AccessRequest past admission, carrying the finalizer unless told otherwise. */
export function request(options: RequestOptions = {}): AccessRequest {
  const kind = options.subject ?? 'Pod';
  return {
    apiVersion: API_VERSION,
    kind: 'AccessRequest',
    metadata: {
      name: REQUEST_NAME,
      namespace: NAMESPACE,
      uid: REQUEST_UID,
      generation: 1,
      creationTimestamp: options.creationTimestamp ?? at(-MINUTE),
      finalizers: options.finalizers ?? [FINALIZER],
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.deletionTimestamp ? { deletionTimestamp: options.deletionTimestamp } : {}),
    },
    spec: {
      subject: kind === 'Pod' ? { podName: POD_NAME } : { jobName: JOB_NAME },
      purpose: 'OPS-1234 nightly read of the orders table',
      ttl: '10m',
      permissions: [
        { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
      ],
      ...options.spec,
    },
    ...(options.status ? { status: options.status } : {}),
  };
}

/** status.subject as admission pins it and issuance completes it. */
export function pinnedSubject(kind: SubjectKind = 'Pod'): NonNullable<AccessRequestStatus['subject']> {
  return {
    serviceAccountName: SA_NAME,
    serviceAccountUID: SA_UID,
    ...(kind === 'Pod' ? { podName: POD_NAME, podUID: POD_UID } : { jobName: JOB_NAME, jobUID: JOB_UID }),
  };
}

/** A request not decided yet: phase Pending (or the given one), subject pinned at admission. */
export function pendingRequest(
  options: RequestOptions & { phase?: 'Pending' | 'AwaitingApproval' } = {},
): AccessRequest {
  const { phase = 'Pending', status, ...rest } = options;
  return request({ ...rest, status: { phase, subject: pinnedSubject(rest.subject), ...status } });
}

/** A request holding a live grant GRANT_ID that expires EXPIRES_IN after NOW. */
export function grantedRequest(options: RequestOptions = {}): AccessRequest {
  const { status, ...rest } = options;
  return request({
    ...rest,
    status: {
      phase: 'Granted',
      reason: 'Issued',
      conditions: [
        condition('Approved', 'PolicyAllowed', iso(-5 * MINUTE)),
        condition('Granted', 'Issued', iso(-5 * MINUTE)),
      ],
      subject: pinnedSubject(rest.subject),
      policy: {
        kind: 'AccessPolicy',
        name: 'batch-readers',
        namespace: NAMESPACE,
        uid: 'policy-uid',
        generation: 1,
      },
      decision: 'allowed by AccessPolicy/batch-readers',
      firstIssuedAt: iso(-5 * MINUTE),
      lifetimeEndsAt: iso(8 * HOUR - 5 * MINUTE),
      grant: {
        id: GRANT_ID,
        issuedAt: iso(-5 * MINUTE),
        expiresAt: iso(EXPIRES_IN),
        secretName: `${REQUEST_NAME}-grant`,
        roleName: `hourglass-${REQUEST_NAME}`,
        roleBindingName: `hourglass-${REQUEST_NAME}`,
      },
      renewals: 0,
      ...status,
    },
  });
}

/** A request that ended in a terminal phase. */
export function terminalRequest(
  phase: 'Denied' | 'Expired' | 'Revoked' | 'Failed',
  options: RequestOptions = {},
) {
  const granted = grantedRequest(options);
  return { ...granted, status: { ...granted.status, phase } };
}

export function condition(type: string, reason: string, lastTransitionTime = NOW.toISOString()): Condition {
  return { type, status: 'True', reason, message: `${type}: ${reason}`, lastTransitionTime };
}

/** The subject as it is observed now; by default the one pinned in status, running. */
export function workload(kind: SubjectKind = 'Pod', overrides: Partial<Workload> = {}): Workload {
  return {
    kind,
    name: kind === 'Pod' ? POD_NAME : JOB_NAME,
    uid: kind === 'Pod' ? POD_UID : JOB_UID,
    serviceAccountName: SA_NAME,
    labels: { team: 'data' },
    finished: false,
    ...overrides,
  };
}

export function policy(name = 'batch-readers'): AccessPolicy {
  return {
    apiVersion: API_VERSION,
    kind: 'AccessPolicy',
    metadata: { name, namespace: NAMESPACE, uid: `${name}-uid`, generation: 1 },
    spec: {
      subjects: { serviceAccounts: [SA_NAME] },
      allow: {
        permissions: [
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
        ],
      },
    },
  };
}

/** A policy decision that allows, Automatic unless told otherwise. */
export function allowed(overrides: Partial<Allowed> = {}): Allowed {
  return {
    allowed: true,
    policy: policy(),
    ttlSeconds: 600,
    maxLifetimeSeconds: 8 * 3600,
    maxRenewals: 8,
    approval: 'Automatic',
    approvalTimeoutSeconds: 3600,
    message: 'allowed by AccessPolicy/batch-readers',
    ...overrides,
  };
}

export function denied(
  message = 'denied: AccessPolicy/batch-readers: purpose must start with a ticket id',
): Denied {
  return { allowed: false, reason: 'NoPolicyAllows', message };
}

/** All three grant objects, each carrying the given grant id. */
export function intactObjects(grantId = GRANT_ID): GrantObjects {
  return {
    secret: { grantId, expiresAt: iso(EXPIRES_IN) },
    role: { grantId },
    roleBinding: { grantId },
  };
}

/**
 * What one reconcile observes. By default everything agrees with the request: the subject pinned
 * in its status exists and runs, its service account is the same, the policy allows as before, and
 * a Granted request's grant objects are intact.
 */
export function observe(req: AccessRequest, overrides: Partial<Observed> = {}): Observed {
  const kind: SubjectKind = req.spec.subject.jobName ? 'Job' : 'Pod';
  return {
    request: req,
    now: NOW,
    workload: workload(kind),
    serviceAccountUid: SA_UID,
    grantObjects: req.status?.phase === 'Granted' ? intactObjects(req.status.grant?.id) : {},
    decision: allowed(),
    recordedPolicy: 'unchanged',
    ...overrides,
  };
}

/**
 * `actual` cut down to the keys `expected` names, recursively through plain objects, so that a
 * case states only what it is about (and `key: undefined` asserts that a key is absent).
 */
export function projectOnto(actual: unknown, expected: unknown): unknown {
  if (!isPlainObject(expected) || !isPlainObject(actual)) return actual;
  return Object.fromEntries(
    Object.keys(expected).map((key) => [key, projectOnto(actual[key], expected[key])]),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
