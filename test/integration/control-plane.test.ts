import { expect } from 'chai';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  adminConfig,
  eventually,
  kubectl,
  kubectlOk,
  tokenConfig,
  useNamespace,
} from '../support/cluster.ts';

describe('the local control plane', () => {
  const namespace = useNamespace('control-plane');

  it('runs a Job to Complete on the kwok node and garbage-collects its pods when it is deleted', async () => {
    await kubectlOk(['-n', namespace(), 'create', 'job', 'hello', '--image=busybox', '--', 'true']);
    await kubectlOk(['-n', namespace(), 'wait', '--for=condition=Complete', 'job/hello', '--timeout=60s']);
    const pods = JSON.parse(
      await kubectlOk(['-n', namespace(), 'get', 'pods', '-l', 'job-name=hello', '-o', 'json']),
    );
    expect(pods.items).to.have.length.greaterThan(0);
    expect(pods.items[0].status.phase).to.equal('Succeeded');

    await kubectlOk(['-n', namespace(), 'delete', 'job', 'hello']);
    await eventually(
      async () => {
        const left = JSON.parse(
          await kubectlOk(['-n', namespace(), 'get', 'pods', '-l', 'job-name=hello', '-o', 'json']),
        );
        expect(left.items).to.have.length(0);
      },
      { what: 'the Job pods to be garbage-collected' },
    );
  });

  it('answers can-i from real RBAC: no, yes after a RoleBinding, no again after deleting it', async () => {
    const ns = namespace();
    await kubectlOk(['-n', ns, 'create', 'serviceaccount', 'reader']);
    const canI = async () =>
      (
        await kubectl([
          '-n',
          ns,
          'auth',
          'can-i',
          'get',
          'configmaps',
          `--as=system:serviceaccount:${ns}:reader`,
        ])
      ).stdout.trim();
    expect(await canI()).to.equal('no');
    await kubectlOk(['-n', ns, 'create', 'role', 'read-cm', '--verb=get', '--resource=configmaps']);
    await kubectlOk([
      '-n',
      ns,
      'create',
      'rolebinding',
      'read-cm',
      '--role=read-cm',
      `--serviceaccount=${ns}:reader`,
    ]);
    expect(await canI()).to.equal('yes');
    await kubectlOk(['-n', ns, 'delete', 'rolebinding', 'read-cm']);
    expect(await canI()).to.equal('no');
  });

  it('authenticates a pod-bound service-account token as that service account, with the pod in its extra', async () => {
    const ns = namespace();
    await kubectlOk(['-n', ns, 'create', 'serviceaccount', 'worker']);
    await kubectlOk([
      '-n',
      ns,
      'run',
      'worker',
      '--image=busybox',
      '--overrides={"spec":{"serviceAccountName":"worker"}}',
    ]);
    const pod = await adminConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedPod({ name: 'worker', namespace: ns });
    const token = (
      await kubectlOk([
        '-n',
        ns,
        'create',
        'token',
        'worker',
        '--bound-object-kind=Pod',
        '--bound-object-name=worker',
      ])
    ).trim();

    const review = await tokenConfig(token)
      .makeApiClient(AuthenticationV1Api)
      .createSelfSubjectReview({ body: {} });
    const user = review.status?.userInfo;
    expect(user?.username).to.equal(`system:serviceaccount:${ns}:worker`);
    expect(user?.extra?.['authentication.kubernetes.io/pod-name']).to.deep.equal(['worker']);
    expect(user?.extra?.['authentication.kubernetes.io/pod-uid']).to.deep.equal([pod.metadata?.uid]);
  });

  it('reuses one keep-alive connection for many sequential API requests', async () => {
    const kc = adminConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await core.readNamespace({ name: namespace() });
    const before = kc.connectionsOpened;
    for (let i = 0; i < 25; i++) await core.readNamespace({ name: namespace() });
    expect(kc.connectionsOpened - before).to.be.at.most(1);
  });
});
