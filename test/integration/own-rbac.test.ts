// The controller as an install runs it: as its own service account under the chart's RBAC, never
// as cluster admin. It grants what the aggregated grantable ceiling holds and fails a request
// beyond it clearly, leaving nothing behind.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { ensureCrds, eventually, kubectl, kubectlOk, tokenConfig, useNamespace } from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import { render, type Manifest } from '../support/helm.ts';
import {
  api,
  canI,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  grantObjectsPresent,
  readOrders,
  readOrdersSecret,
  waitForPhase,
} from '../support/hourglass.ts';
import { plainToken, webhookRegistered } from '../support/identities.ts';

const RELEASE = 'own-rbac';
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/**
 * What only a controller run outside the cluster needs: it registers its own webhook by URL and
 * its status policy (an install gets the chart's instead).
 */
function localWebhookRegistration(namespace: string, serviceAccount: string): Manifest[] {
  const name = `${RELEASE}-local-webhook-registration`;
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: [
        {
          apiGroups: ['admissionregistration.k8s.io'],
          resources: [
            'mutatingwebhookconfigurations',
            'validatingwebhookconfigurations',
            'validatingadmissionpolicies',
            'validatingadmissionpolicybindings',
          ],
          verbs: ['get', 'create', 'update', 'delete'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
    },
  ];
}

describe('the controller under its own RBAC', function () {
  this.timeout(120_000);
  let manifests: Manifest[] = [];
  let controller: ControllerProcess | undefined;
  let serviceAccount = '';
  let dir = '';
  // Registered before the namespaces' own hooks, so it runs before they are deleted.
  after(async () => {
    await controller?.stop();
    const clusterScoped = manifests.filter((m) => m.kind.startsWith('Cluster'));
    for (const m of clusterScoped) await kubectl(['delete', m.kind, m.metadata.name, '--ignore-not-found']);
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const namespace = useNamespace('own-rbac');
  const controllerNamespace = useNamespace('own-rbac-controller');

  before(async function () {
    this.timeout(120_000);
    await ensureCrds();
    const rendered = await render(RELEASE, controllerNamespace());
    serviceAccount = rendered.find((m) => m.kind === 'ServiceAccount')?.metadata.name as string;
    manifests = [
      ...rendered.filter((m) => RBAC_KINDS.has(m.kind)),
      ...localWebhookRegistration(controllerNamespace(), serviceAccount),
    ];
    await kubectlOk(['apply', '-f', '-'], manifests.map((m) => stringify(m)).join('---\n'));
    await eventually(
      async () => {
        const grantable = await api().rbac.readClusterRole({ name: `${RELEASE}-hourglass-grantable` });
        expect(grantable.rules ?? []).to.not.deep.equal([]);
      },
      { what: 'the aggregated grantable ClusterRole to be filled in' },
    );
    dir = await mkdtemp(path.join(os.tmpdir(), 'hourglass-own-rbac-'));
    const kubeconfig = path.join(dir, 'kubeconfig');
    const token = await plainToken(controllerNamespace(), serviceAccount);
    await writeFile(kubeconfig, tokenConfig(token).exportConfig(), { mode: 0o600 });
    controller = await ControllerProcess.start(
      'own-rbac',
      ['--namespace', controllerNamespace(), '--no-leader-election'],
      { KUBECONFIG: kubeconfig },
    );
    await webhookRegistered();
    const ns = namespace();
    await createServiceAccount(ns, 'etl');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && controller) {
      console.log(`--- controller log tail (${controller.logFile}):\n${controller.tail(40)}`);
    }
  });

  it('runs as a service account that holds no escalate, bind or impersonate', async () => {
    const as = `system:serviceaccount:${controllerNamespace()}:${serviceAccount}`;
    for (const [verb, resource] of [
      ['escalate', 'roles.rbac.authorization.k8s.io'],
      ['bind', 'clusterroles.rbac.authorization.k8s.io'],
      ['impersonate', 'serviceaccounts'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
    ] as const) {
      const answer = await kubectl(['auth', 'can-i', verb, resource, '--all-namespaces', '--as', as]);
      expect(answer.stdout.trim(), `${verb} ${resource}`).to.equal('no');
    }
    expect(controller!.lines.some((l) => l.message === 'Started controller')).to.equal(true);
  });

  it('grants what the grantable ceiling holds', async () => {
    const ns = namespace();
    await createPolicy(ns, 'read-orders', {
      subjects: { serviceAccounts: ['etl'] },
      allow: readOrdersSecret,
    });
    await createPod(ns, 'reader', 'etl');
    await createRequest(ns, 'within', { subject: { podName: 'reader' }, ...readOrders });
    const request = await waitForPhase(ns, 'within', 'Granted');
    expect(request.status?.grant?.id).to.be.a('string');
    expect(await canI(ns, 'etl', 'get', 'secrets', 'orders-db')).to.equal(true);
  });

  it('fails a rule beyond the ceiling with BeyondCeiling and a clear message, leaving nothing behind', async () => {
    const ns = namespace();
    const deleteConfigMaps = {
      permissions: [
        { apiGroups: [''], resources: ['configmaps'], resourceNames: ['settings'], verbs: ['delete'] },
      ],
    };
    await createPolicy(ns, 'delete-settings', {
      subjects: { serviceAccounts: ['etl'] },
      allow: { ...readOrdersSecret, ...deleteConfigMaps },
    });
    await createPod(ns, 'deleter', 'etl');
    await createRequest(ns, 'beyond', { subject: { podName: 'deleter' }, ...deleteConfigMaps });
    const request = await waitForPhase(ns, 'beyond', 'Failed');
    expect(request.status?.reason).to.equal('BeyondCeiling');
    expect(request.status?.decision).to.contain('hourglass itself does not hold what the Role would grant');
    expect((await grantObjectsPresent(ns, 'beyond')).any).to.equal(false);
    expect(await canI(ns, 'etl', 'delete', 'configmaps', 'settings')).to.equal(false);
  });
});
