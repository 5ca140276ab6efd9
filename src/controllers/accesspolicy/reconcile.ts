import {
  API_VERSION,
  type AccessPolicyStatus,
  type AnyAccessPolicy,
  type Condition,
} from '../../api/types.ts';
import type { ObjectRef } from '../../k8s/events.ts';
import type { Logger } from '../../log.ts';
import { compileErrorsMessage, policyConditions } from '../../policy/cel.ts';
import { setCondition } from '../conditions.ts';
import type { ObjectCache } from '../accessrequest/reconcile.ts';

export type Readiness = Omit<Condition, 'lastTransitionTime'>;

/** Whether a policy can take effect: Ready is False, saying why, when a CEL condition does not compile. */
export function readiness(policy: AnyAccessPolicy): Readiness {
  const problems = compileErrorsMessage(policyConditions(policy));
  if (problems) return { type: 'Ready', status: 'False', reason: 'InvalidConditions', message: problems };
  return { type: 'Ready', status: 'True', reason: 'Valid', message: 'Every condition compiles.' };
}

/** The key of a policy in the policy status queue: "AccessPolicy/namespace/name" or "ClusterAccessPolicy//name". */
export function policyKey(policy: AnyAccessPolicy): string {
  return `${policy.kind}/${policy.kind === 'AccessPolicy' ? policy.metadata.namespace : ''}/${policy.metadata.name}`;
}

export interface PolicyStatusDeps {
  policies: ObjectCache<AnyAccessPolicy>;
  clusterPolicies: ObjectCache<AnyAccessPolicy>;
  writeStatus: (policy: AnyAccessPolicy, status: AccessPolicyStatus) => Promise<unknown>;
  recordEvent: (regarding: ObjectRef, type: 'Normal' | 'Warning', reason: string, note: string) => void;
  log: Logger;
  now: () => Date;
}

/** Keeps each policy's status (observedGeneration and Ready) current. */
export class PolicyStatusReconciler {
  readonly #d: PolicyStatusDeps;

  constructor(deps: PolicyStatusDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<void> {
    const [kind, namespace = '', name = ''] = key.split('/');
    const policy =
      kind === 'AccessPolicy' ? this.#d.policies.get(namespace, name) : this.#d.clusterPolicies.get('', name);
    if (!policy) return;
    const ready = readiness(policy);
    const generation = policy.metadata.generation ?? 1;
    const current = policy.status?.conditions?.find((c) => c.type === 'Ready');
    const unchanged =
      policy.status?.observedGeneration === generation &&
      current?.status === ready.status &&
      current.reason === ready.reason &&
      current.message === ready.message;
    if (unchanged) return;
    await this.#d.writeStatus(policy, {
      observedGeneration: generation,
      conditions: setCondition(policy.status?.conditions, ready, this.#d.now()),
    });
    if (current?.status === ready.status) return;
    const where = policy.kind === 'AccessPolicy' ? `${policy.metadata.namespace}/` : '';
    this.#d.log.info('Policy readiness changed', {
      policy: `${policy.kind}/${where}${policy.metadata.name}`,
      ready: ready.status,
      reason: ready.reason,
      message: ready.message,
    });
    this.#d.recordEvent(
      {
        apiVersion: API_VERSION,
        kind: policy.kind,
        // Events about cluster-scoped objects live in the default namespace.
        namespace: policy.kind === 'AccessPolicy' ? policy.metadata.namespace : 'default',
        name: policy.metadata.name,
        uid: policy.metadata.uid,
      },
      ready.status === 'True' ? 'Normal' : 'Warning',
      ready.reason,
      ready.message,
    );
  }
}
