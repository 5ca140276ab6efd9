import {
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import {
  GROUP,
  VERSION,
  plural,
  type AccessPolicyStatus,
  type AccessRequest,
  type AccessRequestStatus,
  type AnyAccessPolicy,
} from '../api/types.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The typed API clients hourglass uses, all sharing the KubeConfig's connection pool. */
export interface Clients {
  core: CoreV1Api;
  rbac: RbacAuthorizationV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  events: EventsV1Api;
  authorization: AuthorizationV1Api;
  accessRequests: AccessRequestClient;
  policyStatus: PolicyStatusClient;
}

export function makeClients(kc: KubeConfig): Clients {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    core: kc.makeApiClient(CoreV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom,
    events: kc.makeApiClient(EventsV1Api),
    authorization: kc.makeApiClient(AuthorizationV1Api),
    accessRequests: new AccessRequestClient(custom),
    policyStatus: new PolicyStatusClient(custom),
  };
}

/** The custom-objects API coordinates of one AccessRequest. */
const target = (namespace: string, name: string) => ({
  group: GROUP,
  version: VERSION,
  plural: plural.AccessRequest,
  namespace,
  name,
});
const targetOf = (request: AccessRequest) => target(request.metadata.namespace, request.metadata.name);

/** AccessRequest writes. Every write carries the resourceVersion it was computed from. */
export class AccessRequestClient {
  readonly #custom: CustomObjectsApi;

  constructor(custom: CustomObjectsApi) {
    this.#custom = custom;
  }

  async get(namespace: string, name: string): Promise<AccessRequest> {
    return (await this.#custom.getNamespacedCustomObject(target(namespace, name))) as AccessRequest;
  }

  /** Merge-patches the status; fails with 409 Conflict when the object changed since resourceVersion. */
  async patchStatus(request: AccessRequest, status: AccessRequestStatus): Promise<AccessRequest> {
    return (await this.#custom.patchNamespacedCustomObjectStatus(
      {
        ...targetOf(request),
        body: { metadata: { resourceVersion: request.metadata.resourceVersion }, status },
      },
      mergePatch,
    )) as AccessRequest;
  }

  /** Deletes the request if it is still the one with this UID. */
  async delete(request: AccessRequest): Promise<void> {
    await this.#custom.deleteNamespacedCustomObject({
      ...targetOf(request),
      body: { preconditions: { uid: request.metadata.uid } },
    });
  }

  /**
   * Removes one finalizer by position, guarded by a JSON-patch test of that position, so a stale
   * resourceVersion does not make it fail (and a concurrent change of the list does). Answers the
   * request as it is after the patch; undefined when it did not hold the finalizer.
   */
  async removeFinalizer(request: AccessRequest, finalizer: string): Promise<AccessRequest | undefined> {
    const index = request.metadata.finalizers?.indexOf(finalizer) ?? -1;
    if (index < 0) return undefined;
    return (await this.#custom.patchNamespacedCustomObject(
      {
        ...targetOf(request),
        body: [
          { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
          { op: 'remove', path: `/metadata/finalizers/${index}` },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )) as AccessRequest;
  }

  /** Replaces the finalizers; fails with 409 Conflict when the object changed since resourceVersion. */
  async setFinalizers(request: AccessRequest, finalizers: string[]): Promise<AccessRequest> {
    return (await this.#custom.patchNamespacedCustomObject(
      {
        ...targetOf(request),
        body: { metadata: { resourceVersion: request.metadata.resourceVersion, finalizers } },
      },
      mergePatch,
    )) as AccessRequest;
  }
}

/** Status writes of AccessPolicies and ClusterAccessPolicies. */
export class PolicyStatusClient {
  readonly #custom: CustomObjectsApi;

  constructor(custom: CustomObjectsApi) {
    this.#custom = custom;
  }

  /** Merge-patches the status; fails with 409 Conflict when the policy changed since resourceVersion. */
  async patchStatus(policy: AnyAccessPolicy, status: AccessPolicyStatus): Promise<AnyAccessPolicy> {
    const body = { metadata: { resourceVersion: policy.metadata.resourceVersion }, status };
    const target = {
      group: GROUP,
      version: VERSION,
      plural: plural[policy.kind],
      name: policy.metadata.name,
    };
    return (await (policy.kind === 'AccessPolicy'
      ? this.#custom.patchNamespacedCustomObjectStatus(
          { ...target, namespace: policy.metadata.namespace ?? '', body },
          mergePatch,
        )
      : this.#custom.patchClusterCustomObjectStatus({ ...target, body }, mergePatch))) as AnyAccessPolicy;
  }
}
