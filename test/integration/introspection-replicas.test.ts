import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Agent, fetch } from 'undici';
import { ensureCrds, eventually, kubectlOk, repoRoot, useNamespace } from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import {
  api,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  grantObjectsPresent,
  waitForPhase,
} from '../support/hourglass.ts';

describe('introspection on every replica', function () {
  this.timeout(120_000);
  const namespace = useNamespace('replicas');
  const replicas: ControllerProcess[] = [];
  const dispatcher = new Agent({
    connect: { ca: readFileSync(path.join(repoRoot, '.cluster', 'pki', 'ca.crt')) },
  });

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createServiceAccount(namespace(), 'orders-api');
    await createPolicy(namespace(), 'batch-readers');
    // Replicas share one issuer, as in-cluster behind one Service URL.
    for (const name of ['replica-a', 'replica-b'])
      replicas.push(
        await ControllerProcess.start(name, [
          '--leader-election',
          '--issuer',
          'https://hourglass.replicas.test',
        ]),
      );
  });
  after(async () => {
    for (const replica of replicas) await replica.stop();
  });

  it('answers active on each replica while granted, and inactive on each once revoked', async () => {
    const caller = (await kubectlOk(['-n', namespace(), 'create', 'token', 'orders-api'])).trim();
    const introspect = async (replica: ControllerProcess, token: string) => {
      const response = await fetch(`${replica.url('https')}/introspect`, {
        method: 'POST',
        headers: { authorization: `Bearer ${caller}` },
        body: new URLSearchParams({ token }),
        dispatcher,
      });
      return ((await response.json()) as { active: boolean }).active;
    };
    await createPod(namespace(), 'worker', 'etl');
    await createRequest(namespace(), 'replicated', { subject: { podName: 'worker' } });
    await waitForPhase(namespace(), 'replicated', 'Granted');
    const { secret } = await grantObjectsPresent(namespace(), 'replicated');
    const token = Buffer.from(secret?.data?.token ?? '', 'base64').toString();
    for (const replica of replicas) {
      await eventually(async () => expect(await introspect(replica, token)).to.equal(true), {
        timeout: 5_000,
      });
    }

    await api().core.deleteNamespacedPod({ namespace: namespace(), name: 'worker', gracePeriodSeconds: 0 });
    await waitForPhase(namespace(), 'replicated', 'Revoked');
    for (const replica of replicas) {
      await eventually(async () => expect(await introspect(replica, token)).to.equal(false), {
        timeout: 5_000,
        what: `${replica.logFile} to see the revocation`,
      });
    }
  });
});
