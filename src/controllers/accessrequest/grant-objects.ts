import type { V1OwnerReference, V1Role, V1RoleBinding, V1Secret } from '@kubernetes/client-node';
import {
  GRANT_SECRET_TYPE,
  grantObjectNames,
  labels,
  MANAGED_BY,
  type AccessRequest,
} from '../../api/types.ts';
import type { Workload } from './subject.ts';

/** One issuance: what the Secret, Role and RoleBinding of a grant are built from. */
export interface Issuance {
  request: AccessRequest;
  workload: Workload;
  grantId: string;
  expiresAt: Date;
  /** The signed JWT, when the request asks for one. */
  token?: string;
}

export function grantLabels(request: AccessRequest, grantId: string): Record<string, string> {
  return {
    [labels.managedBy]: MANAGED_BY,
    [labels.request]: request.metadata.name,
    [labels.requestUid]: request.metadata.uid,
    [labels.grantId]: grantId,
  };
}

/** Owned by the subject, so Kubernetes' garbage collector removes the grant with the workload. */
function ownerReference(workload: Workload): V1OwnerReference {
  return {
    apiVersion: workload.kind === 'Pod' ? 'v1' : 'batch/v1',
    kind: workload.kind,
    name: workload.name,
    uid: workload.uid,
  };
}

function metadata(issuance: Issuance, name: string) {
  return {
    name,
    namespace: issuance.request.metadata.namespace,
    labels: grantLabels(issuance.request, issuance.grantId),
    ownerReferences: [ownerReference(issuance.workload)],
  };
}

export function grantSecret(issuance: Issuance): V1Secret {
  const { secretName } = grantObjectNames(issuance.request.metadata.name);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(issuance, secretName),
    type: GRANT_SECRET_TYPE,
    immutable: false,
    data: secretData(issuance),
  };
}

export function secretData(issuance: Issuance): Record<string, string> {
  const b64 = (value: string) => Buffer.from(value).toString('base64');
  return {
    grantId: b64(issuance.grantId),
    expiresAt: b64(issuance.expiresAt.toISOString()),
    ...(issuance.token ? { token: b64(issuance.token) } : {}),
  };
}

export function grantRole(issuance: Issuance): V1Role {
  const { roleName, secretName } = grantObjectNames(issuance.request.metadata.name);
  const requested = (issuance.request.spec.permissions ?? []).map((rule) => ({
    apiGroups: rule.apiGroups,
    resources: rule.resources,
    ...(rule.resourceNames?.length ? { resourceNames: rule.resourceNames } : {}),
    verbs: rule.verbs,
  }));
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: metadata(issuance, roleName),
    rules: [
      ...requested,
      { apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get'] },
    ],
  };
}

export function grantRoleBinding(issuance: Issuance): V1RoleBinding {
  const { roleName, roleBindingName } = grantObjectNames(issuance.request.metadata.name);
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: metadata(issuance, roleBindingName),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
    subjects: [
      {
        kind: 'ServiceAccount',
        name: issuance.workload.serviceAccountName,
        namespace: issuance.request.metadata.namespace,
      },
    ],
  };
}

/** Reads a grant Secret's string value. */
export function secretValue(secret: V1Secret, key: string): string | undefined {
  const value = secret.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}
