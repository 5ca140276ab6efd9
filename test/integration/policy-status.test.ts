// A policy's status: Ready and observedGeneration, kept by the controller. The webhook refuses a
// condition that does not compile; a policy stored without it (the webhook was not installed
// yet) still takes no effect and says why on its status.
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { AccessPolicy } from '../../src/api/types.ts';
import { LOCAL_WEBHOOK_NAME } from '../../src/k8s/webhook-registration.ts';
import { adminConfig, eventually, kubectlOk, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import { api, createPolicy, patchPolicy } from '../support/hourglass.ts';
import { eventsOf, webhookRegistered } from '../support/identities.ts';

const broken = [{ name: 'has-ticket', expression: 'request.spec.purpose.startsWith(', message: 'no ticket' }];

describe('policy status', function () {
  this.timeout(90_000);
  const namespace = useNamespace('policy-status');
  useController('policy-status');

  before(async () => {
    await webhookRegistered();
  });

  async function readyOf(name: string, generation: number) {
    return eventually(
      async () => {
        const policy = (await api().custom.getNamespacedCustomObject({
          group: 'hourglass.dev',
          version: 'v1alpha1',
          plural: 'accesspolicies',
          namespace: namespace(),
          name,
        })) as AccessPolicy;
        expect(policy.status?.observedGeneration).to.equal(generation);
        const ready = policy.status?.conditions?.find((c) => c.type === 'Ready');
        if (!ready) throw new Error('no Ready condition yet');
        return ready;
      },
      { what: `AccessPolicy ${name} status for generation ${generation}` },
    );
  }

  it('is Ready for a policy whose conditions compile, as kubectl get shows', async () => {
    await createPolicy(namespace(), 'valid', {
      conditions: [
        { name: 'has-ticket', expression: "request.spec.purpose.matches('^OPS-')", message: 'no ticket' },
      ],
    });
    expect(await readyOf('valid', 1)).to.include({ status: 'True', reason: 'Valid' });
    const table = await kubectlOk(['-n', namespace(), 'get', 'accesspolicy', 'valid', '--no-headers']);
    expect(table.split(/\s+/)).to.include('True');
  });

  it('turns Ready False with the compile error when a policy stored past the webhook does not compile, and back when fixed', async () => {
    const admission = adminConfig().makeApiClient(AdmissionregistrationV1Api);
    // As before the webhook is installed: the controller registers it again within 10 s.
    await admission.deleteValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME });
    await createPolicy(namespace(), 'stored-broken', { conditions: broken });
    const notReady = await readyOf('stored-broken', 1);
    expect(notReady).to.include({ status: 'False', reason: 'InvalidConditions' });
    expect(notReady.message).to.match(/^condition "has-ticket" does not compile: /);
    await eventually(
      async () =>
        expect((await eventsOf(namespace(), 'stored-broken', 'AccessPolicy')).join('\n')).to.contain(
          'InvalidConditions: condition "has-ticket" does not compile',
        ),
      { what: 'the Warning event' },
    );
    await webhookRegistered();
    await patchPolicy(namespace(), 'stored-broken', {
      conditions: [
        { name: 'has-ticket', expression: "request.spec.purpose.startsWith('OPS-')", message: 'no' },
      ],
    });
    expect(await readyOf('stored-broken', 2)).to.include({ status: 'True', reason: 'Valid' });
  });
});
