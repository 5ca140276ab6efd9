// The composition root of the hourglass controller: configuration, clients, caches, reconcilers
// and the HTTP surface.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import {
  AdmissionregistrationV1Api,
  AuthenticationV1Api,
  CoordinationV1Api,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, VERSION, plural, type AnyAccessPolicy } from './api/types.ts';
import { Auditor } from './audit/audit.ts';
import { loadConfig } from './config.ts';
import { AccessRequestController } from './controllers/accessrequest/controller.ts';
import { AdoptionController } from './controllers/adoption/controller.ts';
import { admissionRoutes } from './http/admission.ts';
import { issuerRoutes } from './http/issuer.ts';
import { opsRoutes } from './http/ops.ts';
import { route } from './http/router.ts';
import { close, listen } from './http/servers.ts';
import { ApiDiscovery, waitUntilServed } from './k8s/discovery.ts';
import { ignoreNotFound, isAlreadyExists, mayBeUnavailable, statusMessage } from './k8s/errors.ts';
import { EventRecorder } from './k8s/events.ts';
import { GrantObjectStore } from './k8s/grant-store.ts';
import { keySecretStore } from './k8s/key-secret.ts';
import { loadKubeConfig } from './k8s/kubeconfig.ts';
import { apiServerReady } from './k8s/readiness.ts';
import { makeClients } from './k8s/resources.ts';
import { tokenAuthenticator } from './k8s/token-review.ts';
import { LocalWebhookRegistration } from './k8s/webhook-registration.ts';
import { createLogger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { signGrantToken } from './tokens/grant-token.ts';
import { introspect } from './tokens/introspection.ts';
import { KeyManager } from './tokens/key-manager.ts';
import { LeaderElector } from './runtime/leader.ts';
import { ApiServerReachability } from './runtime/reachability.ts';
import { exitInOrderOnSignal } from './runtime/shutdown.ts';
import { RevokedGrants } from './tokens/revocations.ts';

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    console.error(`hourglass: ${(error as Error).message}\nRun with --help for the options.`);
    process.exit(2);
  }
})();
const log = createLogger(config.logLevel);
const kc = loadKubeConfig();
const clients = makeClients(kc);
const instance = `${os.hostname()}-${process.pid}`;
const now = () => new Date();

if (!config.tls) {
  log.error(
    'No serving certificate: pass --tls-cert-file and --tls-key-file (hack/cluster.sh up makes one for local runs)',
  );
  process.exit(2);
}
try {
  await clients.core.createNamespace({ body: { metadata: { name: config.namespace } } });
} catch (error) {
  if (!isAlreadyExists(error)) log.debug('Did not create the controller namespace', { error: String(error) });
}
const keyManager = new KeyManager({
  store: keySecretStore(clients.core, config.namespace, config.signingKeySecretName),
  periodMs: config.keyRotationPeriodMs,
  publishLeadMs: config.keyPublishLeadMs,
  log,
});
await keyManager.init();
const discovery = new ApiDiscovery(kc, log);
await discovery.refresh();
await waitUntilServed(discovery, GROUP, Object.values(plural), (missing) =>
  log.error('The hourglass CRDs are not installed; waiting for them', {
    missing,
    install: 'kubectl apply --server-side -f crds/ (helm install installs them)',
  }),
);
discovery.start();

const revoked = new RevokedGrants();
let issuer = config.issuer ?? '';
let synced = false;
const metrics = createMetrics(
  () => controller.caches.requests.list().filter((r) => r.status?.phase === 'Granted').length,
);
const events = new EventRecorder(clients.events, log, instance);
metrics.apiServerReachable.set(1);
const reachability = new ApiServerReachability({
  probe: () => apiServerReady(kc, 2000),
  mayBeOutage: mayBeUnavailable,
  observer: {
    lost: (error) => {
      metrics.apiServerReachable.set(0);
      kc.renewConnections();
      log.warn('Lost the API server', { error: statusMessage(error) });
    },
    recovered: (outageMs) => {
      metrics.apiServerReachable.set(1);
      metrics.apiServerOutages.observe(outageMs / 1000);
      log.info('Reached the API server again', { outageMs });
    },
  },
});
const controller = new AccessRequestController(
  kc,
  clients,
  {
    requests: clients.accessRequests,
    grantObjectStore: new GrantObjectStore(clients.core, clients.rbac),
    signToken: (claims) => signGrantToken(keyManager.current().current(now()), { ...claims, issuer }),
    recordRevoked: (grantId, expiresAt) => revoked.add(grantId, expiresAt, now()),
    isNamespaced: discovery.isNamespaced,
    controllerNamespace: config.namespace,
    signingKeySecretName: config.signingKeySecretName,
    auditor: new Auditor(log, events),
    metrics,
    log,
    now,
    retainForMs: config.retainForMs,
    awaitSubjectMs: config.awaitSubjectMs,
    readLive: (kind, namespace, name) =>
      ignoreNotFound<KubernetesObject>(
        kind === 'Pod'
          ? clients.core.readNamespacedPod({ namespace, name })
          : kind === 'Job'
            ? clients.batch.readNamespacedJob({ namespace, name })
            : kind === 'Namespace'
              ? clients.core.readNamespace({ name })
              : clients.core.readNamespacedServiceAccount({ namespace, name }),
      ),
    listLivePolicies: async (namespace) => {
      const list = (kind: 'AccessPolicy' | 'ClusterAccessPolicy', ns?: string) =>
        (ns
          ? clients.custom.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              plural: plural[kind],
              namespace: ns,
            })
          : clients.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: plural[kind] })
        ).then((answer) => (answer as { items: AnyAccessPolicy[] }).items);
      const [namespaced, cluster] = await Promise.all([
        list('AccessPolicy', namespace),
        list('ClusterAccessPolicy'),
      ]);
      return { namespaced, cluster };
    },
  },
  {
    concurrency: config.concurrency,
    resyncMs: config.resyncMs,
    events,
    reachability,
    onJob: (job) => adoptionController.onJob(job),
  },
);
const adoptionController = new AdoptionController(kc, {
  clients,
  events,
  log,
  now,
  jobs: controller.caches.jobs,
  policies: controller.caches.policies,
  clusterPolicies: controller.caches.clusterPolicies,
  refusalGraceMs: config.adoptionRefusalGraceMs,
  resyncMs: config.resyncMs,
  concurrency: config.concurrency,
});

const self = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
const controllerUsername = self.status?.userInfo?.username ?? '';
const onHttpError = (error: unknown) => log.error('Failed to serve a request', { error: String(error) });
const tls = { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
const https = await listen(
  route(
    issuerRoutes({
      issuer: () => issuer,
      keys: () => keyManager.current(),
      introspect: (token) =>
        introspect(token, {
          issuer,
          keys: () => keyManager.current(),
          requestByGrantId: controller.requestByGrantId,
          revoked,
          now,
        }),
      authenticate: tokenAuthenticator(kc.makeApiClient(AuthenticationV1Api)),
      now,
    }),
    onHttpError,
  ),
  { host: config.listenAddress, port: config.httpsPort, tls },
);
// Apart from the issuer endpoints that workloads and backends reach: only the API server calls it.
const admission = await listen(
  route(
    admissionRoutes({
      controllerUsername: () => controllerUsername,
      recordedPolicy: (request) => {
        const ref = request.status?.policy;
        if (!ref?.name) return undefined;
        return ref.kind === 'ClusterAccessPolicy'
          ? controller.caches.clusterPolicies.get('', ref.name)
          : controller.caches.policies.get(ref.namespace ?? request.metadata.namespace, ref.name);
      },
      subjectUid: (request) => {
        const { podName, jobName } = request.spec.subject;
        const { namespace } = request.metadata;
        const subject = podName
          ? controller.caches.pods.get(namespace, podName)
          : controller.caches.jobs.get(namespace, jobName ?? '');
        return subject?.metadata?.uid;
      },
      explain: (request) => controller.explain(request),
      allowedTo: async (spec) =>
        (await clients.authorization.createSubjectAccessReview({ body: { spec } })).status?.allowed === true,
      now,
    }),
    onHttpError,
  ),
  { host: config.listenAddress, port: config.admissionPort, tls },
);
issuer ||= https.url;
const http = await listen(
  route(opsRoutes({ registry: metrics.registry, ready: () => synced }), onHttpError),
  {
    host: config.listenAddress,
    port: config.httpPort,
  },
);
log.info(`Listening on ${https.url}`, { serves: ['openid-configuration', 'jwks', 'introspect'], issuer });
log.info(`Listening on ${http.url}`, { serves: ['metrics', 'healthz', 'readyz'] });
log.info(`Listening for admission reviews on ${admission.url}`, { serves: ['mutate', 'validate'] });
const registration =
  config.registerWebhooks && config.tls.caFile
    ? new LocalWebhookRegistration(
        kc.makeApiClient(AdmissionregistrationV1Api),
        admission.url,
        readFileSync(config.tls.caFile, 'utf8'),
        controllerUsername,
        log,
      )
    : undefined;

const elector = config.leaderElection
  ? new LeaderElector({
      coordination: kc.makeApiClient(CoordinationV1Api),
      namespace: config.namespace,
      name: 'hourglass-controller',
      identity: instance,
      log,
      onStartedLeading: () => {
        controller.startReconciling();
        adoptionController.startReconciling();
      },
      onStoppedLeading: async () => {
        await Promise.all([controller.stopReconciling(), adoptionController.stopReconciling()]);
      },
    })
  : undefined;

// Nothing may outlive the process: work stops first, then the registration that would send
// admission reviews here, then the lease; each step is bounded, and a second signal exits at once.
exitInOrderOnSignal(
  [
    {
      done: 'Stopped taking work',
      run: () => {
        discovery.stop();
        reachability.stop();
        return Promise.all([controller.stopReconciling(), adoptionController.stop(), keyManager.stop()]);
      },
      timeoutMs: 15_000,
    },
    { done: 'Stopped registering the webhook', run: async () => registration?.stop(), timeoutMs: 20_000 },
    { done: 'Removed the webhook registration', run: async () => registration?.remove(), timeoutMs: 10_000 },
    { done: 'Released the lease', run: async () => elector?.stop(), timeoutMs: 10_000 },
    {
      done: 'Closed informers and listeners',
      run: () =>
        Promise.all([
          controller.stop(),
          close(https.server),
          close(admission.server),
          close(http.server),
        ]).then(() => kc.close()),
      timeoutMs: 5_000,
    },
  ],
  { log },
);

await Promise.all([controller.startInformers(), adoptionController.startInformers()]);
keyManager.start();
synced = true;
if (registration) {
  await registration.ensure();
  registration.start();
  log.info('Registered the admission webhook', { url: admission.url, controllerUsername });
}
if (elector) elector.start();
else {
  controller.startReconciling();
  adoptionController.startReconciling();
}
log.info('Started controller', {
  namespace: config.namespace,
  issuer,
  instance,
  leaderElection: config.leaderElection,
});
