import type { AccessPolicySpec, AccessRequest, AnyAccessPolicy } from '../api/types.ts';
import type { Requester } from './cel.ts';

/** Everything a policy decision reads; gathered by the caller, so that deciding is pure. */
export interface DecisionInput {
  /** The request to decide. */
  request: AccessRequest;
  /** The workload that would receive access, and its labels: the pod's, or the Job's pod template's. */
  subject: { serviceAccountName: string; labels: Record<string, string> };
  /** The labels of the request's namespace, for ClusterAccessPolicy namespace selectors. */
  namespaceLabels: Record<string, string>;
  /** The AccessPolicies of the request's namespace and every ClusterAccessPolicy. */
  policies: readonly AnyAccessPolicy[];
  /** Live grants of other requests for the same service account. */
  activeGrants: number;
  /**
   * From API discovery: whether a resource of a group ("pods", or a subresource as "pods/log") is
   * namespaced; undefined when the API server does not serve it.
   */
  isNamespaced: (apiGroup: string, resource: string) => boolean | undefined;
  /** The namespace hourglass runs in: nothing in it is ever granted. */
  controllerNamespace: string;
  /** The Secret, in the controller's namespace, that holds hourglass's signing keys. */
  signingKeySecretName: string;
  /**
   * What CEL conditions read besides the request. Needed only by policies with conditions: without
   * it, their conditions cannot be evaluated and they deny.
   */
  celContext?: CelContext;
  /**
   * The UID of the subject Pod or Job, as pinned at admission. A policy's requesters.self matches only
   * a token bound to this pod (or to a pod this Job owns); without it, self matches nothing.
   */
  subjectUid?: string;
  /**
   * The pod the requester's token is bound to (spec.requester's pod-name extra, see boundPod), as
   * the pod cache has it (see requesterPodOf). Needed for requesters.self of a Job subject only;
   * when absent, or another pod than the token names, self matches nothing.
   */
  requesterPod?: RequesterPod;
  /**
   * Which Manual policies may allow. 'any' (the default): any, and the request then awaits an
   * approver. A policy's UID (and generation, when given): only that one, the policy an approver
   * approved under; any other Manual policy would need an approval of its own. 'none': no Manual
   * policy, for a grant issued without approval, which must never move onto one.
   */
  approvedPolicy?: 'any' | 'none' | ApprovedPolicy;
  /**
   * Whether a request without spec.requester is refused by every policy's requesters: true unless
   * set. False lets such a request through the requesters check, for requests created while no
   * admission webhook records who asked (which also means anyone could have written
   * spec.requester). A request with spec.requester is checked either way.
   */
  requireRequester?: boolean;
}

/** What requesters.self reads of the pod a requester's token is bound to. */
export interface RequesterPod {
  name: string;
  uid: string;
  /** The service account the pod runs as. */
  serviceAccountName: string;
  /** The owner reference marked `controller: true`, if any: the object that created and manages the pod. */
  controller?: { apiVersion: string; kind: string; name: string; uid: string };
  labels: Readonly<Record<string, string>>;
}

/** The objects CEL conditions see as `subject` and `requester`, as JSON, and the time they see as `now`. */
export interface CelContext {
  /** The subject Pod, for a pod subject. */
  pod?: object;
  /** The subject Job, for a Job subject. */
  job?: object;
  /** The subject's ServiceAccount. */
  serviceAccount?: object;
  /** The request's Namespace. */
  namespace?: object;
  /** Who asked; spec.requester of the request when not given. */
  requester?: Requester;
  now: Date;
}

/** The policy an approver approved under: its ref for messages, UID and (optionally) generation. */
export interface ApprovedPolicy {
  ref: string;
  uid: string;
  generation?: number;
}

export type ApprovalMode = NonNullable<NonNullable<AccessPolicySpec['approval']>['mode']>;

/**
 * Why a request is denied, as a condition reason: NeverGranted (it asks for something no policy
 * can allow), UnknownResource (a resource the API server does not serve), NoPolicyAllows.
 */
export type DenialReason = 'NeverGranted' | 'UnknownResource' | 'NoPolicyAllows';

export interface Allowed {
  allowed: true;
  /** The first policy, in evaluation order, that allows the request. */
  policy: AnyAccessPolicy;
  /** The lifetime of one grant: the request's ttl, or the policy's defaultTTL. */
  ttlSeconds: number;
  /** From the first issue to the last expiry, across renewals. */
  maxLifetimeSeconds: number;
  maxRenewals: number;
  approval: ApprovalMode;
  /** How long a Manual request may await an approver before it ends Denied (ApprovalTimeout). */
  approvalTimeoutSeconds: number;
  /** "allowed by AccessPolicy/batch-readers" */
  message: string;
}

export interface Denied {
  allowed: false;
  reason: DenialReason;
  /** Why, naming each policy considered and its first failing check. */
  message: string;
}

export type Decision = Allowed | Denied;
