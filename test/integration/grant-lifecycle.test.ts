import { expect } from 'chai';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { labels } from '../../src/api/types.ts';
import { keySetFromSecretData } from '../../src/tokens/keys.ts';
import { ensureCrds, eventually, kubectl, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  annotateRequest,
  api,
  canI,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  deleteRequest,
  getRequest,
  grantObjectsPresent,
  patchPolicy,
  waitForPhase,
} from '../support/hourglass.ts';
import { eventsOf } from '../support/identities.ts';

const secretValue = (data: Record<string, string> | undefined, key: string) =>
  data?.[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString();

describe('the grant lifecycle', function () {
  this.timeout(90_000);
  const namespace = useNamespace('lifecycle');
  // A request waits 6 s for a subject not created yet (the default is 2 minutes).
  const controller = useController('lifecycle', ['--await-subject', '6s']);
  let podCount = 0;

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers');
    await createPolicy(namespace(), 'workers', {
      subjects: { serviceAccounts: ['*'], podSelector: { matchLabels: { role: 'worker' } } },
    });
  });

  /** A pod with a service account of its own, and a granted request for it. */
  async function grantedPod(requestName: string, podLabels: Record<string, string> = {}, ttl = '5m') {
    const podName = `worker-${podCount++}`;
    await createServiceAccount(namespace(), podName);
    await createPod(namespace(), podName, podName, { role: 'worker', ...podLabels });
    await createRequest(namespace(), requestName, { subject: { podName }, ttl });
    const request = await waitForPhase(namespace(), requestName, 'Granted');
    expect(await canI(namespace(), podName, 'get', 'secrets', 'orders-db')).to.equal(true);
    return { podName, request };
  }

  async function expectRevoked(requestName: string, phase: 'Revoked' | 'Expired', reason: string) {
    const request = await waitForPhase(namespace(), requestName, phase, 60_000);
    expect(request.status?.revocation?.reason).to.equal(reason);
    expect(request.status?.reason).to.equal(reason);
    const serviceAccount = request.status?.subject?.serviceAccountName ?? '';
    expect(await canI(namespace(), serviceAccount, 'get', 'secrets', 'orders-db')).to.equal(false);
    expect((await grantObjectsPresent(namespace(), requestName)).any).to.equal(false);
    const revoked = controller()
      .audit('grant.revoked')
      .filter((l) => (l.request as { name: string }).name === requestName);
    expect(revoked.map((l) => l.reason)).to.include(reason);
    return request;
  }

  it('grants exactly the requested access to the pod service account, with a signed token carrying every claim', async () => {
    expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(false);
    await createPod(namespace(), 'etl-7xk2p', 'etl');
    await createRequest(namespace(), 'grant-basic', { subject: { podName: 'etl-7xk2p' } });
    const request = await waitForPhase(namespace(), 'grant-basic', 'Granted');
    const podName = 'etl-7xk2p';
    const status = request.status!;
    expect(status.reason).to.equal('Issued');
    expect(status.subject).to.include({ serviceAccountName: 'etl', podName, ref: `pod/${podName}` });
    expect(status.policy).to.include({ kind: 'AccessPolicy', name: 'batch-readers' });
    expect(status.conditions?.map((c) => `${c.type}=${c.status}`)).to.include.members([
      'Approved=True',
      'Granted=True',
    ]);

    expect(await canI(namespace(), 'etl', 'get', 'secrets', 'orders-db')).to.equal(true);
    expect(await canI(namespace(), 'etl', 'list', 'secrets')).to.equal(false);
    expect(await canI(namespace(), 'etl', 'get', 'secrets', 'grant-basic-grant')).to.equal(true);
    const can = await kubectl([
      '-n',
      namespace(),
      'auth',
      'can-i',
      'get',
      'secret/orders-db',
      `--as=system:serviceaccount:${namespace()}:etl`,
    ]);
    expect(can.stdout.trim()).to.equal('yes');

    const objects = await grantObjectsPresent(namespace(), 'grant-basic');
    const pod = await api().core.readNamespacedPod({ namespace: namespace(), name: podName });
    for (const object of [objects.secret, objects.role, objects.roleBinding]) {
      expect(object?.metadata?.labels).to.include({
        [labels.managedBy]: 'hourglass',
        [labels.request]: 'grant-basic',
        [labels.requestUid]: request.metadata.uid,
        [labels.grantId]: status.grant?.id,
      });
      expect(object?.metadata?.ownerReferences).to.deep.equal([
        { apiVersion: 'v1', kind: 'Pod', name: podName, uid: pod.metadata?.uid },
      ]);
    }
    expect(objects.secret?.type).to.equal('hourglass.dev/grant');
    expect(objects.roleBinding?.subjects).to.deep.equal([
      { kind: 'ServiceAccount', name: 'etl', namespace: namespace() },
    ]);

    const token = secretValue(objects.secret?.data, 'token')!;
    const keySecret = await api().core.readNamespacedSecret({
      namespace: 'hourglass-system',
      name: 'hourglass-signing-keys',
    });
    const keys = await keySetFromSecretData(keySecret.data ?? {});
    const { payload, protectedHeader } = await jwtVerify(
      token,
      createLocalJWKSet(keys.publicJwks(new Date())),
      {
        audience: 'orders-api',
      },
    );
    expect(protectedHeader).to.include({ alg: 'ES256', typ: 'hourglass-grant+jwt' });
    expect(payload).to.include({
      sub: `system:serviceaccount:${namespace()}:etl`,
      aud: 'orders-api',
      jti: status.grant?.id,
    });
    expect(payload.exp! * 1000).to.be.closeTo(Date.parse(status.grant!.expiresAt!), 1000);
    expect(payload['hourglass.dev']).to.deep.include({
      request: { namespace: namespace(), name: 'grant-basic', uid: request.metadata.uid },
      actions: ['orders:read'],
      target: 'postgres://orders-db/orders',
      pod: { name: podName, uid: pod.metadata?.uid },
      renewal: 0,
    });
    expect(secretValue(objects.secret?.data, 'grantId')).to.equal(status.grant?.id);
  });

  it('revokes at TTL expiry with Expired', async () => {
    await grantedPod('grant-expiry', {}, '10s');
    await expectRevoked('grant-expiry', 'Expired', 'Expired');
  });

  it('revokes with PodDeleted when the pod is deleted', async () => {
    const { podName } = await grantedPod('grant-pod-deleted');
    await api().core.deleteNamespacedPod({ namespace: namespace(), name: podName, gracePeriodSeconds: 0 });
    await expectRevoked('grant-pod-deleted', 'Revoked', 'PodDeleted');
  });

  it('revokes with PodFinished when the pod has finished', async () => {
    const { podName } = await grantedPod('grant-pod-finished');
    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await api().core.patchNamespacedPodStatus(
      { namespace: namespace(), name: podName, body: { status: { phase: 'Succeeded' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await expectRevoked('grant-pod-finished', 'Revoked', 'PodFinished');
  });

  it('revokes with Manual on the revoke annotation', async () => {
    await grantedPod('grant-manual');
    await annotateRequest(namespace(), 'grant-manual', { 'hourglass.dev/revoke': 'done early' });
    const request = await expectRevoked('grant-manual', 'Revoked', 'Manual');
    expect(request.status?.revocation?.message).to.contain('done early');
  });

  it('revokes with RequestDeleted and lets the request go when it is deleted', async () => {
    const { podName } = await grantedPod('grant-deleted');
    await deleteRequest(namespace(), 'grant-deleted');
    await eventually(async () => expect(await getRequest(namespace(), 'grant-deleted')).to.equal(undefined), {
      what: 'the request to be gone',
    });
    expect((await grantObjectsPresent(namespace(), 'grant-deleted')).any).to.equal(false);
    expect(await canI(namespace(), podName, 'get', 'secrets', 'orders-db')).to.equal(false);
    const revoked = controller()
      .audit('grant.revoked')
      .filter((l) => (l.request as { name: string }).name === 'grant-deleted');
    expect(revoked.map((l) => l.reason)).to.deep.equal(['RequestDeleted']);
  });

  it('renews with a fresh grant id, token and expiry, once per annotation value', async () => {
    const { request } = await grantedPod('grant-renew');
    const first = request.status!.grant!;
    await annotateRequest(namespace(), 'grant-renew', { 'hourglass.dev/renew': 'r1' });
    const renewed = await eventually(
      async () => {
        const r = await getRequest(namespace(), 'grant-renew');
        expect(r?.status?.renewals).to.equal(1);
        return r!;
      },
      { what: 'the renewal' },
    );
    const second = renewed.status!.grant!;
    expect(second.id).to.not.equal(first.id);
    expect(renewed.status?.lastRenewal).to.equal('r1');
    const objects = await eventually(async () => {
      const o = await grantObjectsPresent(namespace(), 'grant-renew');
      expect(secretValue(o.secret?.data, 'grantId')).to.equal(second.id);
      return o;
    });
    expect(decodeJwt(secretValue(objects.secret?.data, 'token')!)).to.include({ jti: second.id });
    expect(objects.role?.metadata?.labels?.[labels.grantId]).to.equal(second.id);
    expect(
      await canI(namespace(), renewed.status!.subject!.serviceAccountName!, 'get', 'secrets', 'orders-db'),
    ).to.equal(true);
    const revoked = controller()
      .audit('grant.revoked')
      .filter((l) => (l.request as { name: string }).name === 'grant-renew');
    expect(revoked.map((l) => [l.reason, l.grantId])).to.deep.equal([['Renewed', first.id]]);

    await annotateRequest(namespace(), 'grant-renew', { 'hourglass.dev/other': 'touch' });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getRequest(namespace(), 'grant-renew'))?.status?.renewals).to.equal(1);
  });

  it('revokes with ServiceAccountChanged when the service account is recreated', async () => {
    await createServiceAccount(namespace(), 'etl-sa');
    await createPolicy(namespace(), 'sa-change', { subjects: { serviceAccounts: ['etl-sa'] } });
    await createPod(namespace(), 'sa-pod', 'etl-sa');
    await createRequest(namespace(), 'grant-sa', { subject: { podName: 'sa-pod' } });
    await waitForPhase(namespace(), 'grant-sa', 'Granted');
    await api().core.deleteNamespacedServiceAccount({ namespace: namespace(), name: 'etl-sa' });
    await createServiceAccount(namespace(), 'etl-sa');
    const request = await waitForPhase(namespace(), 'grant-sa', 'Revoked');
    expect(request.status?.revocation?.reason).to.equal('ServiceAccountChanged');
    expect((await grantObjectsPresent(namespace(), 'grant-sa')).any).to.equal(false);
  });

  it('revokes with PolicyChanged when the allowing policy is narrowed', async () => {
    await createServiceAccount(namespace(), 'narrow');
    await createPolicy(namespace(), 'narrow', { subjects: { serviceAccounts: ['narrow'] } });
    await createPod(namespace(), 'narrow-pod', 'narrow');
    await createRequest(namespace(), 'grant-narrow', { subject: { podName: 'narrow-pod' } });
    await waitForPhase(namespace(), 'grant-narrow', 'Granted');
    await patchPolicy(namespace(), 'narrow', {
      allow: { permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] },
    });
    const request = await waitForPhase(namespace(), 'grant-narrow', 'Revoked');
    expect(request.status?.revocation?.reason).to.equal('PolicyChanged');
    expect((await grantObjectsPresent(namespace(), 'grant-narrow')).any).to.equal(false);
  });

  it('revokes with ContextChanged when the pod labels no longer match any policy', async () => {
    await createServiceAccount(namespace(), 'labelled');
    await createPolicy(namespace(), 'team-data', {
      subjects: { serviceAccounts: ['labelled'], podSelector: { matchLabels: { team: 'data' } } },
    });
    await createPod(namespace(), 'labelled-pod', 'labelled', { team: 'data' });
    await createRequest(namespace(), 'grant-labels', { subject: { podName: 'labelled-pod' } });
    await waitForPhase(namespace(), 'grant-labels', 'Granted');
    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await api().core.patchNamespacedPod(
      { namespace: namespace(), name: 'labelled-pod', body: { metadata: { labels: { team: 'web' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const request = await waitForPhase(namespace(), 'grant-labels', 'Revoked');
    expect(request.status?.revocation?.reason).to.equal('ContextChanged');
  });

  it('denies a request that no policy allows, saying which policy and which check', async () => {
    await createPod(namespace(), 'greedy-pod', 'etl');
    await createRequest(namespace(), 'greedy', {
      subject: { podName: 'greedy-pod' },
      permissions: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['delete'] }],
    });
    const request = await waitForPhase(namespace(), 'greedy', 'Denied');
    expect(request.status?.decision).to.match(/AccessPolicy\/batch-readers/);
    expect(request.status?.conditions?.find((c) => c.type === 'Denied')?.status).to.equal('True');
    expect((await grantObjectsPresent(namespace(), 'greedy')).any).to.equal(false);
  });

  it('decides by the policy CEL conditions: a ticket id in the purpose is granted, none is denied', async () => {
    await createServiceAccount(namespace(), 'ticketed');
    await createPolicy(namespace(), 'needs-ticket', {
      subjects: { serviceAccounts: ['ticketed'] },
      conditions: [
        {
          name: 'has-ticket',
          expression:
            "request.spec.purpose.matches('^[A-Z]+-[0-9]+') && subject.pod.metadata.name.startsWith('ticket')",
          message: 'purpose must start with a ticket id',
        },
      ],
    });
    await createPod(namespace(), 'ticket-pod', 'ticketed');
    await createRequest(namespace(), 'with-ticket', {
      subject: { podName: 'ticket-pod' },
      purpose: 'OPS-42 read orders',
    });
    await createRequest(namespace(), 'without-ticket', {
      subject: { podName: 'ticket-pod' },
      purpose: 'just curious',
    });
    await waitForPhase(namespace(), 'with-ticket', 'Granted');
    const denied = await waitForPhase(namespace(), 'without-ticket', 'Denied');
    expect(denied.status?.decision).to.contain(
      'condition "has-ticket" failed: purpose must start with a ticket id',
    );
  });

  it("decides by a CEL condition on the subject pod's container images, which the cached pod keeps", async () => {
    await createServiceAccount(namespace(), 'imaged');
    await createPolicy(namespace(), 'busybox-only', {
      subjects: { serviceAccounts: ['imaged'] },
      conditions: [
        { name: 'image', expression: "subject.pod.spec.containers.all(c, c.image == 'busybox')" },
        // The projection drops a container's env: the field is absent, not empty.
        { name: 'no-env-seen', expression: 'subject.pod.spec.containers.all(c, !has(c.env))' },
      ],
    });
    for (const [name, image] of [
      ['busybox-pod', 'busybox'],
      ['other-image-pod', 'alpine'],
    ] as const) {
      await api().core.createNamespacedPod({
        namespace: namespace(),
        body: {
          metadata: { name },
          spec: {
            serviceAccountName: 'imaged',
            nodeName: 'kwok-node-0',
            containers: [{ name: 'main', image, env: [{ name: 'A', value: 'b' }] }],
          },
        },
      });
    }
    await createRequest(namespace(), 'busybox-request', { subject: { podName: 'busybox-pod' } });
    await createRequest(namespace(), 'other-image-request', { subject: { podName: 'other-image-pod' } });
    await waitForPhase(namespace(), 'busybox-request', 'Granted');
    const denied = await waitForPhase(namespace(), 'other-image-request', 'Denied');
    expect(denied.status?.decision).to.contain('condition "image" failed');
  });

  it('fails with NameConflict and writes nothing when a grant object name is taken', async () => {
    await api().core.createNamespacedSecret({
      namespace: namespace(),
      body: { metadata: { name: 'taken-grant' }, stringData: { a: 'b' } },
    });
    await createPod(namespace(), 'taken-pod', 'etl');
    await createRequest(namespace(), 'taken', { subject: { podName: 'taken-pod' } });
    const request = await waitForPhase(namespace(), 'taken', 'Failed');
    expect(request.status?.reason).to.equal('NameConflict');
    const objects = await grantObjectsPresent(namespace(), 'taken');
    expect(objects.secret?.data).to.deep.equal({ a: Buffer.from('b').toString('base64') });
    expect(objects.role).to.equal(undefined);
    expect(objects.roleBinding).to.equal(undefined);
  });

  it('waits for a pod created after its request, issuing nothing meanwhile, and grants once it exists', async () => {
    await createRequest(namespace(), 'early', { subject: { podName: 'late-pod' } });
    const waiting = await eventually(
      async () => {
        const request = await getRequest(namespace(), 'early');
        if (request?.status?.reason !== 'AwaitingSubject')
          throw new Error(`reason ${request?.status?.reason}`);
        return request;
      },
      { timeout: 5_000, what: 'the request to await its subject' },
    );
    expect(waiting.status?.phase).to.equal('Pending');
    expect((await grantObjectsPresent(namespace(), 'early')).any).to.equal(false);
    await createPod(namespace(), 'late-pod', 'etl');
    await waitForPhase(namespace(), 'early', 'Granted');
    const events = await eventsOf(namespace(), 'early');
    expect(events.filter((e) => e.startsWith('AwaitingSubject:'))).to.have.length(1);
  });

  it('fails with SubjectNotFound for a pod not created within --await-subject of its request', async () => {
    const created = Date.now();
    await createRequest(namespace(), 'ghost', { subject: { podName: 'no-such-pod' } });
    const request = await waitForPhase(namespace(), 'ghost', 'Failed');
    expect(request.status?.reason).to.equal('SubjectNotFound');
    expect(request.status?.decision).to.match(
      /does not exist .* It did not appear within 6s of the request\.$/,
    );
    expect(Date.now() - created).to.be.greaterThan(5_000);
  });

  it('audited every step above once: no grant issued, renewed or revoked twice, no request received twice', () => {
    const once = (event: string, keyOf: (line: Record<string, unknown>) => unknown) => {
      const keys = controller()
        .audit(event)
        .map((line) => String(keyOf(line)));
      expect(keys.length, `${event} records`).to.be.greaterThan(0);
      expect(
        keys.filter((key, i) => keys.indexOf(key) !== i),
        `${event} recorded twice`,
      ).to.deep.equal([]);
    };
    once('grant.issued', (line) => line.grantId);
    once('grant.renewed', (line) => line.grantId);
    once('grant.revoked', (line) => line.grantId);
    once('request.received', (line) => (line.request as { uid: string }).uid);
  });
});
