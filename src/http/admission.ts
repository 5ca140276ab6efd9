import type { IncomingMessage, ServerResponse } from 'node:http';
import type { V1ResourceAttributes, V1SubjectAccessReviewSpec } from '@kubernetes/client-node';
import { firstBoundsViolation } from '../api/bounds.ts';
import { kinds, objectSchema, type JSONSchema } from '../api/schema.ts';
import {
  annotations,
  FINALIZER,
  GROUP,
  type AccessRequest,
  type AccessRequestSpec,
  type AccessRequestStatus,
  type AnyAccessPolicy,
  type Condition,
} from '../api/types.ts';
import { mapConcurrently } from '../runtime/concurrency.ts';
import { sendJson, type Handler } from './router.ts';
import { compileConditions, compileErrorsMessage } from '../policy/cel.ts';
import { adoption } from '../api/adoption.ts';
import { mutatePod } from './pod-admission.ts';

/**
 * The largest AdmissionReview read, refused unread above: far above a real AccessRequest or
 * policy (an update carries the object and the stored one), far below the 3 MiB the API server
 * accepts, and parsed in about a millisecond.
 */
export const ADMISSION_BODY_LIMIT = 256 * 1024;
/**
 * SubjectAccessReviews one policy write may need (one per distinct apiGroup x resource x verb x
 * resourceName its rules allow, one per token audience); a policy needing more is refused.
 */
export const MAX_ACCESS_REVIEWS = 64;
/** SubjectAccessReviews of one policy write in flight at once. */
export const ACCESS_REVIEW_CONCURRENCY = 8;
/** The accesses (apiGroup x resource x verb x resourceName) one request may name: every decision weighs each. */
export const MAX_REQUESTED_ACCESSES = 4096;

export interface UserInfo {
  username?: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionRequest {
  uid: string;
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: UserInfo;
  object?: Record<string, unknown>;
  oldObject?: Record<string, unknown>;
  dryRun?: boolean;
}

export interface Verdict {
  allowed: boolean;
  message?: string;
  /** The HTTP status of a refusal: 403 Forbidden unless said otherwise. */
  code?: 413 | 422;
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

const schemaOf = new Map<string, JSONSchema>(kinds.map((kind) => [kind.plural, objectSchema(kind)]));

/**
 * What the CRD schema would refuse after admission, refused before anything else looks at the
 * object, at a cost bounded by the schema's limits (an update may keep what is stored).
 */
function outOfBounds(review: AdmissionRequest): Verdict | undefined {
  const schema = review.resource.group === GROUP ? schemaOf.get(review.resource.resource) : undefined;
  if (!schema || !review.object || (review.operation !== 'CREATE' && review.operation !== 'UPDATE')) return;
  const stored = review.operation === 'UPDATE' ? review.oldObject : undefined;
  const violation = firstBoundsViolation(schema, review.object, stored);
  return violation === undefined ? undefined : { allowed: false, code: 422, message: violation };
}

/**
 * The admission webhook: /mutate stamps and guards AccessRequests, /validate guards policies.
 * Served apart from the issuer endpoints: only the API server has reason to reach it.
 */
export function admissionRoutes(deps: AdmissionDeps): Record<string, { POST: Handler }> {
  const serve = (decide: (request: AdmissionRequest) => Promise<Verdict> | Verdict): { POST: Handler } => ({
    POST: async (req, res) => {
      const read = await readReview(req);
      if ('oversized' in read) {
        const refusal: Verdict = { allowed: false, code: 413, message: TOO_LARGE };
        if (read.uid) return answer(res, read.uid, refusal);
        return sendJson(
          res,
          413,
          { error: 'request_too_large', message: TOO_LARGE },
          { Connection: 'close' },
        );
      }
      const review = JSON.parse(read.body) as { apiVersion?: string; request?: AdmissionRequest };
      if (!review.request) return sendJson(res, 400, { error: 'not an AdmissionReview' });
      answer(res, review.request.uid, outOfBounds(review.request) ?? (await decide(review.request)));
    },
  });
  return {
    '/mutate': serve((request) => mutate(request, deps)),
    '/validate': serve((request) => validate(request, deps)),
    '/mutate-pods': serve(mutatePod),
  };
}

const TOO_LARGE = `hourglass admits AccessRequests and policies whose AdmissionReview (on an update, with the stored object) is at most ${ADMISSION_BODY_LIMIT / 1024} KiB`;
const REASONS = { 403: 'Forbidden', 413: 'RequestEntityTooLarge', 422: 'Invalid' } as const;

function answer(res: ServerResponse, uid: string, verdict: Verdict): void {
  const code = verdict.code ?? 403;
  sendJson(res, 200, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: verdict.allowed,
      ...(verdict.allowed ? {} : { status: { code, reason: REASONS[code], message: verdict.message } }),
      ...(verdict.patch?.length
        ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(verdict.patch)).toString('base64') }
        : {}),
      ...(verdict.warnings?.length ? { warnings: verdict.warnings.map((w) => w.slice(0, 1000)) } : {}),
    },
  });
}

// The API server writes the review's uid first ({"kind":...,"apiVersion":...,"request":{"uid":...).
const HEAD_BYTES = 1024;
const uidIn = (head: string) => /"request":\{"uid":"([^"\\]{1,128})"/.exec(head)?.[1];

/**
 * The body of an AdmissionReview; or, for one over ADMISSION_BODY_LIMIT (as declared or as read),
 * the uid from its first bytes, the rest being discarded unread and unparsed, so that the refusal
 * reaches the API server as an answer to its review.
 */
function readReview(req: IncomingMessage): Promise<{ body: string } | { oversized: true; uid?: string }> {
  const declaredOver = Number(req.headers['content-length']) > ADMISSION_BODY_LIMIT;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const oversized = () => {
      req.removeListener('data', take);
      req.resume();
      resolve({
        oversized: true,
        uid: uidIn(Buffer.concat(chunks).subarray(0, HEAD_BYTES).toString('latin1')),
      });
    };
    const take = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > ADMISSION_BODY_LIMIT || (declaredOver && size >= HEAD_BYTES)) oversized();
    };
    req.on('data', take);
    req.once('end', () =>
      declaredOver ? oversized() : resolve({ body: Buffer.concat(chunks).toString('utf8') }),
    );
    req.once('error', reject);
  });
}

async function mutate(review: AdmissionRequest, deps: AdmissionDeps): Promise<Verdict> {
  if (review.resource.resource !== 'accessrequests') return allow();
  const request = review.object as unknown as AccessRequest;
  if (review.subResource === 'status') return guardStatus(review, deps);
  if (review.subResource || (review.operation !== 'CREATE' && review.operation !== 'UPDATE')) return allow();
  const { stamps, refusal } = actorStamps(review, deps);
  if (refusal) return refusal;
  if (review.operation === 'UPDATE') return allow({ patch: annotationPatch(request, stamps) });

  const accesses = accessCount(request.spec);
  if (accesses > MAX_REQUESTED_ACCESSES) {
    return refuse(
      `spec.permissions: a request may name at most ${MAX_REQUESTED_ACCESSES} accesses (apiGroups x resources x verbs x resourceNames); this one names ${accesses}: split the task into several requests`,
    );
  }
  const adoptedByController =
    review.userInfo.username === deps.controllerUsername() &&
    request.metadata?.annotations?.[adoption.adoptedFor] !== undefined;
  if (request.spec?.requester && !adoptedByController) {
    return refuse(
      'spec.requester is set by hourglass from the authenticated caller: remove it from the manifest',
    );
  }
  const { username, uid, groups, extra } = review.userInfo;
  // A request hourglass makes for an opted-in pod carries the requester that pod's own
  // pod-bound token would have (docs/security.md, "Zero-code adoption").
  const requester = (adoptedByController && request.spec.requester) || {
    username,
    uid,
    groups: groups ?? [],
    extra: extra ?? {},
  };
  const patch: object[] = adoptedByController
    ? []
    : [{ op: 'add', path: '/spec/requester', value: requester }];
  const finalizers = request.metadata?.finalizers;
  if (!finalizers) patch.push({ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] });
  else if (!finalizers.includes(FINALIZER))
    patch.push({ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER });
  const subjectUid = deps.subjectUid(request);
  const added = { ...stamps, ...(subjectUid ? { [annotations.subjectUid]: subjectUid } : {}) };
  patch.push(...annotationPatch(request, added));
  if (!review.dryRun) return allow({ patch });
  // Explained as it would be stored: a requesters rule can only match the requester stamped here.
  const admitted: AccessRequest = {
    ...request,
    metadata: { ...request.metadata, annotations: { ...request.metadata?.annotations, ...added } },
    spec: { ...request.spec, requester },
  };
  return allow({ patch, warnings: deps.explain(admitted) });
}

/** Each annotation that asks for something, and the one that records who asked. */
const ACTOR_STAMPS = [
  [annotations.renew, annotations.renewRequestedBy],
  [annotations.revoke, annotations.revokeRequestedBy],
] as const;

/**
 * Who set or changed the renew or revoke annotation, as the API server authenticated them (the
 * field manager is the client's choice); or the refusal of a stamp written by anyone but hourglass.
 */
function actorStamps(
  review: AdmissionRequest,
  deps: AdmissionDeps,
): { stamps: Record<string, string>; refusal?: undefined } | { stamps?: undefined; refusal: Verdict } {
  const user = review.userInfo.username ?? '';
  const before = (review.oldObject as Partial<AccessRequest> | undefined)?.metadata?.annotations ?? {};
  const after = (review.object as Partial<AccessRequest> | undefined)?.metadata?.annotations ?? {};
  const stamps: Record<string, string> = {};
  if (after[adoption.adoptedFor] !== before[adoption.adoptedFor] && user !== deps.controllerUsername())
    return {
      refusal: refuse(`${adoption.adoptedFor} is set by hourglass on the requests it makes: do not write it`),
    };
  for (const [asked, stamp] of ACTOR_STAMPS) {
    if (after[stamp] !== before[stamp] && user !== deps.controllerUsername())
      return {
        refusal: refuse(
          `${stamp} is set by hourglass from the authenticated caller of ${asked}: do not write it`,
        ),
      };
    if (after[asked] !== undefined && after[asked] !== before[asked]) stamps[stamp] = user;
  }
  return { stamps };
}

/** JSON patch operations setting these annotations on the request. */
function annotationPatch(request: AccessRequest, added: Record<string, string>): object[] {
  const entries = Object.entries(added);
  if (entries.length === 0) return [];
  if (!request.metadata?.annotations) return [{ op: 'add', path: '/metadata/annotations', value: added }];
  return entries.map(([key, value]) => ({ op: 'add', path: `/metadata/annotations/${pointer(key)}`, value }));
}

/** The (apiGroup, resource, verb, resourceName) combinations the request asks for. */
function accessCount(spec: AccessRequestSpec | undefined): number {
  return (spec?.permissions ?? []).reduce(
    (sum, rule) =>
      sum +
      rule.apiGroups.length *
        rule.resources.length *
        rule.verbs.length *
        Math.max(1, rule.resourceNames?.length ?? 0),
    0,
  );
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

/**
 * The author of a policy must hold every rule it allows, and `issue` on each token audience. Each
 * distinct access is one SubjectAccessReview, at most MAX_ACCESS_REVIEWS per write.
 */
async function validate(review: AdmissionRequest, deps: AdmissionDeps): Promise<Verdict> {
  const kind = review.resource.resource;
  if ((kind !== 'accesspolicies' && kind !== 'clusteraccesspolicies') || review.subResource) return allow();
  if (review.operation !== 'CREATE' && review.operation !== 'UPDATE') return allow();
  const policy = review.object as unknown as AnyAccessPolicy;
  const problems = compileErrorsMessage(compileConditions(policy.spec.conditions));
  if (problems) return refuse(`spec.conditions: ${problems}`);
  const namespace = kind === 'accesspolicies' ? (policy.metadata.namespace ?? '') : '';
  const reviews = accessReviewsOf(policy, namespace);
  if (!reviews) {
    return refuse(
      `the author of a policy must hold what it allows, checked once per apiGroup x resource x verb x resourceName and per token audience: this policy needs more than ${MAX_ACCESS_REVIEWS} checks; split it into several policies`,
    );
  }
  const { username, uid, groups, extra } = review.userInfo;
  const held = await mapConcurrently(reviews, ACCESS_REVIEW_CONCURRENCY, ({ attributes }) =>
    deps.allowedTo({ user: username, uid, groups, extra, resourceAttributes: attributes }),
  );
  const missing = reviews.filter((_, i) => !held[i]).map((r) => r.described);
  if (missing.length === 0) return allow();
  const where = namespace ? `in namespace "${namespace}"` : 'cluster-wide';
  return refuse(
    `${username} cannot allow what they do not hold ${where}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`,
  );
}

interface AccessReview {
  attributes: V1ResourceAttributes;
  /** As the refusal names it: `get secrets/orders-db`. */
  described: string;
}

/**
 * The distinct accesses whose holding the policy's author must prove, or undefined when there are
 * more than MAX_ACCESS_REVIEWS. Never enumerates more than that many per rule: every combination
 * of one rule's deduplicated lists is distinct.
 */
function accessReviewsOf(policy: AnyAccessPolicy, namespace: string): AccessReview[] | undefined {
  const reviews = new Map<string, AccessReview>();
  for (const rule of policy.spec.allow?.permissions ?? []) {
    const groups = new Set(rule.apiGroups);
    const resources = new Set(rule.resources);
    const verbs = new Set(rule.verbs);
    const names = rule.resourceNames?.length ? new Set(rule.resourceNames) : new Set([undefined]);
    if (groups.size * resources.size * verbs.size * names.size > MAX_ACCESS_REVIEWS) return undefined;
    for (const group of groups)
      for (const resource of resources)
        for (const verb of verbs)
          for (const name of names) {
            const [plain = resource, subresource] = resource.split('/');
            reviews.set(JSON.stringify([group, resource, verb, name]), {
              attributes: {
                namespace,
                group,
                resource: plain,
                verb,
                ...(subresource ? { subresource } : {}),
                ...(name ? { name } : {}),
              },
              described: `${verb} ${group ? `${resource}.${group}` : resource}${name ? `/${name}` : ''}`,
            });
          }
    if (reviews.size > MAX_ACCESS_REVIEWS) return undefined;
  }
  for (const audience of new Set(policy.spec.allow?.token?.audiences ?? [])) {
    reviews.set(JSON.stringify(['audience', audience]), {
      attributes: { group: 'hourglass.dev', resource: 'audiences', verb: 'issue', name: audience },
      described: `issue audiences.hourglass.dev/${audience}`,
    });
  }
  return reviews.size > MAX_ACCESS_REVIEWS ? undefined : [...reviews.values()];
}
