// The soak benchmark: `npm run bench:soak -- [--duration 60m] [--batch 20] [--period 10s] [--keep 60s]`.
//
// Steady churn against the local cluster of hack/cluster.sh, as a platform team runs it for a day:
// every period a batch of pods and their AccessRequests is created (each pod just before its
// request), and the batch created `keep` earlier is deleted, requests and pods. It runs the
// controller as everywhere (src/main.ts, CONTROLLER_NODE_FLAGS) and reports every minute and at the
// end: requests created, granted, failed (Failed or Denied), grant objects left behind (of requests
// deleted over 30 s ago), revocation lag p99 (the controller's histogram bucket, and the exact lag
// from a request's deletion to its `grant.revoked` audit record), RSS and V8 heap used (means of
// samples every 5 s, so that the heap's sawtooth averages out); at the end, the first third
// against the last third of the run. The goal
// (docs/performance.md): 0 failed, 0 left, RSS and heap growing at most 5 % from the first to the
// last third, revocation lag p99 unchanged. The last line is `SOAK_RESULT {json}`.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { GROUP, VERSION, labels, plural } from '../src/api/types.ts';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { parseDuration } from '../src/policy/duration.ts';
import { CONTROLLER_NODE_FLAGS } from '../test/support/controller.ts';
import { eventually } from '../test/support/cluster.ts';
import { readOrders, readOrdersSecret } from '../test/support/hourglass.ts';
import { BenchController, metricValue, readProcStatus } from './bench/controller.ts';
import { createBenchPolicy } from './bench/kube.ts';
import { fmt, fmtBytes, percentile, sleep, table } from './bench/stats.ts';

const HELP = `Usage: npm run bench:soak -- [options]
  --duration D   how long to churn, a Go duration (default 60m)
  --batch N      pods and requests created per period (default 20)
  --period D     how often a batch is created (default 10s)
  --keep D       how long after its creation a batch is deleted (default 60s)
The cluster is $KUBECONFIG, else .cluster/kubeconfig.`;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60m' },
    batch: { type: 'string', default: '20' },
    period: { type: 'string', default: '10s' },
    keep: { type: 'string', default: '60s' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const DURATION_MS = parseDuration(args.duration) * 1000;
const BATCH = Number(args.batch);
const PERIOD_MS = parseDuration(args.period) * 1000;
const KEEP_BATCHES = Math.max(1, Math.round((parseDuration(args.keep) * 1000) / PERIOD_MS));
if (!(DURATION_MS >= 60_000 && BATCH > 0 && PERIOD_MS > 0))
  throw new Error('bad --duration, --batch or --period');

const repoRoot = path.resolve(import.meta.dirname, '..');
const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const kc = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
const core = kc.makeApiClient(CoreV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const namespace = `soak-${Date.now().toString(36)}`;
const requestCrd = { group: GROUP, version: VERSION, plural: plural.AccessRequest };
const log = (message: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${message}`);

let controller: BenchController | undefined;
let stopping = false;
process.on('SIGINT', () => {
  if (stopping) process.exit(130);
  stopping = true;
  log('SIGINT: ending the churn early and reporting (again to exit at once)');
});
process.on('exit', () => controller?.killNow());

// ---------------------------------------------------------------------------------------------
// Counters

const counts = { created: 0, granted: 0, failed: 0, revoked: 0 };
const failures: string[] = [];
/** batch → when the deletion of its requests began, and when it returned */
const deletingSince = new Map<number, number>();
const deletedAt = new Map<number, number>();

interface Sample {
  minute: number;
  atMs: number;
  created: number;
  granted: number;
  failed: number;
  left: number;
  revocations: number;
  /** p99 of the revocation lags observed during this minute, seconds (histogram bucket bound). */
  lagP99: number;
  /** p99 of the revocation lags measured from the audit stream during this minute, seconds. */
  measuredLagP99: number;
  /** Means of this minute's memory samples. */
  rss: number;
  heapUsed: number;
  /** Cumulative revocation-lag buckets, for the thirds. */
  buckets: Map<number, number>;
}
const mean = (values: number[]) => (values.length ? values.reduce((s, v) => s + v, 0) / values.length : NaN);
const samples: Sample[] = [];
/** Revocations of deleted requests: when the audit record arrived, and its lag from the deletion. */
const revocationLags: { atMs: number; lagMs: number }[] = [];
/** Memory samples since the last per-minute sample. */
let memory: { rss: number; heapUsed: number }[] = [];

async function sampleMemory(): Promise<void> {
  const metrics = await controller?.scrapeMetrics();
  const pid = controller?.pid;
  const rss =
    (pid ? readProcStatus(pid)?.rss : undefined) ??
    metricValue(metrics, 'hourglass_process_resident_memory_bytes');
  memory.push({ rss, heapUsed: metricValue(metrics, 'hourglass_nodejs_heap_size_used_bytes') });
}

function measuredLagP99(fromMs: number, toMs: number): number {
  const lags = revocationLags
    .filter(({ atMs }) => atMs >= fromMs && atMs < toMs)
    .map(({ lagMs }) => lagMs / 1000)
    .sort((a, b) => a - b);
  return lags.length ? percentile(lags, 99) : NaN;
}

/** The cumulative buckets of a histogram, summed over its label sets: le → count. */
function buckets(text: string | undefined, name: string): Map<number, number> {
  const result = new Map<number, number>();
  for (const line of (text ?? '').split('\n')) {
    const match = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)`).exec(line);
    if (!match) continue;
    const le = match[1] === '+Inf' ? Infinity : Number(match[1]);
    result.set(le, (result.get(le) ?? 0) + Number(match[2]));
  }
  return result;
}

/** The q-quantile of the observations between two cumulative bucket snapshots (bucket upper bound). */
function quantileBetween(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const deltas = [...after.entries()]
    .sort(([a], [b]) => a - b)
    .map(([le, count]) => ({ le, count: count - (before.get(le) ?? 0) }));
  const total = deltas.at(-1)?.count ?? 0;
  if (!total) return NaN;
  return deltas.find((b) => b.count >= q * total)?.le ?? NaN;
}

const batchOf = (name: string) => Number(/^soak-(\d+)-/.exec(name)?.[1] ?? NaN);

/** Grant objects whose request was deleted more than 30 s ago, and still exist. */
async function objectsLeft(now: number, all = false): Promise<number> {
  const labelSelector = `${labels.managedBy}=hourglass`;
  const lists = await Promise.all([
    core.listNamespacedSecret({ namespace, labelSelector }),
    rbac.listNamespacedRole({ namespace, labelSelector }),
    rbac.listNamespacedRoleBinding({ namespace, labelSelector }),
  ]);
  return lists
    .flatMap((list) => list.items as { metadata?: { labels?: Record<string, string> } }[])
    .filter((object) => {
      if (all) return true;
      const deleted = deletedAt.get(batchOf(object.metadata?.labels?.[labels.request] ?? ''));
      return deleted !== undefined && now - deleted > 30_000;
    }).length;
}

async function sample(minute: number, startedAt: number): Promise<Sample> {
  const now = Date.now();
  const metrics = await controller?.scrapeMetrics();
  if (!memory.length) await sampleMemory();
  const current = buckets(metrics, 'hourglass_revocation_lag_seconds');
  const previous = samples.at(-1)?.buckets ?? new Map<number, number>();
  const result: Sample = {
    minute,
    atMs: now - startedAt,
    ...counts,
    left: await objectsLeft(now),
    revocations: (current.get(Infinity) ?? 0) - (previous.get(Infinity) ?? 0),
    lagP99: quantileBetween(previous, current, 0.99),
    measuredLagP99: measuredLagP99(startedAt + (samples.at(-1)?.atMs ?? 0), now),
    rss: mean(memory.map((m) => m.rss)),
    heapUsed: mean(memory.map((m) => m.heapUsed)),
    buckets: current,
  };
  memory = [];
  samples.push(result);
  log(
    `minute ${minute}: created ${result.created}, granted ${result.granted}, failed ${result.failed}, ` +
      `left ${result.left}, revocations ${result.revocations} (lag p99 ${fmt(result.measuredLagP99, 3)} s, bucket ${fmt(result.lagP99, 3)} s), ` +
      `RSS ${fmtBytes(result.rss)}, heap used ${fmtBytes(result.heapUsed)}`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// Churn

/**
 * The churn's own API calls, retried for a minute: on a loaded machine a call of the driver may
 * fail to connect, and a batch never deleted would count as left behind by the controller.
 * A create that did reach the API server before failing is done (409).
 */
const stubborn = (call: () => Promise<unknown>) =>
  eventually(
    () =>
      call().catch((error: unknown) => {
        if ((error as { code?: number }).code !== 409) throw error;
      }),
    { timeout: 60_000, interval: 1000, what: 'a churn call' },
  );

async function createBatch(batch: number): Promise<void> {
  const batchLabel = { 'soak-batch': String(batch) };
  await Promise.all(
    Array.from({ length: BATCH }, async (_, i) => {
      const name = `soak-${batch}-${i}`;
      await stubborn(() =>
        core.createNamespacedPod({
          namespace,
          body: {
            metadata: { name, labels: batchLabel },
            spec: {
              serviceAccountName: 'etl',
              nodeName: 'kwok-node-0',
              containers: [{ name: 'main', image: 'busybox' }],
            },
          },
        }),
      );
      await stubborn(() =>
        custom.createNamespacedCustomObject({
          ...requestCrd,
          namespace,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'AccessRequest',
            metadata: { name, labels: batchLabel },
            spec: { subject: { podName: name }, purpose: 'OPS-1 soak', ttl: '15m', ...readOrders },
          },
        }),
      );
      counts.created++;
    }),
  );
}

async function deleteBatch(batch: number): Promise<void> {
  const labelSelector = `soak-batch=${batch}`;
  deletingSince.set(batch, Date.now());
  await stubborn(() =>
    custom.deleteCollectionNamespacedCustomObject({ ...requestCrd, namespace, labelSelector }),
  );
  deletedAt.set(batch, Date.now());
  await stubborn(() =>
    core.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 0 }),
  );
}

async function setUp(): Promise<void> {
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'hourglass-bench': 'true' } } },
  });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'etl' } } });
  // The controller first: the policy is admitted by its webhook.
  controller = await BenchController.start(
    repoRoot,
    ['--log-level', 'info'],
    { KUBECONFIG: kubeconfigPath },
    CONTROLLER_NODE_FLAGS,
  );
  controller.onAudit = (event, ns, name, message) => {
    if (ns !== namespace) return;
    if (event === 'grant.issued') counts.granted++;
    if (event === 'grant.revoked') {
      counts.revoked++;
      const since = deletingSince.get(batchOf(name));
      if (since !== undefined) revocationLags.push({ atMs: Date.now(), lagMs: Date.now() - since });
    }
    if (event === 'request.failed' || (event === 'decision' && message.startsWith('Denied'))) {
      counts.failed++;
      failures.push(`${name}: ${message}`);
    }
  };
  await createBenchPolicy(kc, namespace, 'soak', {
    allow: readOrdersSecret,
    maxTTL: '1h',
    maxActivePerSubject: 100000,
  });
}

async function main(): Promise<void> {
  await setUp();
  log(
    `Soak in namespace ${namespace}: ${BATCH} pods and requests every ${PERIOD_MS / 1000} s, deleted after ` +
      `${(KEEP_BATCHES * PERIOD_MS) / 1000} s, for ${DURATION_MS / 60_000} min (controller log ${controller?.logFile})`,
  );
  const startedAt = Date.now();
  const pending: Promise<void>[] = [];
  let batch = 0;
  let minute = 0;
  let memorySampledAt = startedAt;
  const errors: string[] = [];
  const track = (work: Promise<void>) =>
    pending.push(work.catch((error: unknown) => void errors.push(String(error))));
  while (!stopping && Date.now() - startedAt < DURATION_MS) {
    track(createBatch(batch));
    if (batch >= KEEP_BATCHES) track(deleteBatch(batch - KEEP_BATCHES));
    batch++;
    const next = startedAt + batch * PERIOD_MS;
    while (!stopping && Date.now() < next) {
      if (Date.now() - memorySampledAt >= 5_000) {
        memorySampledAt = Date.now();
        await sampleMemory();
      }
      if (Date.now() - startedAt >= (minute + 1) * 60_000) await sample(++minute, startedAt);
      await sleep(Math.min(1000, Math.max(0, next - Date.now())));
    }
  }
  await Promise.all(pending);
  for (let b = Math.max(0, batch - KEEP_BATCHES); b < batch; b++) await deleteBatch(b);
  // Drain: every request finalized and every grant object gone.
  const drainDeadline = Date.now() + 120_000;
  let remaining = { requests: -1, objects: -1 };
  while (Date.now() < drainDeadline) {
    const requests = (
      (await custom.listNamespacedCustomObject({ ...requestCrd, namespace })) as { items: unknown[] }
    ).items.length;
    remaining = { requests, objects: await objectsLeft(Date.now(), true) };
    if (!remaining.requests && !remaining.objects) break;
    await sleep(1000);
  }
  const final = await sample(++minute, startedAt);

  // Thirds of the churn, the first minute (warm-up) and the drain left out.
  const churned = samples.slice(1, -1);
  const third = Math.floor(churned.length / 3);
  const first = churned.slice(0, third);
  const last = churned.slice(churned.length - third);
  const lagOf = (part: Sample[]) => {
    const end = part.at(-1);
    if (!end) return NaN;
    const before = samples[samples.indexOf(part[0] as Sample) - 1]?.buckets ?? new Map<number, number>();
    return quantileBetween(before, end.buckets, 0.99);
  };
  const measuredLagOf = (part: Sample[]) => {
    const from = samples[samples.indexOf(part[0] as Sample) - 1]?.atMs ?? 0;
    return measuredLagP99(startedAt + from, startedAt + (part.at(-1)?.atMs ?? 0));
  };
  const compare = {
    rss: { first: mean(first.map((s) => s.rss)), last: mean(last.map((s) => s.rss)) },
    heapUsed: { first: mean(first.map((s) => s.heapUsed)), last: mean(last.map((s) => s.heapUsed)) },
    lagP99: { first: lagOf(first), last: lagOf(last) },
    measuredLagP99: { first: measuredLagOf(first), last: measuredLagOf(last) },
  };
  const growth = (x: { first: number; last: number }) => (x.last / x.first - 1) * 100;
  console.log(
    table(
      ['', 'first third', 'last third', 'change'],
      [
        [
          'RSS (mean)',
          fmtBytes(compare.rss.first),
          fmtBytes(compare.rss.last),
          `${fmt(growth(compare.rss))} %`,
        ],
        [
          'heap used (mean)',
          fmtBytes(compare.heapUsed.first),
          fmtBytes(compare.heapUsed.last),
          `${fmt(growth(compare.heapUsed))} %`,
        ],
        [
          'revocation lag p99 (measured)',
          `${fmt(compare.measuredLagP99.first, 3)} s`,
          `${fmt(compare.measuredLagP99.last, 3)} s`,
          '',
        ],
        [
          'revocation lag p99 (bucket)',
          `${fmt(compare.lagP99.first, 3)} s`,
          `${fmt(compare.lagP99.last, 3)} s`,
          '',
        ],
      ],
    ),
  );
  console.log(
    `created ${final.created}, granted ${final.granted}, failed ${final.failed}, revoked ${counts.revoked}; ` +
      `left after the drain: ${remaining.requests} requests, ${remaining.objects} grant objects; errors ${errors.length}`,
  );
  for (const failure of failures.slice(0, 20)) console.log(`  ${failure}`);
  for (const error of errors.slice(0, 5)) console.log(`  error: ${error}`);
  const result = {
    minutes: DURATION_MS / 60_000,
    batch: BATCH,
    periodSeconds: PERIOD_MS / 1000,
    created: final.created,
    granted: final.granted,
    failed: final.failed,
    leftRequests: remaining.requests,
    leftObjects: remaining.objects,
    compare,
    perMinute: samples.map(({ buckets: _, ...s }) => s),
  };
  console.log(`SOAK_RESULT ${JSON.stringify(result)}`);
  await controller?.stop();
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  await kc.close();
}

try {
  await main();
} catch (error) {
  console.error(`Soak failed: ${String(error)}`);
  // SIGTERM, not SIGKILL: the controller removes its webhook registration on the way out.
  await controller?.stop();
  process.exitCode = 1;
}
