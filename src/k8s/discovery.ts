import { ApisApi, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

/**
 * Which resources the API server serves, and whether each is namespaced, from API discovery.
 * Refreshed periodically so CRDs installed later are known.
 */
export class ApiDiscovery {
  #namespaced = new Map<string, boolean>();
  readonly #kc: KubeConfig;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(kc: KubeConfig, log: Logger) {
    this.#kc = kc;
    this.#log = log;
  }

  /** True or false for a served resource ("pods", "pods/exec"), undefined for an unknown one. */
  readonly isNamespaced = (group: string, resource: string): boolean | undefined =>
    this.#namespaced.get(`${group}/${resource}`);

  async refresh(): Promise<void> {
    const found = new Map<string, boolean>();
    const core = await this.#kc.makeApiClient(CoreV1Api).getAPIResources();
    for (const r of core.resources) found.set(`/${r.name}`, r.namespaced);
    const custom = this.#kc.makeApiClient(CustomObjectsApi);
    const groups = await this.#kc.makeApiClient(ApisApi).getAPIVersions();
    await Promise.all(
      groups.groups.map(async (group) => {
        const version = group.preferredVersion?.version ?? group.versions[0]?.version;
        if (!version) return;
        try {
          const list = await custom.getAPIResources({ group: group.name, version });
          for (const r of list.resources) found.set(`${group.name}/${r.name}`, r.namespaced);
        } catch (error) {
          this.#log.warn('Failed to discover API group', { group: group.name, error: String(error) });
        }
      }),
    );
    this.#namespaced = found;
  }

  start(periodMs = 60_000): void {
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.#log.warn('Failed to refresh API discovery', { error: String(error) }),
      );
    }, periodMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Resolves once the API server serves every resource of the group, refreshing discovery every
 * `pollMs` meanwhile; says which are missing at once and then every `reportEvery` polls.
 */
export async function waitUntilServed(
  discovery: Pick<ApiDiscovery, 'isNamespaced' | 'refresh'>,
  group: string,
  resources: readonly string[],
  onMissing: (missing: string[]) => void,
  { pollMs = 5000, reportEvery = 12, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)) } = {},
): Promise<void> {
  for (let poll = 0; ; poll++) {
    const missing = resources.filter((resource) => discovery.isNamespaced(group, resource) === undefined);
    if (missing.length === 0) return;
    if (poll % reportEvery === 0) onMissing(missing.map((resource) => `${resource}.${group}`));
    await sleep(pollMs);
    await discovery.refresh().catch(() => undefined);
  }
}
