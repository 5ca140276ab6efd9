import { existsSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/**
 * A KubeConfig whose API calls share one keep-alive connection pool for the life of the process.
 * client-node 2.0.1 builds a new undici Agent (so a new TCP + TLS connection) for every request,
 * measured 3-4x slower under load (shared/docs/performance.md).
 */
export class PooledKubeConfig extends KubeConfig {
  #dispatcher: Promise<Dispatcher> | undefined;
  /** How many connections the shared pool has opened to the API server. */
  connectionsOpened = 0;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    context.setDispatcher(await this.sharedDispatcher());
  }

  sharedDispatcher(): Promise<Dispatcher> {
    this.#dispatcher ??= this.#buildDispatcher();
    return this.#dispatcher;
  }

  async #buildDispatcher(): Promise<Dispatcher> {
    // applyToHTTPSOptions reads the CA, client certificate and key from files or inline data alike.
    const https: RequestOptions = {};
    await this.applyToHTTPSOptions(https);
    const connect = buildConnector({
      ca: https.ca,
      cert: https.cert,
      key: https.key,
      servername: https.servername,
      rejectUnauthorized: https.rejectUnauthorized,
      keepAlive: true,
      keepAliveInitialDelay: 30_000,
    } as buildConnector.BuildOptions);
    return new Agent({
      keepAliveTimeout: 60_000,
      connect: (options, callback) => {
        this.connectionsOpened++;
        connect(options, callback);
      },
    });
  }

  async close(): Promise<void> {
    const dispatcher = this.#dispatcher;
    this.#dispatcher = undefined;
    await (await dispatcher)?.close();
  }
}

/**
 * $KUBECONFIG when set; else the local cluster's .cluster/kubeconfig when it exists; else the
 * in-cluster service account.
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  const local = path.join(cwd, '.cluster', 'kubeconfig');
  if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
  else if (existsSync(local)) kc.loadFromFile(local);
  else kc.loadFromCluster();
  return kc;
}
