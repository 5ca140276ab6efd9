// The zero-code adoption benchmark: `npm run bench:adoption -- [--rate 10] [--seconds 20] [--n 200] [--concurrency 16]`.
//
// Against the local cluster of hack/cluster.sh, in a fresh namespace, with a controller of its
// own, it measures the latency from an opted-in pod's creation (the client's create call) to the
// removal of its hourglass.dev/grant gate (the watch event that shows it): at a fixed offered
// rate of bare pods, then at saturation (N pods created by C clients at once). Each pod is its
// own subject: one AccessRequest, one decision, one grant per pod. It prints figures and never
// asserts them: the last line is `BENCH_ADOPTION_RESULT {json}`. The namespace is deleted at the end.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { adoption } from '../src/api/adoption.ts';
import { GROUP, VERSION } from '../src/api/types.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { CONTROLLER_NODE_FLAGS } from '../test/support/controller.ts';
import { BenchController } from './bench/controller.ts';
import { CollectionWatch } from './bench/kube.ts';
import { fmtMs, pool, sleep, summarize, table, type Summary } from './bench/stats.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    n: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
  },
});
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const N = Number(args.n);
const CONCURRENCY = Number(args.concurrency);

const repoRoot = path.resolve(import.meta.dirname, '..');
const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const kc = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = `bench-adopt-${Date.now().toString(36)}`;
const log = (message: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${message}`);

/** Pod name → when its create call was sent, and when its gate was seen gone. */
const sentAt = new Map<string, number>();
const ungatedAt = new Map<string, number>();

function podBody(name: string): V1Pod {
  return {
    metadata: {
      name,
      labels: { [adoption.inject]: 'true' },
      annotations: { [adoption.access]: 'get secrets/orders-db' },
    },
    spec: { serviceAccountName: 'etl', containers: [{ name: 'main', image: 'busybox' }] },
  };
}

async function createPod(name: string): Promise<void> {
  sentAt.set(name, Date.now());
  await core.createNamespacedPod({ namespace, body: podBody(name) });
}

async function waitUngated(names: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (names.some((name) => !ungatedAt.has(name)) && Date.now() < deadline) await sleep(100);
}

const latencies = (names: string[]) =>
  summarize(names.flatMap((name) => (ungatedAt.has(name) ? [ungatedAt.get(name)! - sentAt.get(name)!] : [])));

async function main(): Promise<{ rate: Summary; saturation: Summary & { podsPerSecond: number } }> {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'etl' } } });
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: 'accesspolicies',
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessPolicy',
      metadata: { name: 'self' },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: { self: true },
        allow: {
          permissions: [
            { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
          ],
        },
        maxActivePerSubject: 100000,
      },
    },
  });
  const watch = new CollectionWatch<V1Pod>(
    kc,
    // Only opted-in pods live in this namespace.
    `/api/v1/namespaces/${namespace}/pods`,
    (_type, pod, receivedAt) => {
      const name = pod.metadata?.name ?? '';
      const gated = (pod.spec?.schedulingGates ?? []).some((gate) => gate.name === adoption.gate);
      if (!gated && sentAt.has(name) && !ungatedAt.has(name)) ungatedAt.set(name, receivedAt);
    },
  );
  await watch.start();

  log(`Fixed rate: ${RATE} opted-in pods/s for ${SECONDS} s`);
  const rateNames = Array.from({ length: Math.round(RATE * SECONDS) }, (_, i) => `rate-${i}`);
  const start = Date.now();
  const creations: Promise<void>[] = [];
  for (const [i, name] of rateNames.entries()) {
    const due = start + (i * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    creations.push(createPod(name));
  }
  await Promise.all(creations);
  await waitUngated(rateNames, 60_000);

  log(`Saturation: ${N} opted-in pods from ${CONCURRENCY} clients`);
  const saturationNames = Array.from({ length: N }, (_, i) => `sat-${i}`);
  const saturationStart = Date.now();
  await pool(saturationNames, CONCURRENCY, (name) => createPod(name));
  await waitUngated(saturationNames, 120_000);
  const lastUngated = Math.max(...saturationNames.map((name) => ungatedAt.get(name) ?? NaN));
  await watch.stop();
  return {
    rate: latencies(rateNames),
    saturation: {
      ...latencies(saturationNames),
      podsPerSecond: (N * 1000) / (lastUngated - saturationStart),
    },
  };
}

const controller = await BenchController.start(
  repoRoot,
  ['--concurrency', String(CONCURRENCY), '--log-level', 'info'],
  { KUBECONFIG: kubeconfigPath },
  CONTROLLER_NODE_FLAGS,
);
try {
  const result = await main();
  const row = (phase: string, s: Summary) => [phase, s.n, fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max)];
  console.log('Pod created → hourglass.dev/grant gate removed (one request, decision and grant per pod)');
  console.log(
    table(
      ['phase', 'pods', 'p50', 'p99', 'max'],
      [row(`${RATE} pods/s`, result.rate), row(`saturation (${CONCURRENCY} clients)`, result.saturation)],
    ),
  );
  console.log(`Saturation throughput: ${result.saturation.podsPerSecond.toFixed(1)} pods/s ungated`);
  console.log(`BENCH_ADOPTION_RESULT ${JSON.stringify(result)}`);
} finally {
  // The controller removes the requests' finalizers: delete the namespace while it runs.
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  const deadline = Date.now() + 120_000;
  while (
    Date.now() < deadline &&
    (await core.readNamespace({ name: namespace }).then(
      () => true,
      () => false,
    ))
  )
    await sleep(500);
  await controller.stop();
}
