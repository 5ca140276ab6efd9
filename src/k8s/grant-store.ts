import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Api,
  type RbacAuthorizationV1Api,
  type V1Role,
  type V1RoleBinding,
  type V1Secret,
} from '@kubernetes/client-node';
import { ignoreNotFound } from './errors.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export type GrantObjectKind = 'Secret' | 'Role' | 'RoleBinding';
export type GrantObject = V1Secret | V1Role | V1RoleBinding;

interface Port<T> {
  create(namespace: string, body: T): Promise<T>;
  read(namespace: string, name: string): Promise<T>;
  patch(namespace: string, name: string, body: object): Promise<T>;
  delete(namespace: string, name: string, uid: string): Promise<unknown>;
}

/** Create, read, merge-patch and delete (UID-preconditioned) the three kinds a grant is made of. */
export class GrantObjectStore {
  readonly ports: { Secret: Port<V1Secret>; Role: Port<V1Role>; RoleBinding: Port<V1RoleBinding> };

  constructor(core: CoreV1Api, rbac: RbacAuthorizationV1Api) {
    const preconditioned = (uid: string) => ({ preconditions: { uid } });
    this.ports = {
      Secret: {
        create: (namespace, body) => core.createNamespacedSecret({ namespace, body }),
        read: (namespace, name) => core.readNamespacedSecret({ namespace, name }),
        patch: (namespace, name, body) => core.patchNamespacedSecret({ namespace, name, body }, mergePatch),
        delete: (namespace, name, uid) =>
          core.deleteNamespacedSecret({ namespace, name, body: preconditioned(uid) }),
      },
      Role: {
        create: (namespace, body) => rbac.createNamespacedRole({ namespace, body }),
        read: (namespace, name) => rbac.readNamespacedRole({ namespace, name }),
        patch: (namespace, name, body) => rbac.patchNamespacedRole({ namespace, name, body }, mergePatch),
        delete: (namespace, name, uid) =>
          rbac.deleteNamespacedRole({ namespace, name, body: preconditioned(uid) }),
      },
      RoleBinding: {
        create: (namespace, body) => rbac.createNamespacedRoleBinding({ namespace, body }),
        read: (namespace, name) => rbac.readNamespacedRoleBinding({ namespace, name }),
        patch: (namespace, name, body) =>
          rbac.patchNamespacedRoleBinding({ namespace, name, body }, mergePatch),
        delete: (namespace, name, uid) =>
          rbac.deleteNamespacedRoleBinding({ namespace, name, body: preconditioned(uid) }),
      },
    };
  }

  create(kind: GrantObjectKind, namespace: string, body: GrantObject): Promise<GrantObject> {
    return (this.ports[kind] as Port<GrantObject>).create(namespace, body);
  }

  read(kind: GrantObjectKind, namespace: string, name: string): Promise<GrantObject | undefined> {
    return ignoreNotFound(this.ports[kind].read(namespace, name));
  }

  patch(kind: GrantObjectKind, namespace: string, name: string, body: object): Promise<GrantObject> {
    return this.ports[kind].patch(namespace, name, body);
  }

  /** Deletes the object only if it is still the one with this UID; gone already is fine. */
  async delete(kind: GrantObjectKind, namespace: string, name: string, uid: string): Promise<void> {
    try {
      await this.ports[kind].delete(namespace, name, uid);
    } catch (error) {
      // 404: gone already. 409: a precondition failure, the name now belongs to another object.
      const code = (error as { code?: number }).code;
      if (code !== 404 && code !== 409) throw error;
    }
  }
}
