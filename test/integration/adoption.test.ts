import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions, AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { adoption } from '../../src/api/adoption.ts';
import { GROUP, VERSION, type AccessRequest } from '../../src/api/types.ts';
import { LOCAL_WEBHOOK_NAME } from '../../src/k8s/webhook-registration.ts';
import {
  adminConfig,
  ensureCrds,
  eventually,
  kubectl,
  kubectlOk,
  repoRoot,
  useNamespace,
} from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import { api, createPolicy, createServiceAccount, getRequest, waitForPhase } from '../support/hourglass.ts';
import {
  createRequestAs,
  eventsOf,
  grantRole,
  kubectlAs,
  requestRules,
  webhookRegistered,
} from '../support/identities.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** A gate of the test's own: kwok would run the pod to completion the moment it is scheduled. */
const HOLD = 'test.hourglass.dev/hold';

describe('Zero-code adoption', function () {
  this.timeout(180_000);
  const namespace = useNamespace('adopt');
  let controller: ControllerProcess | undefined;

  before(async function () {
    this.timeout(90_000);
    await ensureCrds();
    controller = await ControllerProcess.start('adoption', ['--adoption-refusal-grace', '4s']);
    await webhookRegistered();
    await createServiceAccount(namespace(), 'etl');
    await createServiceAccount(namespace(), 'intruder');
    await createPolicy(namespace(), 'etl-self', {
      requesters: { self: true },
      maxTTL: '1h',
      defaultTTL: '15m',
    });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && controller)
      console.log(`--- controller log tail (${controller.logFile}):\n${controller.tail(40)}`);
  });
  after(async () => {
    await controller?.stop();
    const admission = adminConfig().makeApiClient(AdmissionregistrationV1Api);
    await admission.deleteMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }).catch(() => undefined);
    await admission.deleteValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }).catch(() => undefined);
  });

  const declared = (extra: Record<string, string> = {}) => ({
    [adoption.access]: 'get secrets/orders-db',
    [adoption.token]: 'orders-api orders:read postgres://orders-db/orders',
    ...extra,
  });

  async function createJob(
    name: string,
    options: {
      annotations?: Record<string, string>;
      serviceAccountName?: string;
      hold?: boolean;
      optIn?: boolean;
      suspend?: boolean;
    } = {},
  ): Promise<V1Job> {
    const {
      annotations = declared(),
      serviceAccountName = 'etl',
      hold = true,
      optIn = true,
      suspend = false,
    } = options;
    return api().batch.createNamespacedJob({
      namespace: namespace(),
      body: {
        metadata: { name },
        spec: {
          backoffLimit: 0,
          suspend,
          template: {
            metadata: { labels: optIn ? { [adoption.inject]: 'true' } : {}, annotations },
            spec: {
              serviceAccountName,
              restartPolicy: 'Never',
              ...(hold ? { schedulingGates: [{ name: HOLD }] } : {}),
              containers: [
                { name: 'main', image: 'example.com/etl:1', securityContext: { runAsUser: 1000 } },
              ],
            },
          },
        },
      },
    });
  }

  async function podOf(job: string): Promise<V1Pod> {
    return eventually(
      async () => {
        const pods = await api().core.listNamespacedPod({
          namespace: namespace(),
          labelSelector: `batch.kubernetes.io/job-name=${job}`,
        });
        const pod = pods.items[0];
        if (!pod) throw new Error('no pod yet');
        return pod;
      },
      { timeout: 30_000, what: `a pod of Job ${job}` },
    );
  }

  const gatesOf = async (name: string) =>
    ((await api().core.readNamespacedPod({ namespace: namespace(), name })).spec?.schedulingGates ?? []).map(
      (gate) => gate.name,
    );

  it('gates an opted-in pod at admission and mounts the grant Secret, readable by any uid, in every container', async () => {
    const admitted = JSON.parse(
      await kubectlOk(
        ['-n', namespace(), 'create', '--dry-run=server', '-o', 'json', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'dry', labels: { [adoption.inject]: 'true' }, annotations: declared() },
          spec: {
            serviceAccountName: 'etl',
            initContainers: [{ name: 'setup', image: 'busybox' }],
            containers: [
              { name: 'main', image: 'busybox', securityContext: { runAsUser: 1000 } },
              { name: 'sidecar', image: 'busybox', securityContext: { runAsUser: 2000 } },
            ],
          },
        }),
      ),
    ) as V1Pod;
    expect(admitted.spec?.schedulingGates).to.deep.equal([{ name: adoption.gate }]);
    const volume = admitted.spec?.volumes?.find((v) => v.name === adoption.volumeName);
    expect(volume?.secret).to.deep.equal({ secretName: 'pod-dry-grant', optional: true, defaultMode: 0o444 });
    for (const container of [
      ...(admitted.spec?.initContainers ?? []),
      ...(admitted.spec?.containers ?? []),
    ]) {
      expect(container.volumeMounts, container.name).to.deep.include({
        name: adoption.volumeName,
        mountPath: adoption.mountPath,
        readOnly: true,
      });
    }
  });

  it("creates an opted-in Job's request as its pod, and lifts the gate once Granted", async () => {
    await createJob('nightly');
    const pod = await podOf('nightly');
    const volume = pod.spec?.volumes?.find((v) => v.name === adoption.volumeName);
    expect(volume?.secret?.secretName).to.equal('job-nightly-grant');
    const request = await waitForPhase(namespace(), 'job-nightly', 'Granted');
    expect(request.spec.subject).to.deep.equal({ jobName: 'nightly' });
    expect(request.spec.requester?.username).to.equal(`system:serviceaccount:${namespace()}:etl`);
    expect(request.status?.policy?.name).to.equal('etl-self');
    await eventually(
      async () => {
        const gates = await gatesOf(pod.metadata!.name!);
        if (gates.includes(adoption.gate)) throw new Error(`gates: ${gates.join(',')}`);
        expect(gates).to.deep.equal([HOLD]);
      },
      { timeout: 15_000, what: 'the grant gate to be removed' },
    );
    const secret = await api().core.readNamespacedSecret({
      namespace: namespace(),
      name: 'job-nightly-grant',
    });
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(['expiresAt', 'grantId', 'token']);
    expect(Buffer.from(secret.data!.grantId!, 'base64').toString()).to.equal(request.status?.grant?.id);
  });

  it('runs the annotated Job and CronJob examples, in 5 lines of hourglass metadata, from gate to revocation', async () => {
    const examples = ['access-policy.yaml', 'job-annotated.yaml', 'cronjob-annotated.yaml'].map(
      (file) =>
        parse(
          readFileSync(path.join(repoRoot, 'examples', file), 'utf8').replaceAll(
            'namespace: batch',
            `namespace: ${namespace()}`,
          ),
        ) as { kind: string; metadata: { name: string }; spec: Record<string, any> }, // eslint-disable-line @typescript-eslint/no-explicit-any
    );
    const [policy, job, cronJob] = examples as [
      (typeof examples)[0],
      (typeof examples)[0],
      (typeof examples)[0],
    ];
    for (const template of [job.spec.template, cronJob.spec.jobTemplate.spec.template]) {
      const hourglassLines = [
        ...Object.keys(template.metadata.labels ?? {}),
        ...Object.keys(template.metadata.annotations ?? {}),
      ].filter((key) => key.startsWith('hourglass.dev/'));
      expect(hourglassLines.length).to.be.at.most(5);
    }
    policy.metadata.name = 'examples';
    for (const manifest of examples) await kubectlOk(['apply', '-f', '-'], JSON.stringify(manifest));
    await kubectlOk([
      '-n',
      namespace(),
      'create',
      'job',
      '--from=cronjob/hourly-orders',
      'hourly-orders-manual',
    ]);
    for (const name of [job.metadata.name, 'hourly-orders-manual']) {
      // Granted, then kwok runs the ungated pod to completion: the Job completes, the grant is revoked.
      const revoked = await waitForPhase(namespace(), `job-${name}`, 'Revoked', 60_000);
      expect(revoked.spec.purpose).to.match(/^OPS-1234 /);
      expect(revoked.status?.firstIssuedAt).to.be.a('string');
      expect(revoked.status?.revocation?.reason).to.equal('JobFinished');
    }
  });

  it('leaves pods without the opt-in label untouched', async () => {
    await createJob('plain', { optIn: false });
    const pod = await podOf('plain');
    expect(pod.spec?.schedulingGates?.map((gate) => gate.name)).to.deep.equal([HOLD]);
    expect(pod.spec?.volumes?.some((v) => v.name === adoption.volumeName)).to.equal(false);
    expect(await getRequest(namespace(), 'job-plain')).to.equal(undefined);
  });

  it('refuses at creation a pod whose declaration does not parse, naming the annotation', async () => {
    const result = await kubectl(
      ['-n', namespace(), 'create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'typo',
          labels: { [adoption.inject]: 'true' },
          annotations: { [adoption.access]: 'get secrets/orders-db', [adoption.ttl]: '15 minutes' },
        },
        spec: { serviceAccountName: 'etl', containers: [{ name: 'main', image: 'busybox' }] },
      }),
    );
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.contain('hourglass.dev/ttl: "15 minutes" is not a Go duration');
  });

  it('grants a bare pod by its own name and lifts its gate', async () => {
    await kubectlOk(
      ['-n', namespace(), 'create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'adhoc', labels: { [adoption.inject]: 'true' }, annotations: declared() },
        spec: { serviceAccountName: 'etl', containers: [{ name: 'main', image: 'busybox' }] },
      }),
    );
    const request = await waitForPhase(namespace(), 'pod-adhoc', 'Granted');
    expect(request.spec.subject).to.deep.equal({ podName: 'adhoc' });
    await eventually(async () => expect(await gatesOf('adhoc')).to.not.include(adoption.gate), {
      timeout: 15_000,
      what: 'the gate of pod adhoc to be removed',
    });
  });

  it('gives each Job of a CronJob its own request', async () => {
    await api().batch.createNamespacedCronJob({
      namespace: namespace(),
      body: {
        metadata: { name: 'hourly' },
        spec: {
          schedule: '0 * * * *',
          suspend: true,
          jobTemplate: {
            spec: {
              backoffLimit: 0,
              template: {
                metadata: { labels: { [adoption.inject]: 'true' }, annotations: declared() },
                spec: {
                  serviceAccountName: 'etl',
                  restartPolicy: 'Never',
                  schedulingGates: [{ name: HOLD }],
                  containers: [{ name: 'main', image: 'busybox' }],
                },
              },
            },
          },
        },
      },
    });
    await kubectlOk(['-n', namespace(), 'create', 'job', '--from=cronjob/hourly', 'hourly-run-1']);
    await kubectlOk(['-n', namespace(), 'create', 'job', '--from=cronjob/hourly', 'hourly-run-2']);
    const first = await waitForPhase(namespace(), 'job-hourly-run-1', 'Granted');
    const second = await waitForPhase(namespace(), 'job-hourly-run-2', 'Granted');
    expect(first.status?.grant?.id).to.not.equal(second.status?.grant?.id);
  });

  it('keeps the gate of a denied pod, says why in Events on the pod and its Job, then fails the pod', async () => {
    await createJob('greedy', { annotations: declared({ [adoption.access]: 'get secrets/payments-db' }) });
    const pod = await podOf('greedy');
    const name = pod.metadata!.name!;
    const request = await waitForPhase(namespace(), 'job-greedy', 'Denied');
    expect(request.status?.reason).to.equal('NoPolicyAllows');
    expect(await gatesOf(name)).to.include(adoption.gate);
    await eventually(
      async () => {
        expect((await eventsOf(namespace(), name, 'Pod')).join('\n')).to.contain(
          'AccessDenied: AccessRequest job-greedy is Denied',
        );
        expect((await eventsOf(namespace(), 'greedy', 'Job')).join('\n')).to.contain(
          `AccessDenied: pod ${name}`,
        );
      },
      { timeout: 15_000, what: 'the AccessDenied Events' },
    );
    const failed = await eventually(
      async () => {
        const current = await api().core.readNamespacedPod({ namespace: namespace(), name });
        if (current.status?.phase !== 'Failed') throw new Error(`phase ${current.status?.phase}`);
        return current;
      },
      { timeout: 20_000, what: 'the denied pod to fail' },
    );
    expect(failed.status?.reason).to.equal('AccessDenied');
    await eventually(
      async () => {
        const job = await api().batch.readNamespacedJob({ namespace: namespace(), name: 'greedy' });
        const condition = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
        if (!condition) throw new Error('the Job has not failed');
        expect(condition.reason).to.equal('BackoffLimitExceeded');
      },
      { timeout: 30_000, what: 'the Job to fail at its backoffLimit' },
    );
  });

  it('renews an adopted grant automatically before it expires', async () => {
    await createPolicy(namespace(), 'short', {
      subjects: { serviceAccounts: ['etl'], podSelector: { matchLabels: { ttl: 'short' } } },
      requesters: { self: true },
      defaultTTL: '20s',
      maxTTL: '20s',
      renewBefore: '12s',
      allow: {
        permissions: [
          { apiGroups: [''], resources: ['configmaps'], resourceNames: ['short'], verbs: ['get'] },
        ],
      },
    });
    await api().batch.createNamespacedJob({
      namespace: namespace(),
      body: {
        metadata: { name: 'brief' },
        spec: {
          backoffLimit: 0,
          template: {
            metadata: {
              labels: { [adoption.inject]: 'true', ttl: 'short' },
              annotations: { [adoption.access]: 'get configmaps/short' },
            },
            spec: {
              serviceAccountName: 'etl',
              restartPolicy: 'Never',
              schedulingGates: [{ name: HOLD }],
              containers: [{ name: 'main', image: 'busybox' }],
            },
          },
        },
      },
    });
    const first = await waitForPhase(namespace(), 'job-brief', 'Granted');
    const renewed = await eventually(
      async () => {
        const request = await getRequest(namespace(), 'job-brief');
        if ((request?.status?.renewals ?? 0) < 1) throw new Error('not renewed yet');
        return request as AccessRequest;
      },
      { timeout: 20_000, what: 'an automatic renewal' },
    );
    expect(renewed.status?.phase).to.equal('Granted');
    expect(renewed.status?.lastRenewal).to.equal('auto-1');
    expect(renewed.status?.grant?.id).to.not.equal(first.status?.grant?.id);
    const secret = await api().core.readNamespacedSecret({ namespace: namespace(), name: 'job-brief-grant' });
    expect(Buffer.from(secret.data!.grantId!, 'base64').toString()).to.equal(renewed.status?.grant?.id);
  });

  it('renews on demand when hourglass.dev/renew is set on the Job', async () => {
    await createJob('ondemand');
    const first = await waitForPhase(namespace(), 'job-ondemand', 'Granted');
    await api().batch.patchNamespacedJob(
      {
        namespace: namespace(),
        name: 'ondemand',
        body: { metadata: { annotations: { 'hourglass.dev/renew': 'rotate-1' } } },
      },
      mergePatch,
    );
    const renewed = await eventually(
      async () => {
        const request = await getRequest(namespace(), 'job-ondemand');
        if (request?.status?.lastRenewal !== 'job-rotate-1')
          throw new Error(`lastRenewal ${request?.status?.lastRenewal}`);
        return request;
      },
      { timeout: 20_000, what: 'the renewal asked on the Job' },
    );
    expect(renewed.status?.renewals).to.equal(1);
    expect(renewed.status?.grant?.id).to.not.equal(first.status?.grant?.id);
  });

  it('a tenant whose service account may not ask for itself gets nothing by annotating its pod', async () => {
    // Only admins may ask for "intruder"; hourglass asks for the pod as the pod, not as itself.
    await createPolicy(namespace(), 'admins-ask', {
      subjects: { serviceAccounts: ['intruder'] },
      requesters: { groups: ['system:masters'] },
    });
    await createJob('sneaky', { serviceAccountName: 'intruder' });
    const request = await waitForPhase(namespace(), 'job-sneaky', 'Denied');
    expect(request.spec.requester?.username).to.equal(`system:serviceaccount:${namespace()}:intruder`);
    const pod = await podOf('sneaky');
    expect(await gatesOf(pod.metadata!.name!)).to.include(adoption.gate);
  });

  it('a tenant who pre-creates the request name of a Job does not get its pod ungated on it', async () => {
    // The tenant may ask for etl's Jobs, and plants a Granted request under the name hourglass
    // would give the Job's, before the Job has a pod.
    await grantRole(namespace(), 'tenant-requests', requestRules, { users: ['tenant'] });
    await createPolicy(namespace(), 'tenant-asks', { requesters: { users: ['tenant'] } });
    await createJob('squatted', { suspend: true });
    const planted = await createRequestAs({ user: 'tenant' }, namespace(), 'job-squatted', {
      subject: { jobName: 'squatted' },
      purpose: 'planted before the Job runs',
      permissions: [
        { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
      ],
    });
    expect(planted.refused).to.equal(undefined);
    await waitForPhase(namespace(), 'job-squatted', 'Granted');
    await api().batch.patchNamespacedJob(
      { namespace: namespace(), name: 'squatted', body: { spec: { suspend: false } } },
      mergePatch,
    );
    const pod = await podOf('squatted');
    const name = pod.metadata!.name!;
    await eventually(
      async () =>
        expect((await eventsOf(namespace(), name, 'Pod')).join('\n')).to.contain(
          'RequestNameTaken: AccessRequest job-squatted exists and was not made by hourglass',
        ),
      { timeout: 20_000, what: 'the RequestNameTaken Event' },
    );
    expect(await gatesOf(name)).to.include(adoption.gate);
  });

  it('a tenant cannot stamp hourglass.dev/adopted-for to pass a request off as hourglass-made', async () => {
    const result = await kubectlAs(
      { user: 'tenant' },
      ['-n', namespace(), 'create', '-f', '-'],
      JSON.stringify({
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'AccessRequest',
        metadata: { name: 'job-forged-2', annotations: { [adoption.adoptedFor]: 'some-pod-uid' } },
        spec: {
          subject: { jobName: 'forged' },
          purpose: 'forged',
          permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
        },
      }),
    );
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.contain('hourglass.dev/adopted-for is set by hourglass');
  });

  it('creates pods without the opt-in while the controller is down, and refuses opted-in ones', async () => {
    await controller!.kill();
    controller = undefined;
    await createJob('offline-plain', { optIn: false });
    expect((await podOf('offline-plain')).spec?.schedulingGates?.map((gate) => gate.name)).to.deep.equal([
      HOLD,
    ]);
    const refused = await kubectl(
      ['-n', namespace(), 'create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'offline-opted-in',
          labels: { [adoption.inject]: 'true' },
          annotations: declared(),
        },
        spec: { serviceAccountName: 'etl', containers: [{ name: 'main', image: 'busybox' }] },
      }),
    );
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.contain('pods.mutate.hourglass.dev');
  });
});
