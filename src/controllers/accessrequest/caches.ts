import type {
  V1Job,
  V1Namespace,
  V1Pod,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import type { AccessRequest, AnyAccessPolicy } from '../../api/types.ts';

export interface ObjectCache<T> {
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
}

/** A cache that takes this process's own writes at once (see SupervisedInformer.recordWrite). */
export interface WrittenCache<T> extends ObjectCache<T> {
  recordWrite(obj: T): void;
  recordDeletion(obj: T): void;
}

/** What the AccessRequest controller watches, as its informers cache it. */
export interface Caches {
  requests: WrittenCache<AccessRequest>;
  pods: ObjectCache<V1Pod>;
  jobs: ObjectCache<V1Job>;
  serviceAccounts: ObjectCache<V1ServiceAccount>;
  namespaces: ObjectCache<V1Namespace>;
  policies: ObjectCache<AnyAccessPolicy>;
  clusterPolicies: ObjectCache<AnyAccessPolicy>;
  secrets: WrittenCache<V1Secret>;
  roles: WrittenCache<V1Role>;
  roleBindings: WrittenCache<V1RoleBinding>;
}
