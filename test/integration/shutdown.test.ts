import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { LOCAL_STATUS_POLICY_NAME, LOCAL_WEBHOOK_NAME } from '../../src/k8s/webhook-registration.ts';
import { adminConfig, ensureCrds, eventually, kubeconfigPath } from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import { HoldingProxy } from '../support/holding-proxy.ts';

/** Longer than the 10 s period of the local registration: one registration has started since. */
const ONE_REGISTRATION_PERIOD_MS = 11_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a local controller registers, as the API server has it (read without the proxy). */
async function registered(): Promise<string[]> {
  const api = adminConfig().makeApiClient(AdmissionregistrationV1Api);
  const present = async (kind: string, read: () => Promise<unknown>) =>
    read().then(
      () => [kind],
      () => [],
    );
  const found = await Promise.all([
    present('MutatingWebhookConfiguration', () =>
      api.readMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }),
    ),
    present('ValidatingWebhookConfiguration', () =>
      api.readValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }),
    ),
    present('ValidatingAdmissionPolicy', () =>
      api.readValidatingAdmissionPolicy({ name: LOCAL_STATUS_POLICY_NAME }),
    ),
    present('ValidatingAdmissionPolicyBinding', () =>
      api.readValidatingAdmissionPolicyBinding({ name: LOCAL_STATUS_POLICY_NAME }),
    ),
  ]);
  return found.flat();
}

async function removeRegistration(): Promise<void> {
  const api = adminConfig().makeApiClient(AdmissionregistrationV1Api);
  const name = LOCAL_WEBHOOK_NAME;
  await Promise.allSettled([
    api.deleteMutatingWebhookConfiguration({ name }),
    api.deleteValidatingWebhookConfiguration({ name }),
    api.deleteValidatingAdmissionPolicyBinding({ name: LOCAL_STATUS_POLICY_NAME }),
    api.deleteValidatingAdmissionPolicy({ name: LOCAL_STATUS_POLICY_NAME }),
  ]);
}

describe('shutdown of a local controller', function () {
  this.timeout(120_000);
  let proxy: HoldingProxy;
  let controller: ControllerProcess | undefined;

  /** A controller whose every API call goes through the proxy, registered and running. */
  async function startBehindProxy(name: string): Promise<ControllerProcess> {
    const server = new URL(adminConfig().getCurrentCluster()?.server ?? '');
    proxy = await HoldingProxy.start({ host: server.hostname, port: Number(server.port) });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-shutdown-'));
    const proxied = path.join(dir, 'kubeconfig');
    writeFileSync(
      proxied,
      readFileSync(kubeconfigPath, 'utf8').replace(server.origin, `https://127.0.0.1:${proxy.port}`),
    );
    controller = await ControllerProcess.start(name, [], { KUBECONFIG: proxied });
    await eventually(async () => expect(await registered()).to.have.length(4), { what: 'the registration' });
    return controller;
  }

  before(async function () {
    this.timeout(90_000);
    await ensureCrds();
  });

  afterEach(async () => {
    proxy?.resume();
    if (controller) await controller.kill();
    await proxy?.close();
    await removeRegistration();
  });

  it('leaves nothing registered when stopped while a registration is stalled in flight', async () => {
    const running = await startBehindProxy('shutdown-in-flight');
    proxy.stall();
    await sleep(ONE_REGISTRATION_PERIOD_MS);
    const exited = running.stop();
    await sleep(2_000);
    proxy.resume();
    expect(await exited).to.equal(0);
    expect(await registered()).to.deep.equal([]);
    await sleep(3_000);
    expect(await registered(), 'registered again after the exit').to.deep.equal([]);
  });

  it('leaves nothing registered when stopped after a stalled connection recovered', async () => {
    const running = await startBehindProxy('shutdown-after-stall');
    proxy.stall();
    await sleep(ONE_REGISTRATION_PERIOD_MS);
    proxy.resume();
    await sleep(500);
    expect(await running.stop()).to.equal(0);
    expect(await registered()).to.deep.equal([]);
    await sleep(3_000);
    expect(await registered(), 'registered again after the exit').to.deep.equal([]);
  });

  it('exits at once on a second signal while the first waits for a stalled API server', async () => {
    const running = await startBehindProxy('shutdown-twice');
    proxy.stall({ newConnections: true });
    await sleep(ONE_REGISTRATION_PERIOD_MS);
    const exited = running.stop();
    await sleep(300);
    const second = Date.now();
    running.signal('SIGTERM');
    expect(await exited).to.equal(130);
    expect(Date.now() - second).to.be.lessThan(2_000);
  });
});
