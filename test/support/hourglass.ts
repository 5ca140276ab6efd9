// Helpers to drive hourglass objects in integration tests, as a user would.
import {
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import {
  GROUP,
  VERSION,
  grantObjectNames,
  plural,
  type AccessPolicySpec,
  type AccessRequest,
  type AccessRequestSpec,
  type Phase,
} from '../../src/api/types.ts';
import { ignoreNotFound } from '../../src/k8s/errors.ts';
import { adminConfig, eventually } from './cluster.ts';

export const api = () => {
  const kc = adminConfig();
  return {
    core: kc.makeApiClient(CoreV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    authorization: kc.makeApiClient(AuthorizationV1Api),
  };
};

const crd = (kind: keyof typeof plural) => ({ group: GROUP, version: VERSION, plural: plural[kind] });

export const readOrdersSecret: AccessPolicySpec['allow'] = {
  permissions: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] }],
  token: { audiences: ['orders-api'], actions: ['orders:read'], targets: ['postgres://orders-db/*'] },
};

export async function createPolicy(namespace: string, name: string, spec: Partial<AccessPolicySpec> = {}) {
  return api().custom.createNamespacedCustomObject({
    ...crd('AccessPolicy'),
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessPolicy',
      metadata: { name, namespace },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        // Tests ask as the cluster admin; the requesters.self path has tests of its own.
        requesters: { groups: ['system:masters'] },
        allow: readOrdersSecret,
        maxActivePerSubject: 1000,
        ...spec,
      },
    },
  });
}

export async function patchPolicy(namespace: string, name: string, spec: Partial<AccessPolicySpec>) {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  return api().custom.patchNamespacedCustomObject(
    { ...crd('AccessPolicy'), namespace, name, body: { spec } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export const readOrders: Pick<AccessRequestSpec, 'permissions' | 'token'> = {
  permissions: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] }],
  token: { audience: ['orders-api'], actions: ['orders:read'], target: 'postgres://orders-db/orders' },
};

export async function createRequest(
  namespace: string,
  name: string,
  spec: Partial<AccessRequestSpec> & Pick<AccessRequestSpec, 'subject'>,
): Promise<AccessRequest> {
  return (await api().custom.createNamespacedCustomObject({
    ...crd('AccessRequest'),
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessRequest',
      metadata: { name, namespace },
      spec: { purpose: 'OPS-1 integration test', ttl: '5m', ...readOrders, ...spec },
    },
  })) as AccessRequest;
}

export async function getRequest(namespace: string, name: string): Promise<AccessRequest | undefined> {
  return ignoreNotFound(
    api().custom.getNamespacedCustomObject({
      ...crd('AccessRequest'),
      namespace,
      name,
    }) as Promise<AccessRequest>,
  );
}

export async function annotateRequest(namespace: string, name: string, annotations: Record<string, string>) {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  return api().custom.patchNamespacedCustomObject(
    { ...crd('AccessRequest'), namespace, name, body: { metadata: { annotations } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

export async function deleteRequest(namespace: string, name: string) {
  return api().custom.deleteNamespacedCustomObject({ ...crd('AccessRequest'), namespace, name });
}

export async function waitForPhase(
  namespace: string,
  name: string,
  phase: Phase,
  timeout = 30_000,
): Promise<AccessRequest> {
  return eventually(
    async () => {
      const request = await getRequest(namespace, name);
      if (request?.status?.phase !== phase) {
        throw new Error(
          `phase is ${request?.status?.phase} (${request?.status?.reason}: ${request?.status?.decision ?? ''})`,
        );
      }
      return request;
    },
    { timeout, what: `AccessRequest ${namespace}/${name} to be ${phase}` },
  );
}

export async function createServiceAccount(namespace: string, name: string) {
  return api().core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

export async function createPod(
  namespace: string,
  name: string,
  serviceAccountName: string,
  labels: Record<string, string> = {},
) {
  return api().core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels },
      spec: { serviceAccountName, nodeName: 'kwok-node-0', containers: [{ name: 'main', image: 'busybox' }] },
    },
  });
}

/** What the API server's authorizer says the service account may do, as `kubectl auth can-i --as` does. */
export async function canI(
  namespace: string,
  serviceAccount: string,
  verb: string,
  resource: string,
  name?: string,
) {
  const review = await api().authorization.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: { namespace, verb, resource, ...(name ? { name } : {}) },
      },
    },
  });
  return review.status?.allowed === true;
}

/** Which of the request's Secret, Role and RoleBinding exist now. */
export async function grantObjectsPresent(namespace: string, requestName: string) {
  const { core, rbac } = api();
  const names = grantObjectNames(requestName);
  const [secret, role, roleBinding] = await Promise.all([
    ignoreNotFound(core.readNamespacedSecret({ namespace, name: names.secretName })),
    ignoreNotFound(rbac.readNamespacedRole({ namespace, name: names.roleName })),
    ignoreNotFound(rbac.readNamespacedRoleBinding({ namespace, name: names.roleBindingName })),
  ]);
  return { secret, role, roleBinding, any: Boolean(secret || role || roleBinding) };
}

/** Creates `count` pods of service account etl and one AccessRequest for each, all at once. */
export async function requestBurst(
  namespace: string,
  prefix: string,
  count: number,
  ttl: string,
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  await Promise.all(names.map((name) => createPod(namespace, name, 'etl')));
  await Promise.all(names.map((name) => createRequest(namespace, name, { subject: { podName: name }, ttl })));
  return names;
}
