// The cluster's helm (hack/build.sh builds it, hack/cluster.sh up links it into .cluster/bin) and
// helpers to render the chart charts/hourglass.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { kubeconfigPath, repoRoot, type Result } from './cluster.ts';

export const chartDir = path.join(repoRoot, 'charts', 'hourglass');
const localHelm = path.join(repoRoot, '.cluster', 'bin', 'helm');
export const helmPath = process.env.HELM ?? (existsSync(localHelm) ? localHelm : 'helm');

/** A Kubernetes object as rendered by helm. */
export type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Runs helm against the local cluster; never throws on a non-zero exit. */
export function helm(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      helmPath,
      [...args, '--kubeconfig', kubeconfigPath],
      { maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        // ENOENT and friends: say which helm was missing instead of an empty stderr.
        resolve({ code, stdout, stderr: stderr || (error ? String(error) : '') });
      },
    );
  });
}

/** helm that must succeed; returns stdout. */
export async function helmOk(args: string[]): Promise<string> {
  const result = await helm(args);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** Fails with a clear message when helm is missing (it exists once `hack/cluster.sh up` ran). */
export async function requireHelm(): Promise<void> {
  const result = await helm(['version', '--short']);
  if (result.code !== 0) {
    throw new Error(`no working helm at ${helmPath} (run hack/cluster.sh up, or set HELM): ${result.stderr}`);
  }
}

/**
 * Runs `command` with the given values written to a temporary values file, passed as `-f FILE`.
 * The file is removed afterwards.
 */
export async function withValuesFile<T>(values: object, command: (args: string[]) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hourglass-values-'));
  try {
    const file = path.join(dir, 'values.yaml');
    await writeFile(file, stringify(values));
    return await command(['-f', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `helm template` of the chart with the given values; never throws on a non-zero exit. */
export function template(
  release: string,
  namespace: string,
  values: object = {},
  flags: string[] = [],
): Promise<Result> {
  return withValuesFile(values, (valueArgs) =>
    helm(['template', release, chartDir, '--namespace', namespace, ...valueArgs, ...flags]),
  );
}

/** Parses a multi-document YAML stream, skipping empty documents. */
export function parseManifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]?.message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null && typeof m === 'object');
}

/** `helm template` that must succeed; returns the rendered objects. */
export async function render(
  release: string,
  namespace: string,
  values: object = {},
  flags: string[] = [],
): Promise<Manifest[]> {
  const result = await template(release, namespace, values, flags);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

/** The one rendered object of this kind (and name, when given). */
export function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const matches = manifests.filter(
    (m) => m.kind === kind && (name === undefined || m.metadata?.name === name),
  );
  if (matches.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, rendered ${matches.length}`);
  }
  return matches[0] as Manifest;
}
