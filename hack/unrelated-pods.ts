// What unrelated workload costs the controller: `node hack/unrelated-pods.ts [--pods 20000]`.
//
// Against the local cluster of hack/cluster.sh it starts the controller (src/main.ts) once on the
// cluster as it is, then creates `--pods` ordinary workload pods (two containers, env, volumes,
// about 3 KB each) that no AccessRequest names, spread over `--namespaces` namespaces, and starts
// the controller again. For both starts it prints the time from spawn to synced caches, the peak
// RSS during start and the RSS once settled, and the ratio of the two settled figures. Nothing is
// asserted; the last line is `UNRELATED_RESULT {json}`. The pods' namespaces are deleted at the
// end unless `--keep` (then a later run reuses them). `--compare DIR` measures the controller of
// another checkout (e.g. a worktree of the commit before a change) alongside, start for start.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/k8s/kubeconfig.ts';
import { CONTROLLER_NODE_FLAGS } from '../test/support/controller.ts';
import { BenchController, readProcStatus } from './bench/controller.ts';
import { fmt, fmtBytes, pool, sleep, table } from './bench/stats.ts';

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '20000' },
    namespaces: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '32' },
    keep: { type: 'boolean', default: false },
    compare: { type: 'string' },
  },
});
const PODS = Number(args.pods);
const NAMESPACES = Number(args.namespaces);
const NAMESPACE_LABEL = 'hourglass.dev/unrelated-pods';

const repoRoot = path.resolve(import.meta.dirname, '..');
const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const kc = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
const core = kc.makeApiClient(CoreV1Api);
const log = (message: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${message}`);

/** An ordinary workload pod of about 3 KB: what a cluster is full of. */
function workloadPod(namespace: string, index: number): V1Pod {
  const env = Array.from({ length: 12 }, (_, i) => ({
    name: `SETTING_${i}`,
    value: `value-${index}-${i}-${'x'.repeat(40)}`,
  }));
  const container = (name: string) => ({
    name,
    image: `registry.example.com/team/${name}:1.${index % 50}.0`,
    env,
    ports: [{ containerPort: 8080, name: 'http' }],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: [
      { name: 'config', mountPath: '/etc/config' },
      { name: 'cache', mountPath: '/var/cache' },
    ],
  });
  return {
    metadata: {
      name: `workload-${index}`,
      namespace,
      labels: { app: `workload-${index % 200}`, tier: 'backend', 'pod-template-hash': `h${index % 97}` },
      annotations: { 'example.com/owner': 'team-a', 'example.com/revision': String(index) },
    },
    spec: {
      containers: [container('app'), container('sidecar')],
      volumes: [
        { name: 'config', configMap: { name: 'workload-config' } },
        { name: 'cache', emptyDir: {} },
      ],
    },
  };
}

async function existingPods(): Promise<number> {
  const namespaces = await core.listNamespace({ labelSelector: NAMESPACE_LABEL });
  let count = 0;
  for (const ns of namespaces.items) {
    let next: string | undefined;
    do {
      const page = await core.listNamespacedPod({
        namespace: ns.metadata!.name!,
        limit: 500,
        ...(next ? { _continue: next } : {}),
      });
      count += page.items.length;
      next = page.metadata?._continue;
    } while (next);
  }
  return count;
}

async function createPods(): Promise<number> {
  const names = Array.from({ length: NAMESPACES }, (_, i) => `unrelated-${i}`);
  for (const name of names) {
    await core
      .createNamespace({ body: { metadata: { name, labels: { [NAMESPACE_LABEL]: 'true' } } } })
      .catch((error: { code?: number }) => {
        if (error.code !== 409) throw error;
      });
  }
  const started = Date.now();
  let created = 0;
  await pool(
    Array.from({ length: PODS }, (_, i) => i),
    Number(args.concurrency),
    async (index) => {
      const namespace = names[index % NAMESPACES]!;
      await core
        .createNamespacedPod({ namespace, body: workloadPod(namespace, index) })
        .then(() => created++)
        .catch((error: { code?: number }) => {
          if (error.code !== 409) throw error;
        });
      if (created % 2000 === 0 && created) log(`created ${created} pods`);
    },
  );
  const seconds = (Date.now() - started) / 1000;
  log(`created ${created} pods in ${fmt(seconds)} s (${fmt(created / seconds)}/s)`);
  return created;
}

interface StartFigures {
  syncMs: number;
  peakRss: number;
  settledRss: number;
}

/** Starts the controller, waits for its caches to sync, lets it settle, and reads its memory. */
async function measureStart(source: string): Promise<StartFigures> {
  const spawned = Date.now();
  const controller = await BenchController.start(
    source,
    ['--log-level', 'info'],
    { KUBECONFIG: kubeconfigPath },
    CONTROLLER_NODE_FLAGS,
  );
  const syncMs = Date.now() - spawned;
  try {
    await sleep(20_000);
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const status = readProcStatus(controller.pid!);
      if (status) samples.push(status.rss);
      await sleep(500);
    }
    samples.sort((a, b) => a - b);
    const peak = readProcStatus(controller.pid!)?.hwm ?? NaN;
    return { syncMs, peakRss: peak, settledRss: samples[Math.floor(samples.length / 2)] ?? NaN };
  } finally {
    await controller.stop();
  }
}

const sources = { this: repoRoot, ...(args.compare ? { compared: path.resolve(args.compare) } : {}) };
/** Each source's controller, started in turn on the cluster as it is now. */
async function measureAll(): Promise<Record<string, StartFigures>> {
  const figures: Record<string, StartFigures> = {};
  for (const [label, source] of Object.entries(sources)) {
    log(`starting the controller of ${source}`);
    figures[label] = await measureStart(source);
  }
  return figures;
}

const present = await existingPods();
log(`${present} unrelated pods present`);
const before = present === 0 ? await measureAll() : undefined;
if (present < PODS) await createPods();
const after = await measureAll();
if (!args.keep) {
  log('deleting the unrelated namespaces');
  const namespaces = await core.listNamespace({ labelSelector: NAMESPACE_LABEL });
  for (const ns of namespaces.items) await core.deleteNamespace({ name: ns.metadata!.name! });
}

const rows = Object.entries(sources).flatMap(([label, source]) =>
  [
    ['without unrelated pods', before?.[label]],
    [`with ${PODS} unrelated pods`, after[label]],
  ].map(([cluster, figures]) => {
    const f = figures as StartFigures | undefined;
    return [
      `${label} (${path.relative(process.cwd(), source) || '.'})`,
      cluster as string,
      f ? `${fmt(f.syncMs / 1000)} s` : '-',
      f ? fmtBytes(f.peakRss) : '-',
      f ? fmtBytes(f.settledRss) : '-',
    ];
  }),
);
console.log(table(['controller', 'cluster', 'spawn -> synced', 'peak RSS', 'settled RSS'], rows));
const ratios = Object.fromEntries(
  Object.keys(sources).map((label) => [
    label,
    before?.[label] && after[label] ? after[label].settledRss / before[label].settledRss : undefined,
  ]),
);
for (const [label, ratio] of Object.entries(ratios))
  if (ratio !== undefined) console.log(`${label}: settled RSS ratio ${fmt(ratio, 2)} (goal <= 1.15)`);
console.log(`UNRELATED_RESULT ${JSON.stringify({ pods: PODS, before, after, ratios })}`);
