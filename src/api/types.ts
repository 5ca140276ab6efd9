import type { V1ObjectMeta } from '@kubernetes/client-node';
import type {
  AccessPolicySpec,
  AccessPolicyStatus,
  AccessRequestSpec,
  AccessRequestStatus,
  ClusterAccessPolicySpec,
} from './types.generated.ts';
import { GROUP, VERSION } from './schema.ts';

export type * from './types.generated.ts';
export { GROUP, VERSION };
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface AccessRequest {
  apiVersion: typeof API_VERSION;
  kind: 'AccessRequest';
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: AccessRequestSpec;
  status?: AccessRequestStatus;
}

export interface AccessPolicy {
  apiVersion: typeof API_VERSION;
  kind: 'AccessPolicy';
  metadata: V1ObjectMeta & { name: string; namespace: string; uid: string };
  spec: AccessPolicySpec;
  status?: AccessPolicyStatus;
}

export interface ClusterAccessPolicy {
  apiVersion: typeof API_VERSION;
  kind: 'ClusterAccessPolicy';
  metadata: V1ObjectMeta & { name: string; uid: string };
  spec: ClusterAccessPolicySpec;
  status?: AccessPolicyStatus;
}

export type AnyAccessPolicy = AccessPolicy | ClusterAccessPolicy;

export type Phase = NonNullable<AccessRequestStatus['phase']>;
export const TERMINAL_PHASES: ReadonlySet<Phase> = new Set(['Denied', 'Expired', 'Revoked', 'Failed']);

export type RevocationReason =
  | 'Expired'
  | 'PodDeleted'
  | 'PodFinished'
  | 'JobFinished'
  | 'JobDeleted'
  | 'RequestDeleted'
  | 'PolicyChanged'
  | 'ContextChanged'
  | 'ServiceAccountChanged'
  | 'NameConflict'
  | 'Renewed'
  | 'Manual';

export type FailureReason = 'NameConflict' | 'SubjectNotFound' | 'SubjectFinished' | 'BeyondCeiling';

export const plural = {
  AccessRequest: 'accessrequests',
  AccessPolicy: 'accesspolicies',
  ClusterAccessPolicy: 'clusteraccesspolicies',
} as const;

export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  request: 'hourglass.dev/request',
  requestUid: 'hourglass.dev/request-uid',
  grantId: 'hourglass.dev/grant-id',
} as const;
export const MANAGED_BY = 'hourglass';

export const annotations = {
  renew: 'hourglass.dev/renew',
  revoke: 'hourglass.dev/revoke',
  /**
   * The user name that last set or changed `hourglass.dev/renew`, as the API server authenticated
   * them; stamped by the admission webhook, which refuses it from anyone else.
   */
  renewRequestedBy: 'hourglass.dev/renew-requested-by',
  /** The same for `hourglass.dev/revoke`. */
  revokeRequestedBy: 'hourglass.dev/revoke-requested-by',
  /** The subject Pod's or Job's UID when the request was admitted, set by the admission webhook. */
  subjectUid: 'hourglass.dev/subject-uid',
} as const;

export const FINALIZER = 'hourglass.dev/grant-cleanup';
export const GRANT_SECRET_TYPE = 'hourglass.dev/grant';

/** The deterministic names of the objects a request's grant is made of. */
export function grantObjectNames(requestName: string) {
  return {
    secretName: `${requestName}-grant`,
    roleName: `hourglass-${requestName}`,
    roleBindingName: `hourglass-${requestName}`,
  };
}
