import { expect } from 'chai';
import type { AccessRequestSpec } from '../../../src/api/types.ts';
import { neverGranted, type Refusal } from '../../../src/policy/never-granted.ts';
import { accessRequest, CONTROLLER_NAMESPACE, isNamespaced, SIGNING_KEY_SECRET } from './fixtures.ts';

const REACHES_BATCH =
  'reaches the Namespace "batch" itself (a RoleBinding\'s rules apply to its own namespace\'s object, so "delete" would delete the namespace), and namespaces are never granted: name the resources instead';

describe('neverGranted', () => {
  const refusalOf = (spec: Partial<AccessRequestSpec>, namespace = 'batch') =>
    neverGranted({
      request: accessRequest(spec, namespace),
      isNamespaced,
      controllerNamespace: CONTROLLER_NAMESPACE,
      signingKeySecretName: SIGNING_KEY_SECRET,
    });
  const permissions = (...rules: NonNullable<AccessRequestSpec['permissions']>) => ({ permissions: rules });

  const cases: [string, Partial<AccessRequestSpec>, Refusal | undefined][] = [
    ['refuses nothing in an ordinary request', {}, undefined],
    [
      'refuses the verb escalate',
      permissions({
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['roles'],
        verbs: ['get', 'escalate'],
      }),
      { reason: 'NeverGranted', message: 'permissions[0]: verb "escalate" is never granted' },
    ],
    [
      'refuses the verb bind in a later rule',
      permissions(
        { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['bind'] },
      ),
      { reason: 'NeverGranted', message: 'permissions[1]: verb "bind" is never granted' },
    ],
    [
      'refuses the verb impersonate',
      permissions({ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] }),
      { reason: 'NeverGranted', message: 'permissions[0]: verb "impersonate" is never granted' },
    ],
    [
      'refuses a "*" verb on roles, which would include escalate and bind',
      permissions({ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['*'] }),
      {
        reason: 'NeverGranted',
        message:
          'permissions[0]: verb "*" on "roles" in group "rbac.authorization.k8s.io" includes escalate and bind, which are never granted',
      },
    ],
    [
      'refuses a "*" verb on every resource of every group, which would include impersonate',
      permissions({ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }),
      {
        reason: 'NeverGranted',
        message:
          'permissions[0]: verb "*" on "roles" in group "rbac.authorization.k8s.io" includes escalate and bind, which are never granted',
      },
    ],
    [
      'refuses a "*" verb on serviceaccounts, which would include impersonate',
      permissions({ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['*'] }),
      {
        reason: 'NeverGranted',
        message: 'permissions[0]: verb "*" on "serviceaccounts" includes impersonate, which is never granted',
      },
    ],
    [
      'refuses a rule naming the signing key Secret, in any namespace',
      permissions({
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: [SIGNING_KEY_SECRET],
        verbs: ['get'],
      }),
      {
        reason: 'NeverGranted',
        message: `permissions[0]: Secret "${SIGNING_KEY_SECRET}" holds hourglass's signing keys and is never granted`,
      },
    ],
    [
      'refuses a cluster-scoped resource',
      permissions({ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }),
      {
        reason: 'NeverGranted',
        message: 'permissions[0]: "nodes" is cluster-scoped, and cluster-scoped resources are never granted',
      },
    ],
    [
      'refuses a resource the API server does not serve as unknown',
      permissions({ apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get'] }),
      {
        reason: 'UnknownResource',
        message: 'permissions[0]: unknown resource "widgets" in group "example.com"',
      },
    ],
    [
      'reports a never-granted verb before an unknown resource of an earlier rule',
      permissions(
        { apiGroups: ['example.com'], resources: ['widgets'], verbs: ['get'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['impersonate'] },
      ),
      { reason: 'NeverGranted', message: 'permissions[1]: verb "impersonate" is never granted' },
    ],
    [
      'does not look up wildcard resources of a group without the Namespace kind',
      permissions({ apiGroups: ['apps'], resources: ['*'], verbs: ['get'] }),
      undefined,
    ],
    [
      'refuses a namespace tenant resource "*" in every group, which reaches their own Namespace object',
      permissions({ apiGroups: ['*'], resources: ['*'], verbs: ['delete'] }),
      {
        reason: 'NeverGranted',
        message: `permissions[0]: resource "*" in group "*" ${REACHES_BATCH}`,
      },
    ],
    [
      'refuses a namespace tenant resource "*" in the core group, even to read',
      permissions({ apiGroups: [''], resources: ['configmaps', '*'], verbs: ['get'] }),
      { reason: 'NeverGranted', message: `permissions[0]: resource "*" ${REACHES_BATCH}` },
    ],
    [
      'refuses a namespace tenant "*/finalize", which reaches their Namespace\'s finalizers',
      permissions({ apiGroups: [''], resources: ['*/finalize'], verbs: ['update'] }),
      { reason: 'NeverGranted', message: `permissions[0]: resource "*/finalize" ${REACHES_BATCH}` },
    ],
    [
      'refuses resource "*" whose resourceNames include the namespace\'s name',
      permissions({ apiGroups: [''], resources: ['*'], verbs: ['delete'], resourceNames: ['batch'] }),
      { reason: 'NeverGranted', message: `permissions[0]: resource "*" ${REACHES_BATCH}` },
    ],
    [
      'lets resource "*" through when its resourceNames leave the namespace out',
      permissions({ apiGroups: [''], resources: ['*'], verbs: ['get'], resourceNames: ['orders-db'] }),
      undefined,
    ],
    [
      'lets a wildcard subresource the Namespace kind does not have through ("*/scale")',
      permissions({ apiGroups: [''], resources: ['*/scale'], verbs: ['get'] }),
      undefined,
    ],
    [
      'refuses nonResourceURLs',
      permissions({ apiGroups: [''], resources: ['pods'], verbs: ['get'], nonResourceURLs: ['/metrics'] }),
      { reason: 'NeverGranted', message: 'permissions[0]: nonResourceURLs are never granted' },
    ],
  ];
  for (const [name, spec, expected] of cases) {
    it(name, () => expect(refusalOf(spec)).to.deep.equal(expected));
  }

  it("refuses anything in the controller's own namespace, even a token alone", () => {
    const token = {
      audience: ['orders-api'],
      actions: ['orders:read'],
      target: 'postgres://orders-db/orders',
    };
    expect(refusalOf({ permissions: undefined, token }, CONTROLLER_NAMESPACE)).to.deep.equal({
      reason: 'NeverGranted',
      message: `namespace "${CONTROLLER_NAMESPACE}" is hourglass's own: nothing in it is ever granted`,
    });
  });
});
