import type { V1OwnerReference, V1Role, V1RoleBinding, V1Secret } from '@kubernetes/client-node';
import {
  GRANT_SECRET_TYPE,
  grantObjectNames,
  labels,
  MANAGED_BY,
  type AccessRequest,
  type AccessRequestStatus,
} from '../../api/types.ts';
import type { GrantObjectKind } from '../../k8s/grant-store.ts';
import type { GrantTokenClaims } from '../../tokens/grant-token.ts';
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

/** The issuance status records for this request: its terms come from status only. */
export function issuanceOf(request: AccessRequest, workload: Workload): Issuance {
  const grant = request.status?.grant;
  return {
    request,
    workload,
    grantId: grant?.id ?? '',
    expiresAt: new Date(grant?.expiresAt ?? 0),
  };
}

/** The claims of an issuance's token; undefined when the request asks for none. */
export function grantTokenClaims(issuance: Issuance): Omit<GrantTokenClaims, 'issuer'> | undefined {
  const { request, workload, grantId, expiresAt } = issuance;
  const token = request.spec.token;
  if (!token) return undefined;
  const { namespace, name, uid } = request.metadata;
  return {
    namespace,
    serviceAccountName: workload.serviceAccountName,
    audience: token.audience[0] ?? '',
    grantId,
    issuedAt: new Date(request.status?.grant?.issuedAt ?? expiresAt),
    expiresAt,
    request: { namespace, name, uid },
    purpose: request.spec.purpose,
    actions: token.actions,
    target: token.target,
    workload: { kind: workload.kind, name: workload.name, uid: workload.uid },
    renewal: request.status?.renewals ?? 0,
  };
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

/** The order grant objects are created in; they are deleted in the reverse order. */
export const GRANT_KINDS: readonly GrantObjectKind[] = ['Secret', 'Role', 'RoleBinding'];

type Grant = NonNullable<AccessRequestStatus['grant']>;
const UID_FIELD = { Secret: 'secretUID', Role: 'roleUID', RoleBinding: 'roleBindingUID' } as const;

/** The deterministic name of one of a request's grant objects. */
export function grantObjectName(kind: GrantObjectKind, requestName: string): string {
  const names = grantObjectNames(requestName);
  return { Secret: names.secretName, Role: names.roleName, RoleBinding: names.roleBindingName }[kind];
}

/** The UIDs of the grant objects hourglass created, by kind, as status records them. */
export type RecordedUids = Partial<Record<GrantObjectKind, string>>;

export function recordedUids(grant: Grant | undefined): RecordedUids {
  const uids: RecordedUids = {};
  for (const kind of GRANT_KINDS) {
    const uid = grant?.[UID_FIELD[kind]];
    if (uid) uids[kind] = uid;
  }
  return uids;
}

/** The status.grant fields that record these UIDs. */
export function uidFields(uids: RecordedUids): Pick<Grant, 'secretUID' | 'roleUID' | 'roleBindingUID'> {
  const fields: Pick<Grant, 'secretUID' | 'roleUID' | 'roleBindingUID'> = {};
  for (const kind of GRANT_KINDS) if (uids[kind]) fields[UID_FIELD[kind]] = uids[kind];
  return fields;
}
