import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { loadKubeConfig, type PooledKubeConfig } from '../k8s/kubeconfig.ts';
import { AccessRequestClient } from '../k8s/resources.ts';
import type { GlobalOptions } from './args.ts';
import { CliError, ExitCode } from './errors.ts';

/** A connection to the cluster for one CLI invocation. */
export interface Session {
  kubeConfig: PooledKubeConfig;
  /** The API server URL, for error messages. */
  server: string;
  /** The namespace commands act in unless they are given another. */
  namespace: string;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  requests: AccessRequestClient;
  /** Re-reads a token file that was rotated on disk (projected tokens are); cheap when it was not. */
  refreshCredentials(): void;
  close(): Promise<void>;
}

export type Env = Readonly<Record<string, string | undefined>>;

const TOKEN_USER = 'hourglass-token';

/**
 * Connects as kubectl does: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the
 * in-cluster service account. With --token-file (or $HOURGLASS_TOKEN_FILE) that token is the
 * identity, against the kubeconfig's cluster and CA: this is how a test acts as a pod.
 */
export function connect(globals: GlobalOptions, env: Env, cwd = process.cwd()): Session {
  const kc = loadConfig(globals, env, cwd);
  if (globals.context !== undefined) {
    if (!kc.getContextObject(globals.context)) {
      throw new CliError(ExitCode.usage, `context "${globals.context}" is not in the kubeconfig`);
    }
    kc.setCurrentContext(globals.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server)
    throw new CliError(ExitCode.apiError, 'the kubeconfig names no cluster to connect to');
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;

  const tokenFile = globals.tokenFile ?? env.HOURGLASS_TOKEN_FILE;
  let refreshCredentials = () => {};
  if (tokenFile) {
    const useToken = (token: string) =>
      kc.loadFromOptions({
        clusters: [cluster],
        users: [{ name: TOKEN_USER, token }],
        contexts: [
          { name: TOKEN_USER, cluster: cluster.name, user: TOKEN_USER, namespace: contextNamespace },
        ],
        currentContext: TOKEN_USER,
      });
    useToken(readToken(tokenFile));
    let readAt = mtime(tokenFile);
    refreshCredentials = () => {
      const changed = mtime(tokenFile);
      if (changed !== readAt) {
        useToken(readToken(tokenFile));
        readAt = changed;
      }
    };
  }

  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    kubeConfig: kc,
    server: cluster.server,
    namespace: globals.namespace || env.POD_NAMESPACE || contextNamespace || 'default',
    custom,
    core: kc.makeApiClient(CoreV1Api),
    requests: new AccessRequestClient(custom),
    refreshCredentials,
    close: () => kc.close(),
  };
}

function loadConfig(globals: GlobalOptions, env: Env, cwd: string): PooledKubeConfig {
  const file = kubeconfigFile(globals, env);
  if (
    file === undefined &&
    !existsSync(path.join(cwd, '.cluster', 'kubeconfig')) &&
    !env.KUBERNETES_SERVICE_HOST
  ) {
    throw new CliError(
      ExitCode.apiError,
      'no kubeconfig: set $KUBECONFIG or --kubeconfig, or run inside a pod (in-cluster config)',
    );
  }
  try {
    // loadKubeConfig reads $KUBECONFIG when given one, else falls back to the in-cluster config.
    return loadKubeConfig(file === undefined ? {} : { KUBECONFIG: file }, cwd);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new CliError(
      ExitCode.apiError,
      `cannot load the ${file ? `kubeconfig ${file}` : 'in-cluster config'}: ${reason}`,
    );
  }
}

function kubeconfigFile(globals: GlobalOptions, env: Env): string | undefined {
  if (globals.kubeconfig) return globals.kubeconfig;
  if (env.KUBECONFIG) {
    // Like kubectl, $KUBECONFIG may list several files; the first that exists is used.
    const files = env.KUBECONFIG.split(path.delimiter).filter(Boolean);
    return files.find((f) => existsSync(f)) ?? files[0];
  }
  const home = path.join(env.HOME || os.homedir(), '.kube', 'config');
  return existsSync(home) ? home : undefined;
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new CliError(ExitCode.apiError, `cannot read the token file ${file}: ${(error as Error).message}`);
  }
  if (token === '') throw new CliError(ExitCode.apiError, `the token file ${file} is empty`);
  return token;
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
