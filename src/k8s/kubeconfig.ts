import { existsSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import path from 'node:path';
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/**
 * How long an API call waits for its response headers, and for each next chunk of its body, before
 * it fails: on a stalled connection it is then abandoned (undici drops the socket) and retried on
 * a new one, instead of hanging for undici's default of 5 minutes.
 */
export const API_REQUEST_TIMEOUT_MS = 15_000;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * A watch may rightly stay silent, so its body gets no timeout here: client-node ends a watch that
 * received nothing for 30 s and reconnects from its last resourceVersion.
 */
const watchBodiesUntimed: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (options, handler) =>
  dispatch(/[?&]watch=(true|1)(&|$)/.test(options.path) ? { ...options, bodyTimeout: 0 } : options, handler);

/**
 * A KubeConfig whose API calls share one keep-alive connection pool for the life of the process,
 * each bounded by API_REQUEST_TIMEOUT_MS. client-node 2.0.1 builds a new undici Agent (so a new
 * TCP + TLS connection) for every request, measured 3-4x slower under load
 * (shared/docs/performance.md), and with undici's default timeouts of 5 minutes.
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
      timeout: CONNECT_TIMEOUT_MS,
    } as buildConnector.BuildOptions);
    return new Agent({
      keepAliveTimeout: 60_000,
      headersTimeout: API_REQUEST_TIMEOUT_MS,
      bodyTimeout: API_REQUEST_TIMEOUT_MS,
      connect: (options, callback) => {
        this.connectionsOpened++;
        connect(options, callback);
      },
    }).compose(watchBodiesUntimed);
  }

  /**
   * Drops every pooled connection, with the requests on them; later calls open new ones. After a
   * confirmed outage the pool may hold connections that went silent without being closed, each of
   * which would cost a call its full timeout.
   */
  renewConnections(): void {
    const dispatcher = this.#dispatcher;
    this.#dispatcher = undefined;
    void dispatcher?.then((stale) => stale.destroy()).catch(() => {});
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
