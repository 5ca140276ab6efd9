// Measures whether oversized dry-run AccessRequests stall a running controller: `--parallel`
// `kubectl create --dry-run=server`-like creates of a ~0.5 MB AccessRequest (30 000 apiGroups)
// x 32 resources) go through the API server, `--rounds` times, while /healthz is polled every 20 ms.
//   ./node_modules/.bin/node hack/admission-flood.ts --ops-url http://127.0.0.1:PORT \
//     [--parallel 8] [--rounds 5] [--api-groups 30000]
// The cluster is $KUBECONFIG (else .cluster/kubeconfig). It starts no controller: --ops-url is
// the plain-HTTP URL the running controller logged ("Listening on http://..."). It sets up one
// namespace (a service account, a pod and a policy, as a tenant's namespace has) and deletes it.
// Prints figures; asserts nothing.
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, VERSION, plural } from '../src/api/types.ts';
import { statusCode, statusMessage } from '../src/k8s/errors.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { allowEverything, oversizedAccessRequest, pollHealthz } from '../test/support/flood.ts';
import { summarize, fmt } from './bench/stats.ts';

const { values } = parseArgs({
  options: {
    'ops-url': { type: 'string' },
    parallel: { type: 'string' },
    rounds: { type: 'string' },
    'api-groups': { type: 'string' },
  },
});
const opsUrl = values['ops-url'];
if (!opsUrl) {
  console.error('--ops-url is required: the controller\'s "Listening on http://..." URL');
  process.exit(2);
}
const parallel = Number(values.parallel ?? 8);
const rounds = Number(values.rounds ?? 5);
const apiGroupCount = Number(values['api-groups'] ?? 30_000);

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = `admission-flood-${Date.now().toString(36)}`;

const oversized = oversizedAccessRequest(namespace, 'flood', 'etl-pod', apiGroupCount);
const bodyBytes = Buffer.byteLength(JSON.stringify(oversized));

await core.createNamespace({ body: { metadata: { name: namespace } } });
try {
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'etl' } } });
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'etl-pod' },
      spec: {
        serviceAccountName: 'etl',
        nodeName: 'kwok-node-0',
        containers: [{ name: 'main', image: 'busybox' }],
      },
    },
  });
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: plural.AccessPolicy,
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessPolicy',
      metadata: { name: 'readers', namespace },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: { groups: ['system:masters'] },
        allow: allowEverything,
      },
    },
  });

  // The controller decides (and explains) from its caches: wait until it has seen the policy.
  for (let waited = 0; ; waited += 200) {
    const policy = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: plural.AccessPolicy,
      namespace,
      name: 'readers',
    })) as { status?: { conditions?: unknown[] } };
    if (policy.status?.conditions?.length) break;
    if (waited > 30_000) throw new Error('the controller did not write the policy status in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }

  const poller = await pollHealthz(opsUrl);
  const answers = new Map<string, number>();
  const dryRunMs: number[] = [];
  const floodStarted = performance.now();
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        const started = performance.now();
        let answer: string;
        try {
          await custom.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: plural.AccessRequest,
            namespace,
            body: oversized,
            dryRun: 'All',
          });
          answer = 'accepted (dry run)';
        } catch (error) {
          answer = `${statusCode(error) ?? 'error'}: ${statusMessage(error).slice(0, 160)}`;
        }
        dryRunMs.push(performance.now() - started);
        answers.set(answer, (answers.get(answer) ?? 0) + 1);
      }),
    );
  }
  const floodSeconds = (performance.now() - floodStarted) / 1000;
  const { latencies: healthz, failures: healthzFailures } = await poller.stop();

  const h = summarize(healthz);
  const d = summarize(dryRunMs);
  console.log(
    `flood: ${rounds} rounds x ${parallel} parallel dry-run creates of a ${(bodyBytes / 1024).toFixed(0)} KiB AccessRequest (${apiGroupCount} apiGroups) in ${floodSeconds.toFixed(1)} s`,
  );
  console.log(
    `/healthz: n=${h.n} p50=${fmt(h.p50)} ms p99=${fmt(h.p99)} ms max=${fmt(h.max)} ms failures=${healthzFailures}`,
  );
  console.log(`dry-run latency: p50=${fmt(d.p50, 0)} ms p99=${fmt(d.p99, 0)} ms max=${fmt(d.max, 0)} ms`);
  for (const [answer, count] of answers) console.log(`  ${count} x ${answer}`);
} finally {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  await kc.close();
}
