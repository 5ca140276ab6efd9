// Faults of the local control plane for integration tests: stop and start one component, point a
// controller at the API server through a proxy, compact etcd.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { apiServerReady } from '../../src/k8s/readiness.ts';
import { adminConfig, eventually, kubeconfigPath, kubectl, kubectlOk, repoRoot } from './cluster.ts';
import type { ControllerProcess } from './controller.ts';

const clusterDir = path.dirname(kubeconfigPath);

function endpoint(name: 'ETCD' | 'APISERVER'): URL {
  const line = readFileSync(path.join(clusterDir, 'endpoints'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}=`));
  if (!line) throw new Error(`no ${name} in ${clusterDir}/endpoints`);
  return new URL(line.slice(name.length + 1));
}

export const apiServerEndpoint = () => endpoint('APISERVER');

/** `hack/cluster.sh stop|start|restart COMPONENT [flags]`; start and restart wait for readiness. */
export function cluster(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('bash', [path.join(repoRoot, 'hack', 'cluster.sh'), ...args], (error, _stdout, stderr) =>
      error ? reject(new Error(`hack/cluster.sh ${args.join(' ')} failed: ${stderr}`)) : resolve(),
    ),
  );
}

/** Polls /readyz every 50 ms; resolves with the time it first answered ok. */
export async function readyAt(timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await apiServerReady(adminConfig(), 1000).catch(() => false)) return Date.now();
    if (Date.now() > deadline) throw new Error(`the API server was not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Waits until the rest of the control plane works again after the API server came back: the
 * kube-controller-manager's informers back off during an outage too, and the tests that follow
 * need it to give every new namespace its default ServiceAccount.
 */
export async function controlPlaneSettled(): Promise<void> {
  await readyAt();
  const name = `settle-${process.pid}-${Date.now().toString(36)}`;
  await kubectlOk(['create', 'namespace', name]);
  try {
    const core = adminConfig().makeApiClient(CoreV1Api);
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }), {
      timeout: 120_000,
      what: `the kube-controller-manager to create ServiceAccount ${name}/default`,
    });
  } finally {
    await kubectl(['delete', 'namespace', name, '--wait=false']);
  }
}

/** A kubeconfig like the cluster's whose server is 127.0.0.1:`port` (a proxy); returns its path. */
export function kubeconfigThrough(port: number): string {
  const file = path.join(clusterDir, `kubeconfig-proxy-${port}`);
  const server = apiServerEndpoint().origin;
  writeFileSync(file, readFileSync(kubeconfigPath, 'utf8').replace(server, `https://127.0.0.1:${port}`), {
    mode: 0o600,
  });
  return file;
}

async function etcd(method: string, body: object): Promise<{ header: { revision: string } }> {
  const response = await fetch(new URL(`/v3/kv/${method}`, endpoint('ETCD')), {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (!response.ok) throw new Error(`etcd ${method}: HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as { header: { revision: string } };
}

/** Compacts etcd up to its current revision: a watch from any older resourceVersion gets 410 Gone. */
export async function compactEtcd(): Promise<void> {
  const { header } = await etcd('range', { key: Buffer.from('/').toString('base64') });
  await etcd('compaction', { revision: header.revision });
}

/** The sum of every series of one metric of a controller's /metrics (labels ignored, or matched). */
export async function metricSum(controller: ControllerProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${controller.url('http')}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}
