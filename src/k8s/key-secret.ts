import type { CoreV1Api } from '@kubernetes/client-node';
import { labels, MANAGED_BY } from '../api/types.ts';
import type { KeySecretStore } from '../tokens/keys.ts';
import { ignoreNotFound } from './errors.ts';

/** The Secret that holds hourglass's signing keys, in the controller's namespace. */
export function keySecretStore(core: CoreV1Api, namespace: string, name: string): KeySecretStore {
  return {
    async read() {
      const secret = await ignoreNotFound(core.readNamespacedSecret({ namespace, name }));
      return secret ? (secret.data ?? {}) : undefined;
    },
    async create(data) {
      await core.createNamespacedSecret({
        namespace,
        body: {
          metadata: { name, namespace, labels: { [labels.managedBy]: MANAGED_BY } },
          type: 'Opaque',
          data,
        },
      });
    },
  };
}
