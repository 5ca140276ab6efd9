import type { CoreV1Api, V1ObjectMeta } from '@kubernetes/client-node';
import { labels, MANAGED_BY } from '../api/types.ts';
import type { KeySecretStore } from '../tokens/keys.ts';
import { ignoreNotFound } from './errors.ts';

/** The Secret that holds hourglass's signing keys, in the controller's namespace. */
export function keySecretStore(core: CoreV1Api, namespace: string, name: string): KeySecretStore {
  // Labels and annotations of the version last read, so that a replace keeps what others added.
  let lastRead: V1ObjectMeta | undefined;
  return {
    async read() {
      const secret = await ignoreNotFound(core.readNamespacedSecret({ namespace, name }));
      lastRead = secret?.metadata;
      return secret && { data: secret.data ?? {}, resourceVersion: secret.metadata?.resourceVersion ?? '' };
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
    async update(data, resourceVersion) {
      const kept = lastRead?.resourceVersion === resourceVersion ? lastRead : undefined;
      // A replace at resourceVersion: the API server refuses it with 409 Conflict when the Secret
      // changed since, so two replicas never both rotate.
      await core.replaceNamespacedSecret({
        namespace,
        name,
        body: {
          metadata: {
            name,
            namespace,
            resourceVersion,
            labels: { ...kept?.labels, [labels.managedBy]: MANAGED_BY },
            ...(kept?.annotations && { annotations: kept.annotations }),
          },
          type: 'Opaque',
          data,
        },
      });
    },
  };
}
