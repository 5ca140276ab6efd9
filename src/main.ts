// The composition root of the hourglass controller: configuration, clients, caches, reconcilers.
import os from 'node:os';
import { loadConfig } from './config.ts';
import { Auditor } from './audit/audit.ts';
import { AccessRequestController } from './controllers/accessrequest/controller.ts';
import { ApiDiscovery } from './k8s/discovery.ts';
import { isAlreadyExists } from './k8s/errors.ts';
import { EventRecorder } from './k8s/events.ts';
import { GrantObjectStore } from './k8s/grant-store.ts';
import { keySecretStore } from './k8s/key-secret.ts';
import { loadKubeConfig } from './k8s/kubeconfig.ts';
import { makeClients } from './k8s/resources.ts';
import { createLogger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { signGrantToken } from './tokens/grant-token.ts';
import { loadOrCreateKeySet } from './tokens/keys.ts';
import { RevokedGrants } from './tokens/revocations.ts';

const config = loadConfig();
const log = createLogger(config.logLevel);
const kc = loadKubeConfig();
const clients = makeClients(kc);
const instance = `${os.hostname()}-${process.pid}`;

try {
  await clients.core.createNamespace({ body: { metadata: { name: config.namespace } } });
} catch (error) {
  if (!isAlreadyExists(error)) log.debug('Did not create the controller namespace', { error: String(error) });
}
const keys = await loadOrCreateKeySet(
  keySecretStore(clients.core, config.namespace, config.signingKeySecretName),
  new Date(),
);
const discovery = new ApiDiscovery(kc, log);
await discovery.refresh();
discovery.start();

const revoked = new RevokedGrants();
const metrics = createMetrics(
  () => controller.caches.requests.list().filter((r) => r.status?.phase === 'Granted').length,
);
const controller = new AccessRequestController(
  kc,
  clients,
  {
    requests: clients.accessRequests,
    grantObjects: new GrantObjectStore(clients.core, clients.rbac),
    signToken: (claims) => signGrantToken(keys.current(new Date()), { ...claims, issuer: config.issuer }),
    recordRevoked: (grantId, expiresAt) => revoked.add(grantId, expiresAt, new Date()),
    isNamespaced: discovery.isNamespaced,
    controllerNamespace: config.namespace,
    signingKeySecretName: config.signingKeySecretName,
    auditor: new Auditor(log, new EventRecorder(clients.events, log, instance)),
    metrics,
    log,
    now: () => new Date(),
  },
  { concurrency: config.concurrency, resyncMs: config.resyncMs },
);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info('Stopping controller', { signal });
    discovery.stop();
    controller
      .stop()
      .then(() => kc.close())
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        log.error('Failed to stop cleanly', { error: String(error) });
        process.exit(1);
      });
  });
}

await controller.start();
log.info('Started controller', { namespace: config.namespace, issuer: config.issuer, instance });
