import type {
  AccessPolicy,
  AccessPolicySpec,
  AccessRequest,
  AccessRequestSpec,
  ClusterAccessPolicy,
  ClusterAccessPolicySpec,
} from '../../../src/api/types.ts';
import { API_VERSION } from '../../../src/api/types.ts';
import type { Requester } from '../../../src/policy/cel.ts';
import type { DecisionInput } from '../../../src/policy/decide.ts';
import { POD_NAME_EXTRA, POD_UID_EXTRA } from '../../../src/policy/requesters.ts';

export const CONTROLLER_NAMESPACE = 'hourglass-system';
export const SIGNING_KEY_SECRET = 'hourglass-signing-keys';

// A small discovery document: "group/resource" → namespaced.
const DISCOVERY: Readonly<Record<string, boolean>> = {
  '/pods': true,
  '/pods/exec': true,
  '/pods/log': true,
  '/configmaps': true,
  '/secrets': true,
  '/serviceaccounts': true,
  '/serviceaccounts/token': true,
  '/nodes': false,
  '/namespaces': false,
  'apps/deployments': true,
  'batch/jobs': true,
  'rbac.authorization.k8s.io/roles': true,
  'rbac.authorization.k8s.io/clusterroles': false,
  'hourglass.dev/accessrequests': true,
};

export function isNamespaced(apiGroup: string, resource: string): boolean | undefined {
  return DISCOVERY[`${apiGroup}/${resource}`];
}

/** The UID of the subject pod "etl-7xk2p". */
export const SUBJECT_POD_UID = 'etl-7xk2p-uid';

/**
 * A service-account token as the webhook records it in spec.requester: bound to a pod when one is
 * given, else a plain token.
 */
export function serviceAccountToken(
  namespace: string,
  name: string,
  pod?: { name: string; uid: string },
): Requester {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    uid: `${name}-token-uid`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    ...(pod ? { extra: { [POD_NAME_EXTRA]: [pod.name], [POD_UID_EXTRA]: [pod.uid] } } : {}),
  };
}

/** The subject pod "etl-7xk2p" asking for itself, with its pod-bound token. */
export const SELF_REQUESTER = serviceAccountToken('batch', 'etl', {
  name: 'etl-7xk2p',
  uid: SUBJECT_POD_UID,
});

export function accessRequest(spec: Partial<AccessRequestSpec> = {}, namespace = 'batch'): AccessRequest {
  return {
    apiVersion: API_VERSION,
    kind: 'AccessRequest',
    metadata: { name: 'etl-read-orders', namespace, uid: 'request-uid' },
    spec: {
      subject: { podName: 'etl-7xk2p' },
      requester: SELF_REQUESTER,
      purpose: 'OPS-1234 nightly read of the orders table',
      permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
      ...spec,
    },
  };
}

const baseSpec = {
  subjects: { serviceAccounts: ['etl'] },
  requesters: { self: true },
  allow: { permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
};

export function accessPolicy(
  name: string,
  spec: Partial<AccessPolicySpec> = {},
  namespace = 'batch',
): AccessPolicy {
  return {
    apiVersion: API_VERSION,
    kind: 'AccessPolicy',
    metadata: { name, namespace, uid: `${name}-uid` },
    spec: { ...baseSpec, ...spec },
  };
}

export function clusterAccessPolicy(
  name: string,
  spec: Partial<ClusterAccessPolicySpec> = {},
): ClusterAccessPolicy {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterAccessPolicy',
    metadata: { name, uid: `${name}-uid` },
    spec: { ...baseSpec, ...spec },
  };
}

/**
 * A request for configmaps by service account "etl" in namespace "batch", asked by its subject pod
 * itself, and one policy allowing it.
 */
export function decisionInput(overrides: Partial<DecisionInput> = {}): DecisionInput {
  return {
    request: accessRequest(),
    subject: { serviceAccountName: 'etl', labels: { app: 'etl', team: 'data' } },
    subjectUid: SUBJECT_POD_UID,
    namespaceLabels: { 'kubernetes.io/metadata.name': 'batch', tier: 'batch' },
    policies: [accessPolicy('batch-readers')],
    activeGrants: 0,
    isNamespaced,
    controllerNamespace: CONTROLLER_NAMESPACE,
    signingKeySecretName: SIGNING_KEY_SECRET,
    ...overrides,
  };
}
