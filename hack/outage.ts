// Recovery from an API-server outage, in figures:
//   node hack/outage.ts [--grants 30] [--ttl 40s] [--stop-after 15s] [--outage 50s] [--signal KILL]
//
// Against the local cluster of hack/cluster.sh, in one fresh namespace: a controller issues
// `--grants` grants with `--ttl`; `--stop-after` later the kube-apiserver is stopped (SIGKILL by
// default; `--signal TERM` for a graceful stop) and started again `--outage` later, on the same
// port and etcd. From the first moment /readyz answers again it measures
//   - revoked: until every request is Expired and none of their Secrets or RoleBindings is left;
//   - granted: until a request created at that moment is Granted.
// The last line is `OUTAGE_RESULT {json}`. It never asserts the figures.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { GROUP, labels, MANAGED_BY, plural, VERSION, type AccessRequest } from '../src/api/types.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { readOrders, readOrdersSecret } from '../test/support/hourglass.ts';
import { CONTROLLER_NODE_FLAGS } from '../test/support/controller.ts';
import { BenchController, histogramQuantile, metricValue } from './bench/controller.ts';
import { getRaw } from './bench/kube.ts';

const HELP = `Usage: node hack/outage.ts [options]
  --grants N        grants issued before the outage (default 30)
  --ttl D           their ttl, a Go duration (default 40s)
  --stop-after D    from the requests' creation to the API server's stop (default 15s)
  --outage D        how long the API server stays down (default 50s; 2m for the long variant)
  --signal S        KILL (default) or TERM, how the API server is stopped`;

const { values: args } = parseArgs({
  options: {
    grants: { type: 'string', default: '30' },
    ttl: { type: 'string', default: '40s' },
    'stop-after': { type: 'string', default: '15s' },
    outage: { type: 'string', default: '50s' },
    signal: { type: 'string', default: 'KILL' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
function seconds(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) throw new Error(`bad duration "${text}"`);
  return parts.reduce((s, p) => s + Number(p[1]) * { h: 3600, m: 60, s: 1 }[p[2] as 'h' | 'm' | 's'], 0);
}
const GRANTS = Number(args.grants);
const TTL = args.ttl;
const STOP_AFTER_MS = seconds(args['stop-after']) * 1000;
const OUTAGE_MS = seconds(args.outage) * 1000;
if (!['KILL', 'TERM'].includes(args.signal)) throw new Error('--signal must be KILL or TERM');

const repoRoot = path.resolve(import.meta.dirname, '..');
const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const kc = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = `outage-${Date.now().toString(36)}`;
const requests = { group: GROUP, version: VERSION, plural: plural.AccessRequest, namespace };
const log = (message: string) => console.error(`${new Date().toISOString().slice(11, 23)} ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function cluster(...argv: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('bash', [path.join(repoRoot, 'hack', 'cluster.sh'), ...argv], (error, _stdout, stderr) =>
      error ? reject(new Error(`hack/cluster.sh ${argv.join(' ')}: ${stderr}`)) : resolve(),
    ),
  );
}

/** Polls `check` every 100 ms (each call bounded to 2 s) until it returns true; ms since `from`. */
async function timeUntil(check: () => Promise<boolean>, from: number, timeoutMs: number): Promise<number> {
  while (Date.now() - from < timeoutMs) {
    const ok = await Promise.race([check().catch(() => false), sleep(2000).then(() => false)]);
    if (ok) return Date.now() - from;
    await sleep(100);
  }
  return NaN;
}

const listRequests = async () =>
  ((await custom.listNamespacedCustomObject(requests)) as { items: AccessRequest[] }).items;
const grantObjectsLeft = async () => {
  const selector = `${labels.managedBy}=${MANAGED_BY}`;
  const path = (group: string, kind: string) =>
    `${group}/namespaces/${namespace}/${kind}?labelSelector=${selector}`;
  const [secrets, bindings] = await Promise.all([
    getRaw(kc, path('/api/v1', 'secrets'), AbortSignal.timeout(2000)),
    getRaw(kc, path('/apis/rbac.authorization.k8s.io/v1', 'rolebindings'), AbortSignal.timeout(2000)),
  ]);
  return [secrets, bindings].reduce(
    (n, text) => n + (JSON.parse(text) as { items: unknown[] }).items.length,
    0,
  );
};
const createRequest = (name: string, ttl: string) =>
  custom.createNamespacedCustomObject({
    ...requests,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessRequest',
      metadata: { name, namespace },
      spec: { purpose: 'OPS-13 outage recovery', ttl, subject: { podName: name }, ...readOrders },
    },
  });
const pod = (name: string): V1Pod => ({
  metadata: { name },
  spec: {
    serviceAccountName: 'etl',
    nodeName: 'kwok-node-0',
    containers: [{ name: 'main', image: 'busybox' }],
  },
});

let controller: BenchController | undefined;
let apiServerStopped = false;
const result: Record<string, unknown> = { grants: GRANTS, ttl: TTL, outageSeconds: OUTAGE_MS / 1000 };

async function main(): Promise<void> {
  const head = await new Promise<string>((resolve) =>
    execFile('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot }, (_e, out) => resolve(out.trim())),
  );
  result.commit = head;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'etl' } } });
  await custom.createNamespacedCustomObject({
    ...requests,
    plural: plural.AccessPolicy,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessPolicy',
      metadata: { name: 'outage', namespace },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: { groups: ['system:masters'] },
        allow: readOrdersSecret,
        maxActivePerSubject: 100000,
      },
    },
  });
  const names = Array.from({ length: GRANTS }, (_, i) => `g-${i}`);
  for (let attempt = 0; ; attempt++) {
    try {
      await core.readNamespacedServiceAccount({ namespace, name: 'etl' });
      break;
    } catch (error) {
      if (attempt > 50) throw error;
      await sleep(100);
    }
  }
  await Promise.all(
    [...names, 'late'].map((name) => core.createNamespacedPod({ namespace, body: pod(name) })),
  );
  controller = await BenchController.start(
    repoRoot,
    ['--log-level', 'info'],
    { KUBECONFIG: kubeconfigPath },
    CONTROLLER_NODE_FLAGS,
  );
  log(`Started controller pid ${controller.pid}; namespace ${namespace}`);

  const createdAt = Date.now();
  await Promise.all(names.map((name) => createRequest(name, TTL)));
  const grantedIn = await timeUntil(
    async () => (await listRequests()).filter((r) => r.status?.phase === 'Granted').length === GRANTS,
    createdAt,
    STOP_AFTER_MS,
  );
  if (!Number.isFinite(grantedIn))
    throw new Error(`the ${GRANTS} grants were not all Granted before the stop`);
  const expiries = (await listRequests()).map((r) => Date.parse(r.status?.grant?.expiresAt ?? ''));
  log(
    `${GRANTS} grants issued in ${grantedIn} ms; they expire within ${(Math.max(...expiries) - createdAt) / 1000} s`,
  );

  await sleep(createdAt + STOP_AFTER_MS - Date.now());
  await cluster('stop', 'kube-apiserver', `--${args.signal.toLowerCase() === 'kill' ? 'kill' : 'term'}`);
  apiServerStopped = true;
  const stoppedAt = Date.now();
  log(`Stopped the kube-apiserver (SIG${args.signal}) for ${OUTAGE_MS / 1000} s`);
  await sleep(OUTAGE_MS);
  const started = cluster('start', 'kube-apiserver');
  const readyAt =
    Date.now() +
    (await timeUntil(
      async () => (await getRaw(kc, '/readyz', AbortSignal.timeout(1000))) === 'ok',
      Date.now(),
      120_000,
    ));
  await started;
  apiServerStopped = false;
  result.outageMeasuredSeconds = (readyAt - stoppedAt) / 1000;
  result.expiredDuringOutage = expiries.filter((at) => at > stoppedAt && at < readyAt).length;
  log(`/readyz answered ${(readyAt - stoppedAt) / 1000} s after the stop`);

  const [granted, revoked] = await Promise.all([
    (async () => {
      await createRequest('late', '5m');
      return timeUntil(
        async () =>
          (await listRequests()).find((r) => r.metadata.name === 'late')?.status?.phase === 'Granted',
        readyAt,
        120_000,
      );
    })(),
    timeUntil(
      async () =>
        (await listRequests()).filter((r) => r.metadata.name !== 'late' && r.status?.phase === 'Expired')
          .length === GRANTS &&
        // Only the late request's Secret and RoleBinding may remain.
        (await grantObjectsLeft()) <=
          ((await listRequests()).find((r) => r.metadata.name === 'late')?.status?.phase === 'Granted'
            ? 2
            : 0),
      readyAt,
      300_000,
    ),
  ]);
  result.revokedAfterReadySeconds = revoked / 1000;
  result.grantedAfterReadySeconds = granted / 1000;
  const metrics = await controller.scrapeMetrics();
  const lagP99 = histogramQuantile(metrics, 'hourglass_revocation_lag_seconds', 0.99);
  // The histogram's last bucket is 60 s: a lag above it is only known to be above it.
  result.revocationLagP99Seconds = lagP99 === Infinity ? '>60' : lagP99;
  result.informerRestarts = [
    ...(metrics ?? '').matchAll(/^hourglass_informer_restarts_total\{[^}]*\} (\S+)$/gm),
  ]
    .map((m) => Number(m[1]))
    .reduce((a, b) => a + b, 0);
  result.workqueueRetries = metricValue(metrics, 'hourglass_workqueue_retries_total');
  log(
    `From /readyz: all ${GRANTS} Expired with nothing left in ${revoked / 1000} s; ` +
      `a request created then Granted in ${granted / 1000} s`,
  );
}

async function cleanUp(): Promise<void> {
  if (apiServerStopped) await cluster('start', 'kube-apiserver').catch((e: unknown) => log(String(e)));
  try {
    await core.deleteNamespace({ name: namespace });
    await timeUntil(
      async () => {
        try {
          await core.readNamespace({ name: namespace });
          return false;
        } catch {
          return true;
        }
      },
      Date.now(),
      120_000,
    );
  } catch (error) {
    log(`Failed to delete namespace ${namespace}: ${String(error)}`);
  }
  await controller?.stop();
  await kc.close();
}

process.on('exit', () => controller?.killNow());
try {
  await main();
} catch (error) {
  result.error = error instanceof Error ? error.message : String(error);
  log(`Stopped early: ${String(result.error)}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
console.log(`OUTAGE_RESULT ${JSON.stringify(result)}`);
