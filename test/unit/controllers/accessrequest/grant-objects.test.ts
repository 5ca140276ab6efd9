import { expect } from 'chai';
import type { RequestedRule } from '../../../../src/api/types.ts';
import {
  grantLabels,
  grantRole,
  grantRoleBinding,
  grantSecret,
  secretData,
  secretValue,
  type Issuance,
} from '../../../../src/controllers/accessrequest/grant-objects.ts';
import {
  at,
  HOUR,
  NAMESPACE,
  request,
  REQUEST_NAME,
  REQUEST_UID,
  workload,
  type SubjectKind,
} from './fixtures.ts';

const SECRET_NAME = `${REQUEST_NAME}-grant`;
const ROLE_NAME = `hourglass-${REQUEST_NAME}`;
const EXPIRES_AT = at(HOUR);

function issuance(
  options: { kind?: SubjectKind; permissions?: RequestedRule[] | undefined; token?: string } = {},
): Issuance {
  const kind = options.kind ?? 'Pod';
  const req = request({ subject: kind });
  if ('permissions' in options) req.spec.permissions = options.permissions;
  return {
    request: req,
    workload: workload(kind),
    grantId: 'grant-1',
    expiresAt: EXPIRES_AT,
    ...(options.token ? { token: options.token } : {}),
  };
}

const ownSecretRule = {
  apiGroups: [''],
  resources: ['secrets'],
  resourceNames: [SECRET_NAME],
  verbs: ['get'],
};
const decoded = (data: Record<string, string> | undefined) =>
  Object.fromEntries(
    Object.entries(data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()]),
  );

describe('grant objects', () => {
  describe('grantRole', () => {
    const cases: { name: string; permissions: RequestedRule[] | undefined; rules: object[] }[] = [
      {
        name: 'holds exactly the requested rule plus get on its own grant Secret',
        permissions: [
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
        ],
        rules: [
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
          ownSecretRule,
        ],
      },
      {
        name: 'holds several requested rules in their order, without adding resourceNames to a rule that has none',
        permissions: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          {
            apiGroups: ['batch'],
            resources: ['jobs', 'jobs/status'],
            resourceNames: ['etl'],
            verbs: ['get'],
          },
        ],
        rules: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
          {
            apiGroups: ['batch'],
            resources: ['jobs', 'jobs/status'],
            resourceNames: ['etl'],
            verbs: ['get'],
          },
          ownSecretRule,
        ],
      },
      {
        name: 'treats empty resourceNames as every object, as RBAC does',
        permissions: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [], verbs: ['get'] }],
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }, ownSecretRule],
      },
      {
        name: 'holds only get on its own grant Secret for a token-only request',
        permissions: undefined,
        rules: [ownSecretRule],
      },
    ];
    for (const { name, permissions, rules } of cases) {
      it(name, () => expect(grantRole(issuance({ permissions })).rules).to.deep.equal(rules));
    }

    it('is named hourglass-<request> in the request namespace', () => {
      const role = grantRole(issuance());
      expect(role).to.deep.include({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' });
      expect(role.metadata).to.deep.include({ name: ROLE_NAME, namespace: NAMESPACE });
    });

    it('never grants more than get on the grant Secret', () => {
      const secretRules = (grantRole(issuance({ permissions: undefined })).rules ?? []).filter((rule) =>
        rule.resources?.includes('secrets'),
      );
      expect(secretRules).to.deep.equal([ownSecretRule]);
    });
  });

  describe('grantRoleBinding', () => {
    it("binds the Role hourglass-<request> to the subject's service account", () => {
      const binding = grantRoleBinding(issuance());
      expect(binding).to.deep.include({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding' });
      expect(binding.metadata).to.deep.include({ name: ROLE_NAME, namespace: NAMESPACE });
      expect(binding.roleRef).to.deep.equal({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: ROLE_NAME,
      });
      expect(binding.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: 'etl', namespace: NAMESPACE }]);
    });

    it("binds the service account a Job's pods run as", () => {
      const job = issuance({ kind: 'Job' });
      job.workload = { ...job.workload, serviceAccountName: 'etl-runner' };
      expect(grantRoleBinding(job).subjects).to.deep.equal([
        { kind: 'ServiceAccount', name: 'etl-runner', namespace: NAMESPACE },
      ]);
    });
  });

  describe('grantSecret', () => {
    it('is named <request>-grant, of type hourglass.dev/grant', () => {
      const secret = grantSecret(issuance());
      expect(secret).to.deep.include({ apiVersion: 'v1', kind: 'Secret', type: 'hourglass.dev/grant' });
      expect(secret.metadata).to.deep.include({ name: SECRET_NAME, namespace: NAMESPACE });
    });

    it('holds grantId and expiresAt, and no token when none is given', () => {
      expect(decoded(grantSecret(issuance()).data)).to.deep.equal({
        grantId: 'grant-1',
        expiresAt: EXPIRES_AT.toISOString(),
      });
    });

    it('holds the token when one is given', () => {
      expect(decoded(grantSecret(issuance({ token: 'header.claims.signature' })).data)).to.deep.equal({
        grantId: 'grant-1',
        expiresAt: EXPIRES_AT.toISOString(),
        token: 'header.claims.signature',
      });
    });

    it('writes the same data that secretData computes for a patch', () => {
      const given = issuance({ token: 'header.claims.signature' });
      expect(grantSecret(given).data).to.deep.equal(secretData(given));
    });

    it('reads back each value with secretValue, and undefined for a missing key', () => {
      const secret = grantSecret(issuance());
      expect(secretValue(secret, 'grantId')).to.equal('grant-1');
      expect(secretValue(secret, 'expiresAt')).to.equal(EXPIRES_AT.toISOString());
      expect(secretValue(secret, 'token')).to.equal(undefined);
    });
  });

  describe('labels and owner reference', () => {
    const expectedLabels = {
      'app.kubernetes.io/managed-by': 'hourglass',
      'hourglass.dev/request': REQUEST_NAME,
      'hourglass.dev/request-uid': REQUEST_UID,
      'hourglass.dev/grant-id': 'grant-1',
    };
    const builders = { Secret: grantSecret, Role: grantRole, RoleBinding: grantRoleBinding };

    it('grantLabels are the four labels api.md names', () => {
      expect(grantLabels(request(), 'grant-1')).to.deep.equal(expectedLabels);
    });

    for (const [objectKind, build] of Object.entries(builders)) {
      it(`labels the ${objectKind} with managed-by, request, request-uid and grant-id`, () => {
        expect(build(issuance()).metadata?.labels).to.deep.equal(expectedLabels);
      });

      it(`makes the subject Pod (apiVersion v1) the owner of the ${objectKind}`, () => {
        expect(build(issuance({ kind: 'Pod' })).metadata?.ownerReferences).to.deep.equal([
          { apiVersion: 'v1', kind: 'Pod', name: 'etl-7xk2p', uid: 'pod-uid-1' },
        ]);
      });

      it(`makes the subject Job (apiVersion batch/v1) the owner of the ${objectKind}`, () => {
        expect(build(issuance({ kind: 'Job' })).metadata?.ownerReferences).to.deep.equal([
          { apiVersion: 'batch/v1', kind: 'Job', name: 'etl', uid: 'job-uid-1' },
        ]);
      });
    }

    it('labels a renewed grant with its new id', () => {
      const renewed = { ...issuance(), grantId: 'grant-2' };
      for (const build of Object.values(builders)) {
        expect(build(renewed).metadata?.labels?.['hourglass.dev/grant-id']).to.equal('grant-2');
      }
    });
  });
});
