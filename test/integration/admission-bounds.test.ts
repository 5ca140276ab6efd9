// Admission under attack: oversized requests from a namespace tenant, AdmissionReviews sent by
// anyone who reaches the controller, and renewals whose author is whoever the client says.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { Agent, fetch as undiciFetch } from 'undici';
import { annotations, GROUP, plural, VERSION } from '../../src/api/types.ts';
import { statusCode, statusMessage } from '../../src/k8s/errors.ts';
import { percentile } from '../../hack/bench/stats.ts';
import { eventually, kubectlOk, repoRoot, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import { allowEverything, oversizedAccessRequest, pollHealthz } from '../support/flood.ts';
import {
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  getRequest,
} from '../support/hourglass.ts';
import {
  grantRole,
  impersonatedConfig,
  kubectlAs,
  requestRules,
  webhookRegistered,
} from '../support/identities.ts';

describe('admission bounds', function () {
  this.timeout(120_000);
  const namespace = useNamespace('admission');
  const controller = useController('admission-bounds');
  const mallory = { user: 'mallory' };

  before(async () => {
    await webhookRegistered();
    const ns = namespace();
    await createServiceAccount(ns, 'etl');
    await createPod(ns, 'etl-pod', 'etl');
    await createPolicy(ns, 'everything', {
      allow: allowEverything,
      requesters: { users: ['mallory'], groups: ['system:masters'] },
    });
    // A tenant: edit in the namespace, and what a requester needs on AccessRequests.
    await kubectlOk([
      '-n',
      ns,
      'create',
      'rolebinding',
      'tenant-edit',
      '--clusterrole=edit',
      '--user=mallory',
    ]);
    await grantRole(
      ns,
      'tenant-requests',
      [...requestRules, { apiGroups: [GROUP], resources: ['accessrequests'], verbs: ['update', 'patch'] }],
      { users: ['mallory'] },
    );
  });

  it('a namespace tenant with edit cannot stall admission with a 0.5 MB dry-run request', async () => {
    const custom = impersonatedConfig('mallory').makeApiClient(CustomObjectsApi);
    const body = oversizedAccessRequest(namespace(), 'flood', 'etl-pod');
    expect(Buffer.byteLength(JSON.stringify(body))).to.be.greaterThan(500_000);
    const health = await pollHealthz(controller().url('http'));
    const answers: string[] = [];
    for (let round = 0; round < 8; round++) {
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          try {
            await custom.createNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              plural: plural.AccessRequest,
              namespace: namespace(),
              body,
              dryRun: 'All',
            });
            answers.push('admitted');
          } catch (error) {
            answers.push(`${statusCode(error)}: ${statusMessage(error)}`);
          }
        }),
      );
    }
    const { latencies, failures } = await health.stop();
    // The three dry-runs at once, eight times over.
    expect(answers).to.have.length(24);
    expect(new Set(answers)).to.deep.equal(
      new Set([
        '413: admission webhook "mutate.hourglass.dev" denied the request: hourglass admits AccessRequests and policies whose AdmissionReview (on an update, with the stored object) is at most 256 KiB',
      ]),
    );
    expect(failures).to.equal(0);
    const sorted = latencies.sort((a, b) => a - b);
    expect(sorted.length).to.be.greaterThan(20);
    expect(percentile(sorted, 99), `/healthz p99 of ${sorted.length} polls, in ms`).to.be.below(100);
  });

  it('a namespace tenant gets a request with 30 000 apiGroups refused by the schema limit, named by the webhook', async () => {
    const spec = oversizedAccessRequest(namespace(), 'wide', 'etl-pod').spec;
    const body = {
      ...oversizedAccessRequest(namespace(), 'wide', 'etl-pod'),
      spec: {
        ...spec,
        permissions: [{ apiGroups: new Array(30_000).fill(''), resources: ['pods'], verbs: ['get'] }],
      },
    };
    const result = await kubectlAs(mallory, ['create', '--dry-run=server', '-f', '-'], JSON.stringify(body));
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.include(
      'admission webhook "mutate.hourglass.dev" denied the request: spec.permissions[0].apiGroups: at most 16 items (got 30000)',
    );
  });

  it('a pod that reaches the issuer port cannot submit AdmissionReviews there', async () => {
    const dispatcher = new Agent({
      connect: { ca: readFileSync(path.join(repoRoot, '.cluster', 'pki', 'ca.crt')) },
    });
    const review = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'forged-1',
        resource: { group: GROUP, version: VERSION, resource: 'accesspolicies' },
        operation: 'CREATE',
        userInfo: { username: 'system:admin', groups: ['system:masters'] },
        object: {
          metadata: { name: 'p', namespace: namespace() },
          spec: { subjects: { serviceAccounts: ['etl'] } },
        },
      },
    });
    const post = (url: string) =>
      undiciFetch(url, {
        method: 'POST',
        body: review,
        headers: { 'content-type': 'application/json' },
        dispatcher,
      });
    for (const endpoint of ['/mutate', '/validate']) {
      const response = await post(`${controller().url('https')}${endpoint}`);
      expect(response.status, `${endpoint} on the issuer port`).to.equal(404);
    }
    // The issuer endpoints are still there, and admission is served on its own port.
    const discovery = await undiciFetch(`${controller().url('https')}/.well-known/openid-configuration`, {
      dispatcher,
    });
    expect(discovery.status).to.equal(200);
    expect((await post(`${controller().admissionUrl()}/validate`)).status).to.equal(200);
  });

  it('renew by a tenant is attributed to the authenticated user, not to the field manager the client chose', async () => {
    const ns = namespace();
    await createRequest(ns, 'renewed', { subject: { podName: 'etl-pod' }, token: undefined });
    const annotate = (...args: string[]) =>
      kubectlAs(mallory, [
        '-n',
        ns,
        'annotate',
        '--overwrite',
        '--field-manager=alice',
        'accessrequest',
        'renewed',
        ...args,
      ]);
    const renewed = await annotate(`${annotations.renew}=ticket-2`);
    expect(renewed.code, renewed.stderr).to.equal(0);
    const request = await getRequest(ns, 'renewed');
    expect(request?.metadata.annotations?.[annotations.renewRequestedBy]).to.equal('mallory');
    const managers = (request?.metadata.managedFields ?? []).map((entry) => entry.manager);
    expect(managers, 'the field manager is only what the client said').to.include('alice');
    const audited = await eventually(
      async () => {
        const line = controller()
          .audit('grant.renewed')
          .find((l) => (l.request as { name: string }).name === 'renewed');
        if (!line) throw new Error('not renewed yet');
        return line;
      },
      { what: 'the renewal to be audited' },
    );
    expect(audited.actor, 'the audit names who renewed').to.equal('mallory');

    const forged = await annotate(`${annotations.revokeRequestedBy}=alice`);
    expect(forged.code).to.not.equal(0);
    expect(forged.stderr).to.include(
      'hourglass.dev/revoke-requested-by is set by hourglass from the authenticated caller of hourglass.dev/revoke',
    );
  });
});
