// The hourglass benchmark: `npm run bench -- [--n 1000] [--concurrency 16] [--rate 10] [--ttl 30s]`.
//
// Against the local cluster of hack/cluster.sh it measures, in one run and one fresh namespace:
//   1. the raw ceiling: a plain client (PooledKubeConfig) creating, then deleting, N Secret + Role +
//      RoleBinding triples of the grant's shapes at the same concurrency (W = writes/s);
//   2. saturation: N AccessRequests for N pods, as fast as the concurrency allows: grants/s, grant
//      latency, and API writes per grant from the API server's own apiserver_request_total;
//   3. revocation at ttl expiry: expiry -> RoleBinding gone, and -> `can-i` false;
//   4. grant latency at a fixed offered rate;
// and the controller's peak RSS. It prints figures and never asserts them: the last line is
// `BENCH_RESULT {json}`. Everything it creates lives in its namespace, deleted at the end (also on
// Ctrl-C). What "the raw ceiling" and the physical limit mean: shared/docs/performance.md.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CONTROLLER_NODE_FLAGS } from '../test/support/controller.ts';
import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubernetesObject,
  type V1OwnerReference,
  type V1Pod,
  type V1Role,
  type V1RoleBinding,
  type V1Secret,
} from '@kubernetes/client-node';
import { GROUP, VERSION, grantObjectNames, labels, plural, type AccessRequest } from '../src/api/types.ts';
import { loadKubeConfig, type PooledKubeConfig } from '../src/k8s/kubeconfig.ts';
import { readOrders, readOrdersSecret } from '../test/support/hourglass.ts';
import {
  delta,
  qualified,
  READ_VERBS,
  scrapeApiserver,
  WRITE_VERBS,
  type RequestCount,
  type Snapshot,
} from './bench/apiserver-metrics.ts';
import { clusterPids, cpuShares, cpuSnapshot, type CpuSnapshot } from './bench/cpu.ts';
import { BenchController, firstMetric, histogramQuantile, metricValue } from './bench/controller.ts';
import { CollectionWatch, createBenchPolicy, getRaw, type WatchEventType } from './bench/kube.ts';
import { fmt, fmtBytes, fmtMs, pool, round, sleep, summarize, table, type Summary } from './bench/stats.ts';

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: npm run bench -- [options]
  --n N               requests (and raw triples) in the saturation phase (default 1000)
  --concurrency C     client concurrency, also passed to the controller (default 16)
  --rate R            offered requests/s in the fixed-rate phase (default 10)
  --rate-seconds S    length of the fixed-rate phase (default 20)
  --ttl D             ttl of the saturation requests, a Go duration (default 30s, raised when N
                      could not be granted before the first expiry; an explicit --ttl is kept)
  --samples K         requests whose can-i is polled after expiry (default 50)
  --node-flags=F      Node/V8 flags for the controller process (default: as it runs everywhere,
                      ${CONTROLLER_NODE_FLAGS.join(' ')}; --node-flags= runs it with none)
The cluster is $KUBECONFIG, else .cluster/kubeconfig; only a cluster on 127.0.0.1 is accepted.`;

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '10' },
    'rate-seconds': { type: 'string', default: '20' },
    ttl: { type: 'string' },
    samples: { type: 'string', default: '50' },
    'node-flags': { type: 'string', default: CONTROLLER_NODE_FLAGS.join(' ') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const positive = (value: string, name: string, integer = true) => {
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name} must be a positive number`);
  return n;
};
function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|m|s)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) throw new Error(`bad duration "${text}"`);
  return parts.reduce((s, p) => s + Number(p[1]) * { h: 3600, m: 60, s: 1 }[p[2] as 'h' | 'm' | 's'], 0);
}
const N = positive(args.n, 'n');
const CONCURRENCY = positive(args.concurrency, 'concurrency');
const RATE = positive(args.rate, 'rate', false);
const RATE_SECONDS = positive(args['rate-seconds'], 'rate-seconds', false);
const SAMPLES = Math.min(positive(args.samples, 'samples'), N);
const TTL_REQUESTED = parseDuration(args.ttl ?? '30s');
if (TTL_REQUESTED < 10) throw new Error('--ttl must be at least 10s (the API minimum)');
const RATE_TTL_SECONDS = 15 * 60;

// ---------------------------------------------------------------------------------------------
// Cluster, clients, cleanup

const repoRoot = path.resolve(import.meta.dirname, '..');
const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const kubectlPath = path.join(repoRoot, '.cluster', 'bin', 'kubectl');
const kc: PooledKubeConfig = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
const core = kc.makeApiClient(CoreV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const authorization = kc.makeApiClient(AuthorizationV1Api);
const namespace = `bench-${Date.now().toString(36)}`;
const crd = { group: GROUP, version: VERSION, plural: plural.AccessRequest };

const abort = new AbortController();
const signal = abort.signal;
let controller: BenchController | undefined;
let interrupts = 0;
const onSignal = (name: string) => {
  interrupts++;
  if (interrupts === 1) {
    console.error(`\n${name}: stopping the benchmark and cleaning up (again to exit at once)`);
    abort.abort(new Error(`interrupted by ${name}`));
  } else {
    controller?.killNow();
    console.error(`Exited without cleanup: delete namespace ${namespace} yourself.`);
    process.exit(130);
  }
};
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('exit', () => controller?.killNow());
process.on('unhandledRejection', (error) => {
  console.error(`Unhandled rejection: ${String(error)}`);
  if (!abort.signal.aborted) abort.abort(error instanceof Error ? error : new Error(String(error)));
});

const log = (message: string) => console.error(`${new Date().toISOString().slice(11, 23)} ${message}`);

function run(file: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(file, argv, { cwd: repoRoot, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    ),
  );
}

const statusOf = (error: unknown) => (error instanceof ApiException ? error.code : undefined);

async function retrying<T>(what: string, call: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= attempts || signal.aborted) throw new Error(`${what}: ${String(error)}`);
      await sleep(250 * attempt, signal);
    }
  }
}

/** Polls until `done()` or the timeout; true when done. */
async function waitUntil(done: () => boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    if (controller && !controller.running) throw new Error('the controller exited');
    await sleep(intervalMs, signal);
  }
  return true;
}

/** Processes on this machine running an hourglass controller (src/main.ts), other than ours. */
function otherControllers(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === controller?.pid) continue;
    try {
      // Our own controller, before its pid is known, is our child.
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      if (ppid === process.pid) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((arg) => arg.endsWith('src/main.ts'))) pids.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

async function otherNamespaces(): Promise<string[]> {
  const system = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease', 'hourglass-system']);
  const list = await core.listNamespace();
  return list.items
    .map((ns) => ns.metadata?.name ?? '')
    .filter((name) => name && !system.has(name) && name !== namespace);
}

// ---------------------------------------------------------------------------------------------
// Shapes: the grant's Secret, Role and RoleBinding, as the raw client writes them

const jwtSized = () => randomBytes(520).toString('base64url'); // an ES256 grant token is ~700 chars
const b64 = (text: string) => Buffer.from(text).toString('base64');

function rawTriple(index: number, owner: V1OwnerReference) {
  const name = `raw-${String(index).padStart(5, '0')}`;
  const names = grantObjectNames(name);
  const metadata = (objectName: string) => ({
    name: objectName,
    namespace,
    // The grant's four labels, but not managed-by=hourglass: no controller may take them for its own.
    labels: {
      [labels.managedBy]: 'hourglass-bench',
      [labels.request]: name,
      [labels.requestUid]: randomUUID(),
      [labels.grantId]: randomUUID(),
    },
    ownerReferences: [owner],
  });
  const secret: V1Secret = {
    metadata: metadata(names.secretName),
    type: 'hourglass.dev/grant',
    data: { grantId: b64(randomUUID()), expiresAt: b64(new Date().toISOString()), token: b64(jwtSized()) },
  };
  const role: V1Role = {
    metadata: metadata(names.roleName),
    rules: [
      ...(readOrders.permissions ?? []),
      { apiGroups: [''], resources: ['secrets'], resourceNames: [names.secretName], verbs: ['get'] },
    ],
  };
  const roleBinding: V1RoleBinding = {
    metadata: metadata(names.roleBindingName),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.roleName },
    subjects: [{ kind: 'ServiceAccount', name: 'etl', namespace }],
  };
  return { names, secret, role, roleBinding };
}

function podBody(name: string, set: string): V1Pod {
  return {
    metadata: { name, labels: { 'hourglass-bench/set': set } },
    spec: {
      serviceAccountName: 'etl',
      nodeName: 'kwok-node-0',
      containers: [{ name: 'main', image: 'busybox' }],
    },
  };
}

async function createPods(names: string[], set: string): Promise<void> {
  await pool(
    names,
    CONCURRENCY,
    async (name) => {
      await retrying(`create pod ${name}`, async () => {
        try {
          await core.createNamespacedPod({ namespace, body: podBody(name, set) });
        } catch (error) {
          if (statusOf(error) !== 409) throw error; // 409: a retry of a create that went through
        }
      });
    },
    signal,
  );
  // kwok writes each pod's status once it "starts" it: wait, so that those writes land before
  // the measured window rather than in it.
  const running = async () =>
    (await core.listNamespacedPod({ namespace, labelSelector: `hourglass-bench/set=${set}` })).items.filter(
      (pod) => pod.status?.phase === 'Running',
    ).length;
  const deadline = Date.now() + 120_000;
  let count = 0;
  while ((count = await running()) < names.length && Date.now() < deadline) await sleep(1000, signal);
  if (count < names.length) log(`WARNING: only ${count}/${names.length} pods of set ${set} are Running`);
}

// ---------------------------------------------------------------------------------------------
// What the watches of the bench namespace record

type RequestSet = 'saturation' | 'rate';
type Window = 'idle' | 'issue' | 'revoke' | 'rate' | 'cleanup';

interface RequestRecord {
  name: string;
  set: RequestSet;
  createSentAt?: number;
  createdAt?: number;
  createFailed?: string;
  creationTimestamp?: number;
  grantedSeenAt?: number;
  issuedAt?: number;
  expiresAt?: number;
  /** A final phase other than Granted/Expired: Denied, Failed, Revoked. */
  terminal?: string;
  expiredSeenAt?: number;
  deleted: Partial<Record<'Secret' | 'Role' | 'RoleBinding', number>>;
  added: Partial<Record<'Secret' | 'Role' | 'RoleBinding', number>>;
}

const records = new Map<string, RequestRecord>();
let window: Window = 'idle';
/** window → "Kind TYPE" → watch events seen in the bench namespace (effective writes). */
const effective = new Map<Window, Map<string, number>>();
/** reportingInstance → events.k8s.io Events about AccessRequests of the bench namespace */
const eventInstances = new Map<string, number>();

/** CPU snapshots by label; "<phase> start" and "<phase>" bracket a phase. */
const cpuMarks = new Map<string, CpuSnapshot>();
const clusterState = process.env.HOURGLASS_CLUSTER_DIR ?? path.join(repoRoot, '.cluster');
function cpuMark(label: string): void {
  cpuMarks.set(label, cpuSnapshot({ controller: controller?.pid, ...clusterPids(clusterState) }));
}
/** Share of a core per process over a phase. */
function phaseCpu(phase: string): Record<string, number> | undefined {
  const start = cpuMarks.get(`${phase} start`);
  const end = cpuMarks.get(phase);
  return start && end ? cpuShares(start, end) : undefined;
}

/** window → pids of other hourglass controllers seen running during it */
const othersByWindow = new Map<Window, Set<number>>();
const othersMonitor = setInterval(() => {
  const pids = otherControllers();
  if (!pids.length) return;
  let seen = othersByWindow.get(window);
  if (!seen) othersByWindow.set(window, (seen = new Set()));
  for (const pid of pids) seen.add(pid);
}, 1000);
othersMonitor.unref();

function countEffective(key: string): void {
  let counts = effective.get(window);
  if (!counts) effective.set(window, (counts = new Map()));
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function onRequestEvent(type: WatchEventType, request: AccessRequest, at: number): void {
  countEffective(`AccessRequest ${type}`);
  const record = records.get(request.metadata.name);
  if (!record) return;
  const status = request.status;
  if (status?.phase === 'Granted' && record.grantedSeenAt === undefined) {
    record.grantedSeenAt = at;
    record.issuedAt = Date.parse(status.grant?.issuedAt ?? '');
    record.expiresAt = Date.parse(status.grant?.expiresAt ?? '');
    record.creationTimestamp = Date.parse(String(request.metadata.creationTimestamp ?? ''));
  }
  if (status?.phase === 'Expired') record.expiredSeenAt ??= at;
  else if (status?.phase && ['Denied', 'Failed', 'Revoked'].includes(status.phase))
    record.terminal ??= `${status.phase}/${status.reason ?? ''}`;
}

function onGrantObjectEvent(kind: 'Secret' | 'Role' | 'RoleBinding') {
  return (type: WatchEventType, object: KubernetesObject, at: number) => {
    const requestName = object.metadata?.labels?.[labels.request];
    if (object.metadata?.labels?.[labels.managedBy] !== 'hourglass' || !requestName) return;
    countEffective(`${kind} ${type}`);
    const record = records.get(requestName);
    if (!record) return;
    if (type === 'ADDED') record.added[kind] ??= at;
    if (type === 'DELETED') record.deleted[kind] ??= at;
  };
}

function onEventEvent(type: WatchEventType, object: KubernetesObject): void {
  const event = object as KubernetesObject & Record<string, unknown>;
  const regarding = event.regarding as { kind?: string } | undefined;
  if (type !== 'ADDED' || regarding?.kind !== 'AccessRequest') return;
  countEffective('Event ADDED');
  const instance = String(event.reportingInstance ?? event.reportingController ?? '?');
  eventInstances.set(instance, (eventInstances.get(instance) ?? 0) + 1);
}

// ---------------------------------------------------------------------------------------------
// Phase 1: the raw ceiling

interface RawResult {
  create: { seconds: number; triplesPerSec: number; writesPerSec: number; latency: Summary; errors: number };
  delete: { seconds: number; triplesPerSec: number; writesPerSec: number; latency: Summary; errors: number };
  connectionsOpened: number;
  apiserver: RequestCount[];
  windowSeconds: number;
}

async function rawCeiling(ownerPod: V1Pod): Promise<RawResult> {
  const owner: V1OwnerReference = {
    apiVersion: 'v1',
    kind: 'Pod',
    name: ownerPod.metadata?.name ?? '',
    uid: ownerPod.metadata?.uid ?? '',
  };
  const triples = Array.from({ length: N }, (_, i) => rawTriple(i, owner));
  const connectionsBefore = kc.connectionsOpened;
  const before = await scrapeApiserver(kc);
  cpuMark('raw start');
  const windowStart = Date.now();

  const createLatency: number[] = [];
  let createErrors = 0;
  const createStart = performance.now();
  await pool(
    triples,
    CONCURRENCY,
    async (t) => {
      const t0 = performance.now();
      try {
        await core.createNamespacedSecret({ namespace, body: t.secret });
        await rbac.createNamespacedRole({ namespace, body: t.role });
        await rbac.createNamespacedRoleBinding({ namespace, body: t.roleBinding });
        createLatency.push(performance.now() - t0);
      } catch {
        createErrors++;
      }
    },
    signal,
  );
  const createSeconds = (performance.now() - createStart) / 1000;

  const deleteLatency: number[] = [];
  let deleteErrors = 0;
  const deleteStart = performance.now();
  await pool(
    triples,
    CONCURRENCY,
    async (t) => {
      const t0 = performance.now();
      try {
        await rbac.deleteNamespacedRoleBinding({ namespace, name: t.names.roleBindingName });
        await rbac.deleteNamespacedRole({ namespace, name: t.names.roleName });
        await core.deleteNamespacedSecret({ namespace, name: t.names.secretName });
        deleteLatency.push(performance.now() - t0);
      } catch {
        deleteErrors++;
      }
    },
    signal,
  );
  const deleteSeconds = (performance.now() - deleteStart) / 1000;
  const after = await scrapeApiserver(kc);
  cpuMark('raw');
  const okCreates = createLatency.length;
  const okDeletes = deleteLatency.length;
  return {
    create: {
      seconds: createSeconds,
      triplesPerSec: okCreates / createSeconds,
      writesPerSec: (3 * okCreates) / createSeconds,
      latency: summarize(createLatency),
      errors: createErrors,
    },
    delete: {
      seconds: deleteSeconds,
      triplesPerSec: okDeletes / deleteSeconds,
      writesPerSec: (3 * okDeletes) / deleteSeconds,
      latency: summarize(deleteLatency),
      errors: deleteErrors,
    },
    connectionsOpened: kc.connectionsOpened - connectionsBefore,
    apiserver: delta(before, after),
    windowSeconds: (Date.now() - windowStart) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------
// Requests

async function createRequest(record: RequestRecord, pod: string, ttlSeconds: number): Promise<void> {
  const body = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'AccessRequest',
    metadata: { name: record.name, namespace },
    spec: {
      subject: { podName: pod },
      purpose: 'BENCH-1 hack/bench.ts',
      ttl: `${ttlSeconds}s`,
      ...readOrders,
    },
  };
  record.createSentAt = Date.now();
  try {
    await custom.createNamespacedCustomObject({ ...crd, namespace, body });
    record.createdAt = Date.now();
  } catch (error) {
    record.createFailed = statusOf(error) ? `HTTP ${statusOf(error)}` : String(error);
  }
}

function whyNotGranted(list: RequestRecord[]): Map<string, number> {
  const reasons = new Map<string, number>();
  for (const r of list) {
    if (r.grantedSeenAt !== undefined) continue;
    const why = r.createFailed ? `create failed ${r.createFailed}` : (r.terminal ?? 'undecided');
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  }
  return reasons;
}

const decided = (r: RequestRecord) =>
  r.grantedSeenAt !== undefined || r.terminal !== undefined || !!r.createFailed;
const ofSet = (set: RequestSet) => [...records.values()].filter((r) => r.set === set);

function latencies(list: RequestRecord[]) {
  const granted = list.filter((r) => r.grantedSeenAt !== undefined);
  return {
    client: summarize(granted.map((r) => (r.grantedSeenAt ?? NaN) - (r.createSentAt ?? NaN))),
    server: summarize(granted.map((r) => (r.issuedAt ?? NaN) - (r.creationTimestamp ?? NaN))),
  };
}

// ---------------------------------------------------------------------------------------------
// Writes per grant

type Category = 'request create' | 'request' | 'grant object' | 'event' | 'bench' | 'other';

/** Who writes what: the controller never creates or deletes AccessRequests, and only creates Events. */
function categorize(row: RequestCount): Category {
  const resource = row.resource.split('/')[0] ?? '';
  if (row.group === GROUP && row.resource === 'accessrequests' && ['POST', 'DELETE'].includes(row.verb))
    return 'request create';
  if (row.group === GROUP && resource === 'accessrequests') return 'request';
  if (row.group === '' && resource === 'secrets') return 'grant object';
  if (row.group === 'rbac.authorization.k8s.io' && (resource === 'roles' || resource === 'rolebindings'))
    return 'grant object';
  if (row.group === 'events.k8s.io' && resource === 'events' && row.verb !== 'DELETE') return 'event';
  if (['subjectaccessreviews', 'pods', 'accesspolicies', 'serviceaccounts'].includes(resource))
    return 'bench';
  return 'other';
}

interface WindowWrites {
  grants: number;
  seconds: number;
  rows: RequestCount[];
  /** AccessRequest creates the bench itself sent (and that succeeded) in the window */
  benchRequestCreates: number;
  /** Controller writes to AccessRequests and grant objects: all codes, 2xx */
  controllerWrites: number;
  controllerWritesOk: number;
  eventsOk: number;
  eventsFailed: number;
  controllerReads: number;
  /** Writes per granted request */
  perGrant: {
    controller: number;
    controllerOk: number;
    failed: number;
    eventsOk: number;
    eventsFailed: number;
    events: number;
    create: number;
    /** controller (all codes) + Events (all codes) + the AccessRequest create */
    total: number;
  };
  other: Map<string, number>;
  effective: Map<string, number>;
}

function windowWrites(
  rows: RequestCount[],
  grants: number,
  seconds: number,
  benchRequestCreates: number,
  effectiveCounts: Map<string, number> | undefined,
): WindowWrites {
  let controllerWrites = 0;
  let controllerWritesOk = 0;
  let eventsOk = 0;
  let eventsFailed = 0;
  let controllerReads = 0;
  let otherCreates = 0;
  const other = new Map<string, number>();
  for (const row of rows) {
    const category = categorize(row);
    const ok = row.code.startsWith('2');
    if (READ_VERBS.has(row.verb) && (category === 'request' || category === 'grant object'))
      controllerReads += row.count;
    if (!WRITE_VERBS.has(row.verb)) continue;
    if (category === 'request' || category === 'grant object') {
      controllerWrites += row.count;
      if (ok) controllerWritesOk += row.count;
    } else if (category === 'event') {
      if (ok) eventsOk += row.count;
      else eventsFailed += row.count;
    } else if (category === 'request create') {
      otherCreates += row.count - (row.verb === 'POST' && ok ? benchRequestCreates : 0);
    } else if (category === 'other') {
      const key = `${qualified(row)} ${row.verb}`;
      other.set(key, (other.get(key) ?? 0) + row.count);
    }
  }
  if (otherCreates > 0) other.set('hourglass.dev/accessrequests POST/DELETE by others', otherCreates);
  const per = (count: number) => (grants ? count / grants : NaN);
  return {
    grants,
    seconds,
    rows,
    benchRequestCreates,
    controllerWrites,
    controllerWritesOk,
    eventsOk,
    eventsFailed,
    controllerReads,
    perGrant: {
      controller: per(controllerWrites),
      controllerOk: per(controllerWritesOk),
      failed: per(controllerWrites - controllerWritesOk),
      eventsOk: per(eventsOk),
      eventsFailed: per(eventsFailed),
      events: per(eventsOk + eventsFailed),
      create: per(benchRequestCreates),
      total: per(controllerWrites + eventsOk + eventsFailed + benchRequestCreates),
    },
    other,
    effective: effectiveCounts ?? new Map(),
  };
}

// ---------------------------------------------------------------------------------------------
// can-i

async function canI(name: string): Promise<boolean> {
  const review = await authorization.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:etl`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: {
          namespace,
          verb: 'get',
          resource: 'secrets',
          name: grantObjectNames(name).secretName,
        },
      },
    },
  });
  return review.status?.allowed === true;
}

let reviewsSent = 0;
/** From expiry, polls can-i every 50 ms until false; the lag is when the first false answer was asked. */
async function canIFalseLag(record: RequestRecord): Promise<number> {
  const expiresAt = record.expiresAt ?? NaN;
  await sleep(Math.max(0, expiresAt - Date.now()), signal);
  const deadline = expiresAt + 30_000;
  for (;;) {
    const sentAt = Date.now();
    reviewsSent++;
    const allowed = await canI(record.name).catch(() => undefined);
    if (allowed === false) return sentAt - expiresAt;
    if (Date.now() > deadline) return Infinity;
    // Every 50 ms for a second, then less often: a long lag needs no 50 ms resolution, and a
    // flood of reviews would slow the very API server the controller writes to.
    const since = sentAt - expiresAt;
    const interval = since < 1000 ? 50 : since < 5000 ? 200 : 500;
    await sleep(Math.max(0, sentAt + interval - Date.now()), signal);
  }
}

// ---------------------------------------------------------------------------------------------
// The run

// prom-client's default metrics, under the controller's 'hourglass_' prefix.
const RESIDENT_METRICS = ['hourglass_process_resident_memory_bytes'];
const HEAP_METRICS = ['hourglass_nodejs_heap_size_used_bytes'];

interface Result {
  raw?: RawResult;
  ttlSeconds?: number;
  ttlNote?: string;
  saturation?: {
    created: number;
    createSeconds: number;
    granted: number;
    notGranted: Map<string, number>;
    grantsPerSec: number;
    spanSeconds: number;
    latency: ReturnType<typeof latencies>;
    controllerP50: number;
    controllerP99: number;
    overlap: boolean;
  };
  issue?: WindowWrites;
  revoke?: WindowWrites;
  revocation?: {
    revoked: number;
    rbLag: Summary;
    allGoneLag: Summary;
    statusLag: Summary;
    canILag: Summary;
    canITimeouts: number;
    canITrueBefore: number;
    samples: number;
    revocationsPerSec: number;
    controllerP50: number;
    controllerP99: number;
  };
  rate?: {
    offered: number;
    notGranted: Map<string, number>;
    achievedRate: number;
    granted: number;
    latency: ReturnType<typeof latencies>;
    writes: WindowWrites;
  };
  memory: {
    idleRss: number;
    rssAtN: number;
    metricRssAtN: number;
    activeAtN: number;
    hwm: number;
    sampledPeak: number;
    metricRssEnd: number;
    metricName: string;
    heapUsedAtN: number;
  };
  otherControllers: number[];
  otherNamespaces: string[];
  cleanupSeconds?: number;
  cleanupNote?: string;
  error?: string;
}

const result: Result = {
  memory: {
    idleRss: NaN,
    rssAtN: NaN,
    metricRssAtN: NaN,
    activeAtN: NaN,
    hwm: NaN,
    sampledPeak: NaN,
    metricRssEnd: NaN,
    metricName: '',
    heapUsedAtN: NaN,
  },
  otherControllers: [],
  otherNamespaces: [],
};
let clusterInfo = '';
let sourceInfo = '';
const watches: CollectionWatch<KubernetesObject>[] = [];

async function preconditions(): Promise<void> {
  const server = new URL(kc.getCurrentCluster()?.server ?? 'https://invalid');
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(server.hostname))
    throw new Error(`refusing to run against ${server.origin}: only a local cluster on 127.0.0.1`);
  if (!process.env.KUBECONFIG) {
    const status = await run('bash', [path.join(repoRoot, 'hack', 'cluster.sh'), 'status']);
    if (status.code !== 0)
      throw new Error(
        `the local cluster is not up (hack/cluster.sh status):\n${status.stdout}${status.stderr}`,
      );
  }
  const version = JSON.parse(await getRaw(kc, '/version')) as { gitVersion?: string };
  const head = (await run('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
  const dirty = (await run('git', ['status', '--porcelain', '--', 'src'])).stdout
    .trim()
    .split('\n')
    .filter(Boolean);
  sourceInfo = `${head || 'unknown'}${dirty.length ? ` + ${dirty.length} uncommitted change(s) in src/` : ''}`;
  clusterInfo = `${server.origin} (kube-apiserver ${version.gitVersion}), node ${process.version}, ${os.cpus().length} CPUs`;
  try {
    await getRaw(kc, `/apis/${GROUP}/${VERSION}`);
  } catch {
    log('Installing the CRDs (kubectl apply --server-side -f crds/)');
    const applied = await run(kubectlPath, [
      '--kubeconfig',
      kubeconfigPath,
      'apply',
      '--server-side',
      '-f',
      'crds/',
    ]);
    if (applied.code !== 0) throw new Error(`kubectl apply -f crds/ failed: ${applied.stderr}`);
    await run(kubectlPath, [
      '--kubeconfig',
      kubeconfigPath,
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      '-f',
      'crds/',
    ]);
  }
}

async function setUp(): Promise<V1Pod> {
  result.otherNamespaces = await otherNamespaces();
  result.otherControllers = otherControllers();
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'hourglass-bench': 'true' } } },
  });
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'etl' } } });
  await retrying('read ServiceAccount etl', () =>
    core.readNamespacedServiceAccount({ namespace, name: 'etl' }),
  );
  return retrying('create the raw owner pod', () =>
    core.createNamespacedPod({ namespace, body: podBody('raw-owner', 'raw') }),
  );
}

async function startController(): Promise<void> {
  await createBenchPolicy(kc, namespace, 'bench', {
    allow: readOrdersSecret,
    maxTTL: '1h',
    defaultTTL: '15m',
    maxActivePerSubject: 100000,
  });
  controller = await BenchController.start(
    repoRoot,
    ['--concurrency', String(CONCURRENCY), '--log-level', 'info'],
    { KUBECONFIG: kubeconfigPath },
    args['node-flags'].split(' ').filter(Boolean),
  );
  controller.onAudit = (event, ns) => {
    if (ns === namespace) countEffective(`audit ${event}`);
  };
  controller.onReconcileError = (kind, key) => {
    if (key.startsWith(`${namespace}/`)) countEffective(`error ${kind}`);
  };
  log(`Started controller pid ${controller.pid}, metrics ${controller.metricsUrl ?? '(not found)'}`);
  await sleep(1000, signal);
  result.memory.idleRss = controller.sampleRss()?.rss ?? NaN;
}

async function startWatches(): Promise<void> {
  const ns = `namespaces/${namespace}`;
  type Handler = (type: WatchEventType, object: KubernetesObject, at: number) => void;
  const specs: [string, Handler][] = [
    [`/apis/${GROUP}/${VERSION}/${ns}/accessrequests`, onRequestEvent as Handler],
    [`/api/v1/${ns}/secrets`, onGrantObjectEvent('Secret')],
    [`/apis/rbac.authorization.k8s.io/v1/${ns}/roles`, onGrantObjectEvent('Role')],
    [`/apis/rbac.authorization.k8s.io/v1/${ns}/rolebindings`, onGrantObjectEvent('RoleBinding')],
    [`/apis/events.k8s.io/v1/${ns}/events`, onEventEvent],
  ];
  for (const [watchPath, onEvent] of specs) {
    const watch = new CollectionWatch<KubernetesObject>(kc, watchPath, onEvent);
    await watch.start();
    watches.push(watch);
  }
}

async function settle(beforeMs: number): Promise<void> {
  const ms = Math.min(2000, beforeMs - Date.now() - 500);
  if (ms > 0) await sleep(ms, signal);
}

async function saturation(): Promise<Snapshot> {
  const pods = Array.from({ length: N }, (_, i) => `sp-${String(i).padStart(5, '0')}`);
  log(`Creating ${N} pods (not timed)`);
  await createPods(pods, 'saturation');
  const list = pods.map((pod, i) => {
    const record: RequestRecord = {
      name: `s-${String(i).padStart(5, '0')}`,
      set: 'saturation',
      deleted: {},
      added: {},
    };
    records.set(record.name, record);
    return { record, pod };
  });
  await startWatches();

  const ttl = result.ttlSeconds ?? TTL_REQUESTED;
  log(`Creating ${N} AccessRequests at concurrency ${CONCURRENCY} (ttl ${ttl}s)`);
  const before = await scrapeApiserver(kc);
  window = 'issue';
  cpuMark('issue start');
  const start = Date.now();
  await pool(list, CONCURRENCY, ({ record, pod }) => createRequest(record, pod, ttl), signal);
  const createSeconds = (Date.now() - start) / 1000;
  const created = list.filter(({ record }) => record.createdAt !== undefined).length;
  const firstExpiry = () => Math.min(...list.map(({ record }) => record.expiresAt ?? Infinity));
  const ok = await waitUntil(
    () => list.every(({ record }) => decided(record)) || Date.now() > firstExpiry() - 1500,
    60_000 + N * 250,
  );
  if (!ok) log('WARNING: not every request was decided in time');
  const recordsOfSet = list.map(({ record }) => record);
  const granted = recordsOfSet.filter((r) => r.grantedSeenAt !== undefined);
  const lastGranted = Math.max(...granted.map((r) => r.grantedSeenAt ?? 0));
  const overlap = !recordsOfSet.every(decided) || lastGranted > firstExpiry();
  cpuMark('issue');
  await settle(firstExpiry());
  const after = await scrapeApiserver(kc);
  window = 'revoke';
  const notGranted = whyNotGranted(recordsOfSet);
  const spanSeconds = (lastGranted - start) / 1000;
  const metrics = await controller?.scrapeMetrics();
  result.memory.rssAtN = controller?.sampleRss()?.rss ?? NaN;
  const resident = firstMetric(metrics, RESIDENT_METRICS);
  result.memory.metricRssAtN = resident.value;
  result.memory.metricName = resident.name;
  result.memory.heapUsedAtN = firstMetric(metrics, HEAP_METRICS).value;
  result.memory.activeAtN = metricValue(metrics, 'hourglass_grants_active');
  result.saturation = {
    created,
    createSeconds,
    granted: granted.length,
    notGranted,
    grantsPerSec: granted.length / spanSeconds,
    spanSeconds,
    latency: latencies(recordsOfSet),
    controllerP50: histogramQuantile(metrics, 'hourglass_grant_latency_seconds', 0.5) * 1000,
    controllerP99: histogramQuantile(metrics, 'hourglass_grant_latency_seconds', 0.99) * 1000,
    overlap,
  };
  result.issue = windowWrites(
    delta(before, after),
    granted.length,
    (Date.now() - start) / 1000,
    created,
    effective.get('issue'),
  );
  log(`Granted ${granted.length}/${N} in ${fmt(spanSeconds)} s (${fmt(result.saturation.grantsPerSec)}/s)`);
  return after;
}

async function revocation(before: Snapshot): Promise<void> {
  const start = Date.now();
  const granted = ofSet('saturation').filter((r) => r.grantedSeenAt !== undefined);
  if (!granted.length) return;
  const step = granted.length / SAMPLES;
  const samples = Array.from({ length: SAMPLES }, (_, k) => granted[Math.floor(k * step)]).filter(
    (r): r is RequestRecord => r !== undefined,
  );
  let trueBefore = 0;
  await pool(
    samples.filter((r) => (r.expiresAt ?? 0) > Date.now() + 1000),
    CONCURRENCY,
    async (r) => {
      reviewsSent++;
      if (await canI(r.name)) trueBefore++;
    },
    signal,
  );
  const lastExpiry = Math.max(...granted.map((r) => r.expiresAt ?? 0));
  log(`Waiting for ${granted.length} grants to expire (the last at ${new Date(lastExpiry).toISOString()})`);
  const firstExpiry = Math.min(...granted.map((r) => r.expiresAt ?? Infinity));
  const revokeStart = setTimeout(() => cpuMark('revoke start'), Math.max(0, firstExpiry - Date.now()));
  const canILags = Promise.all(samples.map((r) => canIFalseLag(r)));
  canILags.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  const gone = (r: RequestRecord) =>
    r.expiredSeenAt !== undefined &&
    r.deleted.RoleBinding !== undefined &&
    r.deleted.Role !== undefined &&
    r.deleted.Secret !== undefined;
  const ok = await waitUntil(
    () => granted.every((r) => gone(r) || r.terminal !== undefined),
    Math.max(0, lastExpiry - Date.now()) + 60_000 + N * 100,
  );
  if (!ok) log('WARNING: not every grant was revoked in time');
  const canILag = await canILags;
  clearTimeout(revokeStart);
  cpuMark('revoke');
  await settle(Infinity);
  const after = await scrapeApiserver(kc);
  window = 'idle';
  const revoked = granted.filter(gone);
  const lag = (at: (r: RequestRecord) => number | undefined) =>
    summarize(revoked.map((r) => (at(r) ?? NaN) - (r.expiresAt ?? NaN)));
  const firstRevokedExpiry = Math.min(...revoked.map((r) => r.expiresAt ?? Infinity));
  const lastExpired = Math.max(...revoked.map((r) => r.expiredSeenAt ?? 0));
  const metrics = await controller?.scrapeMetrics();
  result.revocation = {
    revoked: revoked.length,
    rbLag: lag((r) => r.deleted.RoleBinding),
    allGoneLag: lag((r) =>
      Math.max(r.deleted.RoleBinding ?? NaN, r.deleted.Role ?? NaN, r.deleted.Secret ?? NaN),
    ),
    statusLag: lag((r) => r.expiredSeenAt),
    canILag: summarize(canILag.filter(Number.isFinite)),
    canITimeouts: canILag.filter((l) => !Number.isFinite(l)).length,
    canITrueBefore: trueBefore,
    samples: samples.length,
    revocationsPerSec: revoked.length / ((lastExpired - firstRevokedExpiry) / 1000),
    controllerP50: histogramQuantile(metrics, 'hourglass_revocation_lag_seconds', 0.5) * 1000,
    controllerP99: histogramQuantile(metrics, 'hourglass_revocation_lag_seconds', 0.99) * 1000,
  };
  result.revoke = windowWrites(
    delta(before, after),
    revoked.length,
    (Date.now() - start) / 1000,
    0,
    effective.get('revoke'),
  );
  log(`Revoked ${revoked.length}; RoleBinding gone p99 ${fmtMs(result.revocation.rbLag.p99)} after expiry`);
}

async function fixedRate(): Promise<void> {
  const count = Math.max(1, Math.round(RATE * RATE_SECONDS));
  const pods = Array.from({ length: count }, (_, i) => `rp-${String(i).padStart(5, '0')}`);
  log(`Creating ${count} pods for the fixed-rate phase (not timed)`);
  await createPods(pods, 'rate');
  const list = pods.map((pod, i) => {
    const record: RequestRecord = {
      name: `r-${String(i).padStart(5, '0')}`,
      set: 'rate',
      deleted: {},
      added: {},
    };
    records.set(record.name, record);
    return { record, pod };
  });
  log(`Offering ${RATE} requests/s for ${RATE_SECONDS} s`);
  const before = await scrapeApiserver(kc);
  window = 'rate';
  cpuMark('rate start');
  const start = Date.now();
  const creates: Promise<void>[] = [];
  for (const [i, { record, pod }] of list.entries()) {
    await sleep(Math.max(0, start + (i * 1000) / RATE - Date.now()), signal);
    creates.push(createRequest(record, pod, RATE_TTL_SECONDS));
  }
  await Promise.all(creates);
  const lastSent = Math.max(...list.map(({ record }) => record.createSentAt ?? 0));
  const ok = await waitUntil(() => list.every(({ record }) => decided(record)), 60_000);
  if (!ok) log('WARNING: not every fixed-rate request was decided in time');
  cpuMark('rate');
  await settle(Infinity);
  const after = await scrapeApiserver(kc);
  window = 'idle';
  const recordsOfSet = list.map(({ record }) => record);
  const granted = recordsOfSet.filter((r) => r.grantedSeenAt !== undefined).length;
  result.rate = {
    offered: count,
    notGranted: whyNotGranted(recordsOfSet),
    achievedRate: (count - 1) / ((lastSent - start) / 1000),
    granted,
    latency: latencies(recordsOfSet),
    writes: windowWrites(
      delta(before, after),
      granted,
      (Date.now() - start) / 1000,
      recordsOfSet.filter((r) => r.createdAt !== undefined).length,
      effective.get('rate'),
    ),
  };
  log(`Fixed rate: granted ${granted}/${count}, p99 ${fmtMs(result.rate.latency.client.p99)}`);
}

/** Removes the finalizer of every AccessRequest left in the bench namespace. */
async function stripFinalizers(): Promise<number> {
  const left = (await custom.listNamespacedCustomObject({ ...crd, namespace })) as { items: AccessRequest[] };
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const holding = left.items.filter((r) => r.metadata.finalizers?.length);
  await pool(holding, CONCURRENCY, async (r) => {
    await custom
      .patchNamespacedCustomObject(
        { ...crd, namespace, name: r.metadata.name, body: { metadata: { finalizers: null } } },
        mergePatch,
      )
      .catch(() => {});
  });
  return holding.length;
}

/**
 * Stops the controller first (so that it disturbs concurrent tests no longer than needed), then
 * removes the requests' finalizers itself and deletes the namespace: what the requests were
 * granted is owned by the bench's pods and goes with them.
 */
async function cleanUp(): Promise<void> {
  window = 'cleanup';
  const start = Date.now();
  await Promise.all(watches.map((w) => w.stop()));
  await controller?.stop();
  let unreachable = 0;
  const exists = async () => {
    try {
      await core.readNamespace({ name: namespace });
      unreachable = 0;
      return true;
    } catch (error) {
      if (statusOf(error) === undefined && ++unreachable >= 5)
        throw new Error(`API server unreachable: ${String(error)}`);
      return statusOf(error) !== 404;
    }
  };
  if (!(await exists())) return;
  log(`Deleting namespace ${namespace}`);
  await stripFinalizers().catch((error: unknown) => log(`Failed to remove finalizers: ${String(error)}`));
  try {
    await core.deleteNamespace({ name: namespace });
  } catch (error) {
    if (statusOf(error) !== 404) log(`Failed to delete namespace ${namespace}: ${String(error)}`);
  }
  const deadline = Date.now() + 180_000;
  for (let round = 1; (await exists()) && Date.now() < deadline; round++) {
    // A controller of a concurrent test may have put a finalizer back meanwhile.
    if (round % 15 === 0) await stripFinalizers().catch(() => 0);
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (await exists()) result.cleanupNote = `namespace ${namespace} still terminating after 180 s`;
  result.cleanupSeconds = (Date.now() - start) / 1000;
}

async function main(): Promise<void> {
  await preconditions();
  log(`Namespace ${namespace}; N=${N}, concurrency ${CONCURRENCY}`);
  try {
    const ownerPod = await setUp();
    log(`Phase 1: raw ceiling, ${N} Secret+Role+RoleBinding triples at concurrency ${CONCURRENCY}`);
    result.raw = await rawCeiling(ownerPod);
    log(
      `Raw ceiling: W = ${fmt(result.raw.create.writesPerSec)} writes/s creating, ` +
        `${fmt(result.raw.delete.writesPerSec)} deleting`,
    );
    // Every request must be granted before the first one expires, or the issue and revoke
    // phases mix. Assume the controller reaches half the physical limit at ~7 writes a grant.
    const estimate = Math.ceil(((N * 7) / result.raw.create.writesPerSec) * 2 + 15);
    if (args.ttl === undefined && estimate > TTL_REQUESTED) {
      result.ttlSeconds = Math.min(estimate, 3600);
      result.ttlNote = `raised from ${TTL_REQUESTED}s so that ${N} grants can be issued before the first expiry`;
    } else {
      result.ttlSeconds = TTL_REQUESTED;
    }
    await startController();
    const afterIssue = await saturation();
    await revocation(afterIssue);
    await fixedRate();
  } catch (error) {
    result.error = signal.aborted
      ? String(signal.reason)
      : error instanceof Error
        ? error.message
        : String(error);
    log(`Stopped early: ${result.error}`);
  } finally {
    if (controller) {
      const status = controller.sampleRss();
      result.memory.hwm = status?.hwm ?? NaN;
      result.memory.sampledPeak = controller.sampledPeakRss;
      result.memory.metricRssEnd = firstMetric(await controller.scrapeMetrics(), RESIDENT_METRICS).value;
      // Read again at the end: another controller may have started meanwhile.
      result.otherControllers = [...new Set([...result.otherControllers, ...otherControllers()])];
    }
    await cleanUp().catch((error: unknown) => log(`Cleanup failed: ${String(error)}`));
    await controller?.stop(); // cleanUp stops it first; again in case cleanUp failed before
    await kc.close();
  }
  report();
  if (result.error) process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------
// The report

function latencyRow(label: string, s: Summary): string[] {
  return [label, String(s.n), fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max), fmtMs(s.mean)];
}

function writesTable(issue: WindowWrites | undefined, revoke: WindowWrites | undefined): string {
  const keys = new Map<string, { row: RequestCount; issue: number; revoke: number }>();
  const add = (w: WindowWrites | undefined, which: 'issue' | 'revoke') => {
    for (const row of w?.rows ?? []) {
      const category = categorize(row);
      if (!WRITE_VERBS.has(row.verb) || category === 'other') continue;
      const key = `${qualified(row)}|${row.verb}|${row.code}`;
      const entry = keys.get(key) ?? { row, issue: 0, revoke: 0 };
      entry[which] += row.count;
      keys.set(key, entry);
    }
  };
  add(issue, 'issue');
  add(revoke, 'revoke');
  const per = (count: number, w: WindowWrites | undefined) => (w?.grants ? fmt(count / w.grants, 2) : '-');
  const note = (row: RequestCount) => {
    const category = categorize(row);
    if (category === 'bench') return 'bench';
    if (category === 'request create') return row.verb === 'POST' ? 'creates (bench + others)' : 'others';
    if (!row.code.startsWith('2')) return 'failed';
    return '';
  };
  const rows = [...keys.values()]
    .sort((a, b) => qualified(a.row).localeCompare(qualified(b.row)) || a.row.verb.localeCompare(b.row.verb))
    .map(({ row, issue: i, revoke: r }) => [
      qualified(row),
      row.verb,
      row.code,
      String(i),
      per(i, issue),
      String(r),
      per(r, revoke),
      note(row),
    ]);
  return table(['resource', 'verb', 'code', 'issue', '/grant', 'revoke', '/grant', 'note'], rows);
}

/** Watch events of the bench namespace caused by controller writes: the AR and grant-object changes. */
function effectiveControllerWrites(w: WindowWrites): number {
  let count = 0;
  for (const [key, value] of w.effective) {
    if (/^(audit|error|Event) /.test(key) || key === 'AccessRequest ADDED') continue;
    count += value;
  }
  return w.grants ? count / w.grants : NaN;
}

/**
 * Controller writes per grant for the targets: those that changed an object of the bench namespace
 * (watch, immune to other clients) plus the failed ones (apiserver, cluster-wide); Events apart.
 */
function writesPerGrant(w: WindowWrites): number {
  return effectiveControllerWrites(w) + w.perGrant.failed;
}

function writesVerdictText(w: WindowWrites | undefined): string {
  if (!w) return '-';
  return (
    `${fmt(writesPerGrant(w), 2)} = ${fmt(effectiveControllerWrites(w), 2)} + ${fmt(w.perGrant.failed, 2)} failed` +
    ` (+${fmt(w.perGrant.events, 2)} Events)`
  );
}

/** What the bench's controller logged about the bench's requests in a window. */
function controllerLogLine(w: WindowWrites | undefined): string {
  if (!w) return '-';
  const entries = [...w.effective].filter(([key]) => /^(audit|error) /.test(key)).sort();
  const audits = entries.filter(([key]) => key.startsWith('audit '));
  const errors = entries.filter(([key]) => key.startsWith('error '));
  return (
    `${audits.map(([k, v]) => `${k.slice(6)} ×${v}`).join(', ') || 'no audit records'}; ` +
    `failed reconciles: ${errors.map(([k, v]) => `${k.slice(6)} ×${v}`).join(', ') || 'none'}` +
    ` (${w.grants} grants)`
  );
}

function effectiveLine(w: WindowWrites | undefined): string {
  if (!w?.grants) return '-';
  const parts = [...w.effective.entries()]
    .filter(([key]) => !/^(audit|error) /.test(key))
    .sort()
    .map(([key, count]) => `${key} ${fmt(count / w.grants, 2)}`);
  return parts.join(', ') || '-';
}

/** No other hourglass controller ran during this window of the run. */
const isClean = (w: Window) => !othersByWindow.get(w)?.size;

function report(): void {
  const out: string[] = [];
  const p = (line = '') => out.push(line);
  const { raw, saturation: sat, issue, revoke, revocation: rev, rate, memory } = result;
  p();
  p(
    `hourglass benchmark — N=${N}, concurrency ${CONCURRENCY}, ttl ${result.ttlSeconds ?? '-'}s, ` +
      `fixed rate ${RATE}/s for ${RATE_SECONDS} s`,
  );
  p(`cluster ${clusterInfo}; namespace ${namespace}; controller ${controller?.instance ?? '-'}`);
  p(`controller source: commit ${sourceInfo}`);
  if (result.ttlNote) p(`ttl ${result.ttlNote} (pass --ttl to keep a given value)`);
  const others = [...eventInstances.keys()].filter((i) => i !== controller?.instance);
  p(
    `shared cluster: other namespaces at start: ${result.otherNamespaces.join(' ') || 'none'}; ` +
      `other hourglass controller processes: ${result.otherControllers.join(' ') || 'none'}`,
  );
  const concurrent = [...othersByWindow].map(([w, pids]) => `${w}: ${[...pids].join(' ')}`);
  if (concurrent.length)
    p(
      `WARNING: other hourglass controllers ran during the run (${concurrent.join('; ')}); they watch every ` +
        "namespace and reconcile the bench's requests too.",
    );
  if (others.length)
    p(
      `WARNING: Events of the bench's requests came from other controller instances too: ${others.join(', ')}`,
    );
  const dirty = (['issue', 'revoke', 'rate'] as const).filter((w) => !isClean(w));
  if (dirty.length)
    p(
      `CONTAMINATED phases (another controller raced the bench's on its requests; failed writes, Events, ` +
        `latencies and the ratio are not the bench's controller alone): ${dirty.join(', ')}`,
    );
  if (result.error) p(`STOPPED EARLY: ${result.error}`);

  if (raw) {
    p();
    p(
      `== 1. Raw ceiling: plain client (PooledKubeConfig), ${N} Secret+Role+RoleBinding triples, concurrency ${CONCURRENCY} ==`,
    );
    p(
      table(
        ['operation', 'seconds', 'triples/s', 'writes/s', 'triple p50', 'triple p99', 'errors'],
        (['create', 'delete'] as const).map((op) => [
          op,
          fmt(raw[op].seconds),
          fmt(raw[op].triplesPerSec),
          fmt(raw[op].writesPerSec),
          fmtMs(raw[op].latency.p50),
          fmtMs(raw[op].latency.p99),
          String(raw[op].errors),
        ]),
      ),
    );
    const own = raw.apiserver
      .filter((r) => WRITE_VERBS.has(r.verb) && categorize(r) === 'grant object')
      .reduce((s, r) => s + r.count, 0);
    const all = raw.apiserver.filter((r) => WRITE_VERBS.has(r.verb)).reduce((s, r) => s + r.count, 0);
    p(
      `W = ${fmt(raw.create.writesPerSec)} writes/s (create). New connections opened by the pool: ${raw.connectionsOpened}.`,
    );
    p(
      `apiserver counted ${own} Secret/Role/RoleBinding writes (the client sent ${6 * N}) and ` +
        `${all - own} other writes in the ${fmt(raw.windowSeconds)} s window (other clients, leases).`,
    );
  }

  if (sat) {
    p();
    p(`== 2. Saturation: ${N} AccessRequests created at concurrency ${CONCURRENCY} ==`);
    p(
      `created ${sat.created}/${N} in ${fmt(sat.createSeconds)} s; granted ${sat.granted}` +
        (sat.notGranted.size
          ? `; not granted: ${[...sat.notGranted].map(([k, v]) => `${k} ×${v}`).join(', ')}`
          : ''),
    );
    p(
      `grants/s = ${fmt(sat.grantsPerSec)} (granted / (last Granted seen − first create sent) = ${fmt(sat.spanSeconds)} s)`,
    );
    p(
      table(
        ['grant latency', 'n', 'p50', 'p99', 'max', 'mean'],
        [
          latencyRow('client: create sent -> Granted seen (watch)', sat.latency.client),
          latencyRow('server: grant.issuedAt - creationTimestamp *', sat.latency.server),
          [
            'controller histogram (bucket bound)',
            '',
            fmtMs(sat.controllerP50),
            fmtMs(sat.controllerP99),
            '',
            '',
          ],
        ],
      ),
    );
    p('* metadata.creationTimestamp has 1 s resolution (truncated): the server figure over-states by 0-1 s.');
    if (sat.overlap)
      p('WARNING: some grants expired before all were issued: the issue/revoke split below is mixed.');
  }

  if (issue) {
    p();
    p('== API writes per granted request (apiserver_request_total, by resource, verb and code) ==');
    p(
      `issue window: ${issue.grants} grants in ${fmt(issue.seconds)} s; revoke window: ${revoke?.grants ?? 0} revocations in ${fmt(revoke?.seconds ?? NaN)} s`,
    );
    p(writesTable(issue, revoke));
    const both = [issue, revoke];
    const row = (label: string, f: (w: WindowWrites) => number, target = '') => [
      label,
      ...both.map((w) => (w ? fmt(f(w), 2) : '-')),
      target,
    ];
    p();
    p(
      table(
        ['per granted request', 'issue', 'revoke', 'target'],
        [
          row('controller writes, succeeded (2xx)', (w) => w.perGrant.controllerOk, '<= 4'),
          row('controller writes, failed (409 etc.)', (w) => w.perGrant.failed),
          row('Event creates, accepted', (w) => w.perGrant.eventsOk),
          row('Event creates, refused (4xx)', (w) => w.perGrant.eventsFailed),
          row('the AccessRequest create (bench)', (w) => w.perGrant.create),
          row('total writes (all of the above)', (w) => w.perGrant.total),
          row('controller reads (GET/LIST, no cache)', (w) => w.controllerReads / (w.grants || NaN)),
          row('bench namespace only: controller writes that changed an object (watch)', (w) =>
            effectiveControllerWrites(w),
          ),
        ],
      ),
    );
    p(
      `effective writes seen by watches of the bench namespace, per grant (a write that changed nothing shows no event):`,
    );
    p(`  issue:  ${effectiveLine(issue)}`);
    p(`  revoke: ${effectiveLine(revoke)}`);
    p("the bench's controller, from its log (audit records and failed reconciles of the bench's requests):");
    p(`  issue:  ${controllerLogLine(issue)}`);
    p(`  revoke: ${controllerLogLine(revoke)}`);
    const other = new Map<string, number>();
    for (const w of both) for (const [k, v] of w?.other ?? []) other.set(k, (other.get(k) ?? 0) + v);
    const seconds = (issue.seconds ?? 0) + (revoke?.seconds ?? 0);
    p(
      `not attributed (other clients and background, ${fmt(seconds)} s): ` +
        ([...other]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 8)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'),
    );
    p('Cluster-wide counter: writes to the same resources by concurrent tests count here too.');
  }

  let limit = NaN;
  let limitNoEvents = NaN;
  if (raw && sat && issue) {
    limit = raw.create.writesPerSec / issue.perGrant.total;
    limitNoEvents = raw.create.writesPerSec / (issue.perGrant.total - issue.perGrant.events);
    p();
    p('== Physical limit and ratio ==');
    p(
      table(
        ['', 'value'],
        [
          ['W (raw create writes/s)', fmt(raw.create.writesPerSec)],
          ['writes per granted request (incl. create and Events)', fmt(issue.perGrant.total, 2)],
          ['physical limit = W / writes per request (grants/s)', fmt(limit)],
          ['grants/s measured', fmt(sat.grantsPerSec)],
          ['ratio (target >= 0.8)', fmt(sat.grantsPerSec / limit, 2)],
          [
            'limit and ratio not counting Events',
            `${fmt(limitNoEvents)} / ${fmt(sat.grantsPerSec / limitNoEvents, 2)}`,
          ],
        ],
      ),
    );
  }

  if (rev) {
    p();
    p(`== 3. Revocation at expiry (${rev.revoked} grants) ==`);
    p(
      table(
        ['lag after status.grant.expiresAt', 'n', 'p50', 'p99', 'max', 'mean'],
        [
          latencyRow('RoleBinding DELETED (watch)', rev.rbLag),
          latencyRow('all three objects DELETED (watch)', rev.allGoneLag),
          latencyRow('status phase Expired (watch)', rev.statusLag),
          latencyRow('can-i false (SubjectAccessReview, 50 ms polls *)', rev.canILag),
          [
            'controller histogram (bucket bound)',
            '',
            fmtMs(rev.controllerP50),
            fmtMs(rev.controllerP99),
            '',
            '',
          ],
        ],
      ),
    );
    p('* every 50 ms for the first second after expiry, then every 200 ms, after 5 s every 500 ms.');
    p(
      `can-i was true shortly before expiry for ${rev.canITrueBefore}/${rev.samples} samples; ` +
        `${rev.canITimeouts} still true 30 s after expiry (${reviewsSent} SubjectAccessReviews sent). ` +
        `Revocations/s: ${fmt(rev.revocationsPerSec)}.`,
    );
  }

  if (rate) {
    p();
    p(
      `== 4. Fixed rate: ${rate.offered} requests offered at ${RATE}/s (achieved ${fmt(rate.achievedRate, 2)}/s) ==`,
    );
    p(
      `granted ${rate.granted}/${rate.offered}` +
        (rate.notGranted.size
          ? `; not granted: ${[...rate.notGranted].map(([k, v]) => `${k} ×${v}`).join(', ')}`
          : ''),
    );
    p(
      table(
        ['grant latency', 'n', 'p50', 'p99', 'max', 'mean'],
        [
          latencyRow('client: create sent -> Granted seen (watch)', rate.latency.client),
          latencyRow('server: grant.issuedAt - creationTimestamp *', rate.latency.server),
        ],
      ),
    );
    const w = rate.writes;
    p(`the bench's controller: ${controllerLogLine(w)}`);
    p(
      `writes per grant at this rate: controller ${fmt(w.perGrant.controllerOk, 2)} ok + ${fmt(w.perGrant.failed, 2)} failed, ` +
        `Events ${fmt(w.perGrant.events, 2)}, total ${fmt(w.perGrant.total, 2)}`,
    );
  }

  const phases = ['raw', 'issue', 'revoke', 'rate'].filter((phase) => phaseCpu(phase));
  if (phases.length) {
    p();
    p(`== CPU, share of one core over each phase (${os.cpus().length} cores: 100% = one core busy) ==`);
    const names = Object.keys(phaseCpu(phases[0] ?? '') ?? {});
    p(
      table(
        ['phase', ...names, 'total'],
        phases.map((phase) => {
          const shares = phaseCpu(phase) ?? {};
          const total = Object.values(shares).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
          return [
            phase,
            ...names.map((n) => `${fmt((shares[n] ?? NaN) * 100, 0)}%`),
            `${fmt(total * 100, 0)}%`,
          ];
        }),
      ),
    );
    p(
      'raw: create+delete; issue: first create to last Granted; revoke: first expiry to every grant gone; rate: the offered requests.',
    );
  }

  p();
  p('== Controller process ==');
  const perGrant = (memory.rssAtN - memory.idleRss) / (memory.activeAtN || N);
  // From fewer grants the difference is mostly noise (garbage not yet collected).
  const extrapolated = N >= 1000 ? memory.idleRss + 10_000 * perGrant : NaN;
  p(
    table(
      ['memory', 'value'],
      [
        ['peak RSS (VmHWM at the end)', fmtBytes(memory.hwm)],
        [
          `peak VmRSS sampled every 500 ms (${controller?.rssSamples ?? 0} samples)`,
          fmtBytes(memory.sampledPeak),
        ],
        ['RSS idle, after start', fmtBytes(memory.idleRss)],
        [
          `RSS with ${fmt(memory.activeAtN, 0)} active grants (VmRSS / metric)`,
          `${fmtBytes(memory.rssAtN)} / ${fmtBytes(memory.metricRssAtN)}`,
        ],
        [`${memory.metricName || 'resident memory metric'} at the end`, fmtBytes(memory.metricRssEnd)],
        [
          `V8 heap used with ${fmt(memory.activeAtN, 0)} active grants (metric)`,
          fmtBytes(memory.heapUsedAtN),
        ],
        ['10k active grants, linear extrapolation (not measured)', fmtBytes(extrapolated)],
      ],
    ),
  );
  const levels = [...(controller?.levels ?? [])].map(([k, v]) => `${k} ${v}`).join(', ');
  p(`log lines: ${levels || '-'}; log file ${controller?.logFile ?? '-'}`);
  for (const [message, count] of [...(controller?.problems ?? [])].sort((a, b) => b[1] - a[1]).slice(0, 5))
    p(`  ${count} × ${message}`);
  if (result.cleanupSeconds !== undefined)
    p(
      `cleanup: namespace deleted in ${fmt(result.cleanupSeconds)} s${result.cleanupNote ? ` (${result.cleanupNote})` : ''}`,
    );

  p();
  p('== Against the design targets (reported, not asserted) ==');
  const verdict = (ok: boolean | undefined, w?: Window) =>
    (ok === undefined ? '-' : ok ? 'met' : 'NOT met') + (w && !isClean(w) ? ' (contaminated)' : '');
  p(
    table(
      ['target', 'measured', ''],
      [
        [
          '<= 4 writes to issue (changed objects + failed)',
          writesVerdictText(issue),
          verdict(issue && writesPerGrant(issue) <= 4, 'issue'),
        ],
        [
          '<= 4 writes to revoke (changed objects + failed)',
          writesVerdictText(revoke),
          verdict(revoke && writesPerGrant(revoke) <= 4, 'revoke'),
        ],
        [
          `grant p99 <= 1 s at ${RATE}/s`,
          fmtMs(rate?.latency.client.p99 ?? NaN),
          verdict(rate && rate.latency.client.p99 <= 1000, 'rate'),
        ],
        [
          'revocation lag p99 <= 1 s (RoleBinding gone)',
          fmtMs(rev?.rbLag.p99 ?? NaN),
          verdict(rev && rev.rbLag.p99 <= 1000, 'revoke'),
        ],
        [
          'revocation lag p99 <= 1 s (can-i false)',
          fmtMs(rev?.canILag.p99 ?? NaN),
          verdict(rev && rev.canILag.p99 <= 1000, 'revoke'),
        ],
        [
          'ratio to the raw ceiling >= 0.8',
          fmt((sat?.grantsPerSec ?? NaN) / limit, 2),
          verdict(sat && sat.grantsPerSec / limit >= 0.8, 'issue'),
        ],
        [
          `RSS <= 200 MiB at 10k active (measured at ${fmt(memory.activeAtN, 0)})`,
          `${fmtBytes(memory.hwm)} peak; ~${fmtBytes(extrapolated)} extrapolated`,
          '-',
        ],
      ],
    ),
  );
  console.log(out.join('\n'));

  const lat = (s: Summary | undefined) =>
    s && { n: s.n, p50: round(s.p50), p99: round(s.p99), max: round(s.max) };
  const writes = (w: WindowWrites | undefined) =>
    w && {
      grants: w.grants,
      controllerOk: round(w.perGrant.controllerOk, 2),
      failed: round(w.perGrant.failed, 2),
      events: round(w.perGrant.events, 2),
      total: round(w.perGrant.total, 2),
      effectiveController: round(effectiveControllerWrites(w), 2),
      eventsOk: round(w.perGrant.eventsOk, 2),
      eventsFailed: round(w.perGrant.eventsFailed, 2),
      byResource: Object.fromEntries(
        w.rows
          .filter((r) => WRITE_VERBS.has(r.verb) && categorize(r) !== 'other')
          .map((r) => [`${qualified(r)} ${r.verb} ${r.code}`, round(r.count / (w.grants || NaN), 2)]),
      ),
    };
  const json = {
    n: N,
    concurrency: CONCURRENCY,
    ttlSeconds: result.ttlSeconds,
    namespace,
    source: sourceInfo,
    raw: raw && {
      createWritesPerSec: round(raw.create.writesPerSec),
      deleteWritesPerSec: round(raw.delete.writesPerSec),
      createTriplesPerSec: round(raw.create.triplesPerSec),
      deleteTriplesPerSec: round(raw.delete.triplesPerSec),
      createTripleMs: lat(raw.create.latency),
      deleteTripleMs: lat(raw.delete.latency),
      connectionsOpened: raw.connectionsOpened,
    },
    saturation: sat && {
      granted: sat.granted,
      grantsPerSec: round(sat.grantsPerSec, 2),
      clientLatencyMs: lat(sat.latency.client),
      serverLatencyMs: lat(sat.latency.server),
      limitGrantsPerSec: round(limit, 2),
      ratio: round(sat.grantsPerSec / limit, 2),
      limitWithoutEvents: round(limitNoEvents, 2),
      overlap: sat.overlap,
    },
    writesPerGrant: { issue: writes(issue), revoke: writes(revoke) },
    revocation: rev && {
      revoked: rev.revoked,
      roleBindingGoneMs: lat(rev.rbLag),
      allGoneMs: lat(rev.allGoneLag),
      statusExpiredMs: lat(rev.statusLag),
      canIFalseMs: lat(rev.canILag),
      canITimeouts: rev.canITimeouts,
      samples: rev.samples,
    },
    fixedRate: rate && {
      rate: RATE,
      offered: rate.offered,
      granted: rate.granted,
      clientLatencyMs: lat(rate.latency.client),
      serverLatencyMs: lat(rate.latency.server),
      writesPerGrant: writes(rate.writes),
    },
    memory: {
      peakRssBytes: memory.hwm,
      sampledPeakRssBytes: memory.sampledPeak,
      idleRssBytes: memory.idleRss,
      rssAtNActiveBytes: memory.rssAtN,
      activeAtN: memory.activeAtN,
      metricResidentBytesAtN: memory.metricRssAtN,
      extrapolated10kBytes: round(extrapolated, 0),
    },
    effectivePerGrant: Object.fromEntries(
      (
        [
          ['issue', issue],
          ['revoke', revoke],
        ] as const
      ).map(([k, w]) => [
        k,
        w && Object.fromEntries([...w.effective].map(([key, c]) => [key, round(c / (w.grants || NaN), 2)])),
      ]),
    ),
    cpuShareOfOneCore: Object.fromEntries(
      phases.map((phase) => [
        phase,
        Object.fromEntries(Object.entries(phaseCpu(phase) ?? {}).map(([k, v]) => [k, round(v, 2)])),
      ]),
    ),
    concurrentControllers: Object.fromEntries([...othersByWindow].map(([w, pids]) => [w, [...pids]])),
    otherControllerInstances: others,
    otherControllerPids: result.otherControllers,
    clean: { issue: isClean('issue'), revoke: isClean('revoke'), rate: isClean('rate') },
    error: result.error,
  };
  console.log(`BENCH_RESULT ${JSON.stringify(json)}`);
}

await main();
