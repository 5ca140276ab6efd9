import type { V1Pod } from '@kubernetes/client-node';
import type { AccessPolicySpec } from '../api/types.ts';
import type { Requester } from './cel.ts';
import type { DecisionInput, RequesterPod } from './decision.ts';

// Who may ask for access on a subject's behalf (spec.requesters of a policy).
//
// This check trusts spec.requester as it is given: recording who asked, from the API server's
// authentication of the caller, and refusing a caller-supplied value, is the admission webhook's
// job. With the webhook off, spec.requester is whatever the creator wrote.

/** Who a policy lets ask for access on its subjects' behalf, as spec.requesters. */
export type Requesters = NonNullable<AccessPolicySpec['requesters']>;

/** The user extra the API server gives a pod-bound service-account token: the pod's name. */
export const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
/** The user extra the API server gives a pod-bound service-account token: the pod's UID. */
export const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

/** The labels the Job controller puts on the pods it creates: the Job's UID, and its name. */
export const JOB_CONTROLLER_UID_LABELS = ['batch.kubernetes.io/controller-uid', 'controller-uid'] as const;
export const JOB_NAME_LABELS = ['batch.kubernetes.io/job-name', 'job-name'] as const;

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
// Enough values to recognise a policy in a denial, few enough to keep the message readable.
const LISTED_VALUES = 3;

/**
 * The pod a requester's token is bound to, from its pod-name and pod-uid extras; undefined for a
 * token bound to no pod. The controller looks this pod up to fill DecisionInput.requesterPod.
 */
export function boundPod(requester: Requester | undefined): { name: string; uid: string } | undefined {
  const name = onlyValue(requester?.extra?.[POD_NAME_EXTRA]);
  const uid = onlyValue(requester?.extra?.[POD_UID_EXTRA]);
  return name !== undefined && uid !== undefined ? { name, uid } : undefined;
}

/**
 * What requesters.self reads of a pod, from the pod as the API server has it: its identity, the
 * service account it runs as, its controller and its labels. Undefined for a pod without a name or
 * UID. The controller fills DecisionInput.requesterPod with it.
 */
export function requesterPodOf(pod: V1Pod): RequesterPod | undefined {
  const { name, uid, ownerReferences = [], labels = {} } = pod.metadata ?? {};
  if (!name || !uid) return undefined;
  const controller = ownerReferences.find((owner) => owner.controller === true);
  return {
    name,
    uid,
    serviceAccountName: pod.spec?.serviceAccountName ?? '',
    ...(controller
      ? {
          controller: {
            apiVersion: controller.apiVersion,
            kind: controller.kind,
            name: controller.name,
            uid: controller.uid,
          },
        }
      : {}),
    labels,
  };
}

/** The user name of a service account's tokens: "system:serviceaccount:<namespace>:<name>". */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `${SERVICE_ACCOUNT_PREFIX}${namespace}:${name}`;
}

/**
 * Why the request's requester may not ask under these requesters, or undefined when it may. It may
 * when it matches one rule: `self` (a token bound to the subject pod, or to a pod the Job
 * controller created for the subject Job), a user, a group or a service account the policy lists. Empty requesters allow nobody.
 */
export function requesterRefusal(
  input: DecisionInput,
  requesters: Requesters | undefined,
): string | undefined {
  const requester = input.request.spec.requester;
  if (requester === undefined) {
    return input.requireRequester === false
      ? undefined
      : 'the request has no spec.requester (the admission webhook records who asked), so no requester rule can match';
  }
  const { self = false, users = [], groups = [], serviceAccounts = [] } = requesters ?? {};
  const username = requester.username ?? '';
  const refusals: string[] = [];
  if (self) {
    const refusal = selfRefusal(input, requester);
    if (refusal === undefined) return undefined;
    refusals.push(refusal);
  }
  if (users.length > 0) {
    if (username !== '' && users.includes(username)) return undefined;
    refusals.push(`requesters.users accepts ${listed(users)}`);
  }
  if (groups.length > 0) {
    if ((requester.groups ?? []).some((group) => groups.includes(group))) return undefined;
    refusals.push(`requesters.groups accepts ${listed(groups)}`);
  }
  if (serviceAccounts.length > 0) {
    const serviceAccount = username.startsWith(SERVICE_ACCOUNT_PREFIX)
      ? username.slice(SERVICE_ACCOUNT_PREFIX.length)
      : undefined;
    if (serviceAccount !== undefined && serviceAccounts.includes(serviceAccount)) return undefined;
    refusals.push(`requesters.serviceAccounts accepts ${listed(serviceAccounts)}`);
  }
  if (refusals.length === 0) refusals.push('the policy accepts no requester (requesters is empty)');
  return `requester ${describeRequester(requester)} is not allowed: ${refusals.join('; ')}`;
}

// A pod-bound token of the subject's service account, bound to the subject pod (its UID, not just
// its name: a pod recreated under the same name is another workload) or to a pod the Job controller
// created for the subject Job. A plain token of the same service account is not enough: any
// workload of that service account could hold one.
function selfRefusal(input: DecisionInput, requester: Requester): string | undefined {
  const { podName, jobName } = input.request.spec.subject;
  const wanted =
    podName !== undefined
      ? `the subject pod "${podName}"`
      : jobName !== undefined
        ? `a pod of the subject Job "${jobName}"`
        : undefined;
  if (wanted === undefined) return 'requesters.self needs a subject pod or Job';
  const needs = `requesters.self needs a token bound to ${wanted}`;
  const serviceAccountName = input.subject.serviceAccountName;
  const ownServiceAccount =
    serviceAccountName !== '' &&
    requester.username === serviceAccountUsername(input.request.metadata.namespace, serviceAccountName);
  if (!ownServiceAccount) {
    return `requesters.self needs a token of service account "${serviceAccountName}" bound to ${wanted}`;
  }
  const pod = boundPod(requester);
  if (pod === undefined) return `${needs} (a token bound to no pod is not enough)`;
  const subjectUid = input.subjectUid;
  if (subjectUid === undefined) return `${needs}, and the subject's UID is not known`;
  if (podName !== undefined) {
    if (pod.name !== podName) return needs;
    return pod.uid === subjectUid ? undefined : `${needs} (UID ${subjectUid}), not to pod UID ${pod.uid}`;
  }
  const known = input.requesterPod;
  if (known === undefined || known.name !== pod.name || known.uid !== pod.uid) {
    return `${needs}, and pod "${pod.name}" (UID ${pod.uid}) is not known`;
  }
  const notCreated = notCreatedByJobController(
    known,
    { name: jobName ?? '', uid: subjectUid },
    serviceAccountName,
  );
  return notCreated === undefined ? undefined : `${needs}: pod "${known.name}" ${notCreated}`;
}

/**
 * Why a pod is not one the Job controller created for this Job, or undefined when it is: the Job
 * is its controller (an owner reference with `controller: true` and the Job's UID), it carries
 * the labels the Job controller sets (the Job's UID under every controller-uid label present, at
 * least one; its name under every job-name label present, at least one), and it runs as the Job's
 * service account. A pod that merely lists the Job among its owners is not enough: anyone who can
 * create pods can add such a reference, and another controller's pod can carry one.
 */
export function notCreatedByJobController(
  pod: RequesterPod,
  job: { name: string; uid: string },
  serviceAccountName: string,
): string | undefined {
  const { controller } = pod;
  if (
    controller === undefined ||
    controller.apiVersion !== 'batch/v1' ||
    controller.kind !== 'Job' ||
    controller.uid !== job.uid
  ) {
    return `is not controlled by the Job (UID ${job.uid}): no owner reference to it with controller: true`;
  }
  const uidLabel = mismatchedLabel(pod.labels, JOB_CONTROLLER_UID_LABELS, job.uid);
  if (uidLabel !== undefined) return `does not carry the Job controller's label ${uidLabel}`;
  const nameLabel = mismatchedLabel(pod.labels, JOB_NAME_LABELS, job.name);
  if (nameLabel !== undefined) return `does not carry the Job controller's label ${nameLabel}`;
  if (pod.serviceAccountName !== serviceAccountName) {
    return `runs as service account "${pod.serviceAccountName}", not the Job's "${serviceAccountName}"`;
  }
  return undefined;
}

// The first of these labels that differs from the value, or the first of them when none is set.
function mismatchedLabel(
  labels: Readonly<Record<string, string>>,
  keys: readonly string[],
  value: string,
): string | undefined {
  const present = keys.filter((key) => labels[key] !== undefined);
  if (present.length === 0) return `${keys[0]}=${value}`;
  const wrong = present.find((key) => labels[key] !== value);
  return wrong === undefined ? undefined : `${wrong}=${value}`;
}

function describeRequester(requester: Requester): string {
  const pod = boundPod(requester);
  const name = requester.username ? `"${requester.username}"` : 'without a username';
  return pod === undefined ? name : `${name} (pod ${pod.name})`;
}

function listed(values: readonly string[]): string {
  const shown = values.slice(0, LISTED_VALUES).map((value) => `"${value}"`);
  const more = values.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

// A pod-bound token carries exactly one pod; anything else is not a pod binding.
function onlyValue(values: readonly string[] | undefined): string | undefined {
  return values?.length === 1 && values[0] !== '' ? values[0] : undefined;
}
