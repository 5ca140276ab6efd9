// Helpers for integration tests against the local cluster of hack/cluster.sh.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, type PooledKubeConfig } from '../../src/k8s/kubeconfig.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const kubeconfigPath = process.env.KUBECONFIG ?? path.join(repoRoot, '.cluster', 'kubeconfig');
const localKubectl = path.join(repoRoot, '.cluster', 'bin', 'kubectl');
export const kubectlPath = process.env.KUBECTL ?? (existsSync(localKubectl) ? localKubectl : 'kubectl');

let shared: PooledKubeConfig | undefined;
/** The admin KubeConfig of the local cluster, shared by all tests. */
export function adminConfig(): PooledKubeConfig {
  shared ??= loadKubeConfig({ KUBECONFIG: kubeconfigPath });
  return shared;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the cluster's kubectl as admin; never throws on a non-zero exit. */
export function kubectl(args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      kubectlPath,
      ['--kubeconfig', kubeconfigPath, ...args],
      { maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl that must succeed; returns stdout. */
export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export async function eventually<T>(
  check: () => Promise<T>,
  { timeout = 30_000, interval = 200, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeout} ms waiting for ${what}: ${last instanceof Error ? last.message : last}`,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Server-side applies crds/ and waits until every CRD is Established. */
export async function ensureCrds(): Promise<void> {
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', path.join(repoRoot, 'crds')]);
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    path.join(repoRoot, 'crds'),
  ]);
}

let counter = 0;
/**
 * Creates a fresh namespace for the calling suite, waits for its default ServiceAccount (pods
 * are refused before it exists) and deletes it after the suite.
 */
export function useNamespace(prefix: string): () => string {
  let name = '';
  before(async () => {
    name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`.slice(0, 63);
    await kubectlOk(['create', 'namespace', name]);
    const core = adminConfig().makeApiClient(CoreV1Api);
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }), {
      what: `ServiceAccount ${name}/default`,
    });
  });
  after(async () => {
    if (name) await kubectl(['delete', 'namespace', name, '--wait=false']);
  });
  return () => name;
}

/** A KubeConfig for the local cluster that authenticates with a bearer token only. */
export function tokenConfig(token: string): KubeConfig {
  const admin = adminConfig();
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const kc = loadKubeConfig({ KUBECONFIG: kubeconfigPath });
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token' }],
    currentContext: 'token',
  });
  return kc;
}
