import type { V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import {
  annotations,
  FINALIZER,
  type AccessRequest,
  type AccessRequestStatus,
  type AnyAccessPolicy,
  type Condition,
} from '../api/types.ts';
import { readBody, sendJson, type Handler } from './router.ts';
import { compileConditions, compileErrorsMessage } from '../policy/cel.ts';

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

interface AdmissionRequest {
  uid: string;
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: UserInfo;
  object?: Record<string, unknown>;
  oldObject?: Record<string, unknown>;
  dryRun?: boolean;
}

interface Verdict {
  allowed: boolean;
  message?: string;
  patch?: object[];
  warnings?: string[];
}

export interface AdmissionDeps {
  /** The controller's own user name: only it writes AccessRequest status. */
  controllerUsername: () => string;
  /** The policy recorded in a request's status, from the controller's cache. */
  recordedPolicy: (request: AccessRequest) => AnyAccessPolicy | undefined;
  /** The UID of the request's subject Pod or Job, when known. */
  subjectUid: (request: AccessRequest) => string | undefined;
  /** What every policy would decide, for `--dry-run=server` warnings. */
  explain: (request: AccessRequest) => string[];
  /** SubjectAccessReview: may this user do this? */
  allowedTo: (spec: V1SubjectAccessReviewSpec) => Promise<boolean>;
  now: () => Date;
}

const allow = (extra: Omit<Verdict, 'allowed'> = {}): Verdict => ({ allowed: true, ...extra });
const refuse = (message: string): Verdict => ({ allowed: false, message });
const pointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/** The admission webhook: /mutate stamps and guards AccessRequests, /validate guards policies. */
export function admissionRoutes(deps: AdmissionDeps): Record<string, { POST: Handler }> {
  const serve = (decide: (request: AdmissionRequest) => Promise<Verdict> | Verdict): { POST: Handler } => ({
    POST: async (req, res) => {
      const review = JSON.parse(await readBody(req)) as { apiVersion?: string; request?: AdmissionRequest };
      if (!review.request) return sendJson(res, 400, { error: 'not an AdmissionReview' });
      const verdict = await decide(review.request);
      sendJson(res, 200, {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: {
          uid: review.request.uid,
          allowed: verdict.allowed,
          ...(verdict.allowed
            ? {}
            : { status: { code: 403, reason: 'Forbidden', message: verdict.message } }),
          ...(verdict.patch?.length
            ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(verdict.patch)).toString('base64') }
            : {}),
          ...(verdict.warnings?.length ? { warnings: verdict.warnings.map((w) => w.slice(0, 1000)) } : {}),
        },
      });
    },
  });
  return {
    '/mutate': serve((request) => mutate(request, deps)),
    '/validate': serve((request) => validate(request, deps)),
  };
}

async function mutate(review: AdmissionRequest, deps: AdmissionDeps): Promise<Verdict> {
  if (review.resource.resource !== 'accessrequests') return allow();
  const request = review.object as unknown as AccessRequest;
  if (review.subResource === 'status') return guardStatus(review, deps);
  if (review.operation !== 'CREATE' || review.subResource) return allow();

  if (request.spec?.requester) {
    return refuse(
      'spec.requester is set by hourglass from the authenticated caller: remove it from the manifest',
    );
  }
  const { username, uid, groups, extra } = review.userInfo;
  const requester = { username, uid, groups: groups ?? [], extra: extra ?? {} };
  const patch: object[] = [{ op: 'add', path: '/spec/requester', value: requester }];
  const finalizers = request.metadata?.finalizers;
  if (!finalizers) patch.push({ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] });
  else if (!finalizers.includes(FINALIZER))
    patch.push({ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER });
  const subjectUid = deps.subjectUid(request);
  if (subjectUid) {
    if (!request.metadata?.annotations) patch.push({ op: 'add', path: '/metadata/annotations', value: {} });
    patch.push({
      op: 'add',
      path: `/metadata/annotations/${pointer(annotations.subjectUid)}`,
      value: subjectUid,
    });
  }
  if (!review.dryRun) return allow({ patch });
  // Explained as it would be stored: a requesters rule can only match the requester stamped here.
  const admitted: AccessRequest = {
    ...request,
    metadata: {
      ...request.metadata,
      annotations: {
        ...request.metadata?.annotations,
        ...(subjectUid ? { [annotations.subjectUid]: subjectUid } : {}),
      },
    },
    spec: { ...request.spec, requester },
  };
  return allow({ patch, warnings: deps.explain(admitted) });
}

/**
 * Status belongs to the controller. Anyone else may only add one Approved or Denied condition
 * to a request AwaitingApproval, as an approver its policy lists who is neither the requester
 * nor the subject's service account; the webhook records who, when and under which policy.
 */
function guardStatus(review: AdmissionRequest, deps: AdmissionDeps): Verdict {
  const user = review.userInfo.username ?? '';
  if (user === deps.controllerUsername()) return allow();
  const before = (review.oldObject ?? {}) as unknown as AccessRequest;
  const after = review.object as unknown as AccessRequest;
  const oldStatus = before.status ?? {};
  const newStatus = after.status ?? {};
  const added = (newStatus.conditions ?? []).filter(
    (c) => !(oldStatus.conditions ?? []).some((o) => o.type === c.type),
  );
  const decision = added[0];
  const onlyAdded = (s: AccessRequestStatus) => ({ ...s, conditions: undefined, approval: undefined });
  if (
    added.length !== 1 ||
    !decision ||
    (decision.type !== 'Approved' && decision.type !== 'Denied') ||
    decision.status !== 'True' ||
    JSON.stringify(onlyAdded(oldStatus)) !== JSON.stringify(onlyAdded(newStatus)) ||
    (newStatus.conditions ?? []).length !== (oldStatus.conditions ?? []).length + 1
  ) {
    return refuse(
      'the status of an AccessRequest is written by hourglass; an approver may only add one Approved or Denied condition with status "True"',
    );
  }
  if (oldStatus.phase !== 'AwaitingApproval') {
    return refuse(
      `only a request AwaitingApproval can be approved or denied; this one is ${oldStatus.phase ?? 'Pending'}`,
    );
  }
  const policy = deps.recordedPolicy(before);
  const approvers = policy?.spec.approval?.approvers;
  const listed =
    approvers?.users?.includes(user) ||
    (review.userInfo.groups ?? []).some((g) => approvers?.groups?.includes(g));
  // The approval binds to the policy the request awaits under, as it is now: another policy of
  // that name (deleted and re-created) is not it.
  if (policy && policy.metadata.uid !== oldStatus.policy?.uid) {
    return refuse(
      `${oldStatus.policy?.kind ?? 'the policy'}/${oldStatus.policy?.name ?? ''} was replaced since the request began to await approval; it awaits under the new one once hourglass has decided again`,
    );
  }
  if (!policy || !listed) {
    return refuse(
      `${user} is not an approver of ${oldStatus.policy?.kind ?? 'the policy'}/${oldStatus.policy?.name ?? ''}`,
    );
  }
  if (user === before.spec.requester?.username)
    return refuse('the requester cannot approve or deny their own request');
  const subjectServiceAccount = `system:serviceaccount:${before.metadata.namespace}:${oldStatus.subject?.serviceAccountName}`;
  if (user === subjectServiceAccount)
    return refuse("the subject's service account cannot approve or deny its own access");

  const at = deps
    .now()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z');
  const index = (newStatus.conditions ?? []).findIndex((c: Condition) => c.type === decision.type);
  return allow({
    patch: [
      { op: 'replace', path: `/status/conditions/${index}/lastTransitionTime`, value: at },
      {
        op: 'add',
        path: '/status/approval',
        value: {
          decision: decision.type,
          by: user,
          at,
          policy: `${policy.kind}/${policy.metadata.name}`,
          policyUID: policy.metadata.uid,
          policyGeneration: policy.metadata.generation ?? 1,
        },
      },
    ],
  });
}

/** The author of a policy must hold every rule it allows, and `issue` on each token audience. */
async function validate(review: AdmissionRequest, deps: AdmissionDeps): Promise<Verdict> {
  const kind = review.resource.resource;
  if ((kind !== 'accesspolicies' && kind !== 'clusteraccesspolicies') || review.subResource) return allow();
  if (review.operation !== 'CREATE' && review.operation !== 'UPDATE') return allow();
  const policy = review.object as unknown as AnyAccessPolicy;
  const problems = compileErrorsMessage(compileConditions(policy.spec.conditions));
  if (problems) return refuse(`spec.conditions: ${problems}`);
  const namespace = kind === 'accesspolicies' ? (policy.metadata.namespace ?? '') : '';
  const { username, uid, groups, extra } = review.userInfo;
  const as = { user: username, uid, groups, extra };
  const missing: string[] = [];
  for (const rule of policy.spec.allow?.permissions ?? []) {
    for (const group of rule.apiGroups)
      for (const resource of rule.resources)
        for (const verb of rule.verbs)
          for (const name of rule.resourceNames?.length ? rule.resourceNames : [undefined]) {
            const [plain = resource, subresource] = resource.split('/');
            const ok = await deps.allowedTo({
              ...as,
              resourceAttributes: {
                namespace,
                group,
                resource: plain,
                verb,
                ...(subresource ? { subresource } : {}),
                ...(name ? { name } : {}),
              },
            });
            if (!ok)
              missing.push(`${verb} ${group ? `${resource}.${group}` : resource}${name ? `/${name}` : ''}`);
          }
  }
  for (const audience of policy.spec.allow?.token?.audiences ?? []) {
    const ok = await deps.allowedTo({
      ...as,
      resourceAttributes: { group: 'hourglass.dev', resource: 'audiences', verb: 'issue', name: audience },
    });
    if (!ok) missing.push(`issue audiences.hourglass.dev/${audience}`);
  }
  if (missing.length === 0) return allow();
  const where = namespace ? `in namespace "${namespace}"` : 'cluster-wide';
  return refuse(
    `${username} cannot allow what they do not hold ${where}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`,
  );
}
