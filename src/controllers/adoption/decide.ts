import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { adoption, adoptedRequestName, parseDeclaration, type AdoptedSubject } from '../../api/adoption.ts';
import {
  annotations,
  API_VERSION,
  labels,
  MANAGED_BY,
  TERMINAL_PHASES,
  type AccessRequest,
} from '../../api/types.ts';
import { parseDuration } from '../../policy/duration.ts';
import { POD_NAME_EXTRA, POD_UID_EXTRA, serviceAccountUsername } from '../../policy/requesters.ts';
import { adoptedSubjectOf } from '../../http/pod-admission.ts';

/** What to do for one gated, opted-in pod. */
export type PodPlan =
  | { action: 'wait'; requeueAfterMs?: number }
  | { action: 'create'; request: AccessRequestDraft }
  | { action: 'ungate' }
  /** The pod will not get its grant: say why (once), and fail the pod at failAt. */
  | { action: 'refuse'; reason: RefusalReason; message: string; failAt: Date };

export type RefusalReason = 'AccessDenied' | 'InvalidDeclaration' | 'RequestNameTaken';

/** An AccessRequest as hourglass creates it for an opted-in pod. */
export type AccessRequestDraft = Omit<AccessRequest, 'metadata'> & {
  metadata: Omit<AccessRequest['metadata'], 'uid'>;
};

export const isGated = (pod: V1Pod) =>
  (pod.spec?.schedulingGates ?? []).some((gate) => gate.name === adoption.gate);

/** A request is hourglass's own adoption of a pod only when it carries the stamp only hourglass may write. */
export const isAdopted = (request: AccessRequest) =>
  request.metadata.annotations?.[adoption.adoptedFor] !== undefined && request.spec.requester !== undefined;

/**
 * The plan for an opted-in pod still holding the hourglass.dev/grant gate: create its subject's
 * request, wait for it, lift the gate once Granted, or, when it will never be granted (denied,
 * failed, malformed, or its name held by a request hourglass did not make), say why and fail the
 * pod `refusalGraceMs` after that became so: after the pod's creation, or after its request ended
 * (a retried pod of a Job denied long ago is failed at once).
 */
export function planGatedPod(
  pod: V1Pod,
  request: AccessRequest | undefined,
  now: Date,
  refusalGraceMs: number,
  job?: V1Job,
): PodPlan {
  const subject = adoptedSubjectOf(pod);
  const namespace = pod.metadata?.namespace ?? '';
  const createdAt = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp) : now;
  const failAfter = (since: Date) => new Date(since.getTime() + refusalGraceMs);
  if (!subject) {
    return {
      action: 'refuse',
      reason: 'InvalidDeclaration',
      message: 'the pod has no name and no Job controls it',
      failAt: failAfter(createdAt),
    };
  }
  const parsed = parseDeclaration(pod.metadata?.annotations ?? {}, describe(subject));
  if (parsed.errors) {
    return {
      action: 'refuse',
      reason: 'InvalidDeclaration',
      message: parsed.errors.join('; '),
      failAt: failAfter(createdAt),
    };
  }
  const name = adoptedRequestName(subject);
  const jobRenewal = job?.metadata?.annotations?.[annotations.renew];
  if (!request) {
    return {
      action: 'create',
      request: {
        apiVersion: API_VERSION,
        kind: 'AccessRequest',
        metadata: {
          name,
          namespace,
          labels: { [adoption.adopted]: 'true', [labels.managedBy]: MANAGED_BY },
          annotations: {
            [adoption.adoptedFor]: pod.metadata?.uid ?? '',
            // A renew value the Job already carries asked for no renewal of this request.
            ...(jobRenewal !== undefined ? { [adoption.jobRenewal]: jobRenewal } : {}),
          },
          ownerReferences: [ownerOf(pod, subject)],
        },
        spec: {
          ...parsed.declaration,
          subject: subject.kind === 'Job' ? { jobName: subject.name } : { podName: subject.name },
          requester: podBoundRequester(pod),
        },
      },
    };
  }
  if (!isAdopted(request)) {
    return {
      action: 'refuse',
      reason: 'RequestNameTaken',
      message: `AccessRequest ${name} exists and was not made by hourglass for this workload; hourglass does not adopt it`,
      failAt: failAfter(createdAt),
    };
  }
  const phase = request.status?.phase;
  if (phase === 'Granted') return { action: 'ungate' };
  if (phase && TERMINAL_PHASES.has(phase)) {
    const since = request.status?.revocation?.at ?? lastTransition(request) ?? now.toISOString();
    return {
      action: 'refuse',
      reason: 'AccessDenied',
      message:
        `AccessRequest ${name} is ${phase} (${request.status?.reason ?? 'no reason'}): ${request.status?.decision ?? request.status?.revocation?.message ?? ''}`.trim(),
      failAt: failAfter(new Date(since)),
    };
  }
  return { action: 'wait' };
}

function lastTransition(request: AccessRequest): string | undefined {
  const times = (request.status?.conditions ?? []).map((c) => c.lastTransitionTime).sort();
  return times.at(-1);
}

const describe = (subject: AdoptedSubject) => `${subject.kind.toLowerCase()}/${subject.name}`;

/** The request goes with its subject: Kubernetes' garbage collector removes it with the Job or pod. */
function ownerOf(pod: V1Pod, subject: AdoptedSubject) {
  if (subject.kind === 'Pod') {
    return { apiVersion: 'v1', kind: 'Pod', name: subject.name, uid: pod.metadata?.uid ?? '' };
  }
  const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  return { apiVersion: 'batch/v1', kind: 'Job', name: subject.name, uid: owner?.uid ?? '' };
}

/**
 * The requester a pod-bound service-account token of this pod carries: asking for the pod is
 * asking as the pod, so requesters.self decides exactly as if the pod had asked for itself.
 */
export function podBoundRequester(pod: V1Pod) {
  const namespace = pod.metadata?.namespace ?? '';
  return {
    username: serviceAccountUsername(namespace, pod.spec?.serviceAccountName ?? 'default'),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    extra: {
      [POD_NAME_EXTRA]: [pod.metadata?.name ?? ''],
      [POD_UID_EXTRA]: [pod.metadata?.uid ?? ''],
    },
  };
}

/** What to do for a live adopted request: nothing yet (until requeueAfterMs), or ask for a renewal. */
export type RenewalPlan =
  { renewValue?: undefined; requeueAfterMs?: number } | { renewValue: string; jobRenewal?: string };

/**
 * When a Granted adopted request is renewed: on demand, when its Job's hourglass.dev/renew holds a
 * value not passed on yet; else automatically once `renewBefore` (or a third of the grant's
 * lifetime) remains before expiry. Each renewal value is new, so each asks for one renewal.
 */
export function planRenewal(
  request: AccessRequest,
  job: V1Job | undefined,
  renewBefore: string | undefined,
  now: Date,
): RenewalPlan {
  const status = request.status;
  if (status?.phase !== 'Granted' || !status.grant?.expiresAt || !status.grant.issuedAt) return {};
  const pending = request.metadata.annotations?.[annotations.renew];
  if (pending !== undefined && pending !== status.lastRenewal) return {};
  const asked = job?.metadata?.annotations?.[annotations.renew];
  if (asked !== undefined && asked !== request.metadata.annotations?.[adoption.jobRenewal]) {
    return { renewValue: `job-${asked}`.slice(0, 253), jobRenewal: asked };
  }
  const expiresAt = new Date(status.grant.expiresAt).getTime();
  const lifetime = expiresAt - new Date(status.grant.issuedAt).getTime();
  const leadMs = renewBefore ? parseDuration(renewBefore) * 1000 : lifetime / 3;
  const renewAt = expiresAt - Math.min(leadMs, lifetime);
  const value = `auto-${(status.renewals ?? 0) + 1}`;
  if (status.lastRenewal === value) return {};
  if (now.getTime() < renewAt) return { requeueAfterMs: renewAt - now.getTime() };
  return { renewValue: value };
}
