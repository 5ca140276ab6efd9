// Raw API reads and a reconnecting watch for hack/bench.ts, over the PooledKubeConfig's shared
// connection pool (the same dispatcher as every typed client of the bench).
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import {
  AuthenticationV1Api,
  CustomObjectsApi,
  HttpMethod,
  RequestContext,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, plural, VERSION, type AccessPolicySpec } from '../../src/api/types.ts';
import { fetch } from 'undici';
import type { PooledKubeConfig } from '../../src/k8s/kubeconfig.ts';

async function authorized(kc: PooledKubeConfig, path: string) {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('no current cluster in the kubeconfig');
  const ctx = new RequestContext(server + path, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx;
}

/** GET a path of the API server (e.g. /metrics) and return the body as text. */
export async function getRaw(kc: PooledKubeConfig, path: string, signal?: AbortSignal): Promise<string> {
  const ctx = await authorized(kc, path);
  const response = await fetch(ctx.getUrl(), {
    headers: ctx.getHeaders(),
    dispatcher: ctx.getDispatcher(),
    ...(signal ? { signal } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}: ${text.slice(0, 200)}`);
  return text;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * Lists a collection, then watches it from the list's resourceVersion, reconnecting from the last
 * version seen (and relisting on 410 Gone). Every object event is handed to onEvent with the
 * client time it arrived, in ms since the epoch.
 */
export class CollectionWatch<T extends KubernetesObject> {
  readonly #kc: PooledKubeConfig;
  readonly #path: string;
  readonly #onEvent: (type: WatchEventType, object: T, receivedAt: number) => void;
  readonly #abort = new AbortController();
  #resourceVersion = '';
  #loop: Promise<void> | undefined;
  reconnects = 0;
  relists = 0;

  constructor(
    kc: PooledKubeConfig,
    path: string,
    onEvent: (type: WatchEventType, object: T, receivedAt: number) => void,
  ) {
    this.#kc = kc;
    this.#path = path;
    this.#onEvent = onEvent;
  }

  /** Resolves once the initial list has been handed over (as ADDED events) and the watch runs. */
  async start(): Promise<void> {
    await this.#list();
    this.#loop = this.#watchLoop();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop?.catch(() => {});
  }

  async #list(): Promise<void> {
    const list = JSON.parse(await getRaw(this.#kc, this.#path, this.#abort.signal)) as {
      metadata?: { resourceVersion?: string };
      items?: T[];
    };
    const now = Date.now();
    for (const item of list.items ?? []) this.#onEvent('ADDED', item, now);
    this.#resourceVersion = list.metadata?.resourceVersion ?? '';
  }

  async #watchLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let gone = false;
      try {
        gone = await this.#watchOnce(signal);
      } catch {
        if (signal.aborted) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (signal.aborted) return;
      this.reconnects++;
      if (gone) {
        this.relists++;
        await this.#list().catch(() => {});
      }
    }
  }

  /** One watch request; resolves true when the server says the resourceVersion is too old. */
  async #watchOnce(signal: AbortSignal): Promise<boolean> {
    const query = new URLSearchParams({
      watch: 'true',
      allowWatchBookmarks: 'true',
      timeoutSeconds: '120',
      resourceVersion: this.#resourceVersion,
    });
    const ctx = await authorized(this.#kc, `${this.#path}?${query}`);
    const response = await fetch(ctx.getUrl(), {
      headers: ctx.getHeaders(),
      dispatcher: ctx.getDispatcher(),
      signal,
    });
    if (response.status === 410) return true;
    if (!response.ok || !response.body) throw new Error(`watch ${this.#path}: HTTP ${response.status}`);
    let gone = false;
    const lines = createInterface(Readable.fromWeb(response.body as never));
    for await (const line of lines) {
      if (!line) continue;
      const event = JSON.parse(line) as { type: string; object: T & { code?: number } };
      const version = event.object.metadata?.resourceVersion;
      if (event.type === 'ERROR') {
        gone = event.object.code === 410;
        break;
      }
      if (version) this.#resourceVersion = version;
      if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED')
        this.#onEvent(event.type, event.object, Date.now());
    }
    return gone;
  }
}

/**
 * Creates the AccessPolicy a benchmark's requests are decided by: for service account `etl` of
 * `namespace`, asked for by this client's own user (the admission webhook records it as each
 * request's requester; `system:masters` when the API server does not say who that is).
 */
export async function createBenchPolicy(
  kc: PooledKubeConfig,
  namespace: string,
  name: string,
  spec: Omit<AccessPolicySpec, 'subjects' | 'requesters'>,
): Promise<void> {
  const self = await kc
    .makeApiClient(AuthenticationV1Api)
    .createSelfSubjectReview({ body: {} })
    .then((review) => review.status?.userInfo?.username)
    .catch(() => undefined);
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: plural.AccessPolicy,
    namespace,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'AccessPolicy',
      metadata: { name, namespace },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: self ? { users: [self] } : { groups: ['system:masters'] },
        ...spec,
      },
    },
  });
}
