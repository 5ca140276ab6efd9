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
