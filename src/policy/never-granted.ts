import type { RequestedRule } from '../api/types.ts';
import { describeResource } from './access.ts';
import type { DecisionInput, DenialReason } from './decision.ts';

export interface Refusal {
  reason: Extract<DenialReason, 'NeverGranted' | 'UnknownResource'>;
  message: string;
}

const NEVER_GRANTED_VERBS: readonly string[] = ['escalate', 'bind', 'impersonate'];

// A "*" verb includes escalate, bind and impersonate; on these resources they take effect.
const PRIVILEGE_VERB_RESOURCES = [
  {
    apiGroup: 'rbac.authorization.k8s.io',
    resource: 'roles',
    includes: 'escalate and bind, which are never granted',
  },
  { apiGroup: '', resource: 'serviceaccounts', includes: 'impersonate, which is never granted' },
] as const;

// RBAC checks a request on a Namespace object (delete, update, its status or finalize subresource)
// against the RoleBindings of that very namespace, so the rules of a namespaced Role reach the
// Namespace object of its own namespace. Named literally, these are refused as cluster-scoped; a
// wildcard resource reaches them without being looked up.
const NAMESPACE_RESOURCES: readonly string[] = ['namespaces', 'namespaces/status', 'namespaces/finalize'];

/**
 * Why a request asks for something no policy can allow, or undefined. Runs before any policy:
 * anything in the controller's namespace, escalate/bind/impersonate, hourglass's signing keys,
 * the request's own Namespace object, cluster-scoped resources, and resources the API server does
 * not serve.
 */
export function neverGranted(
  input: Pick<DecisionInput, 'request' | 'isNamespaced' | 'controllerNamespace' | 'signingKeySecretName'>,
): Refusal | undefined {
  const namespace = input.request.metadata.namespace;
  if (namespace === input.controllerNamespace) {
    return refuse(
      'NeverGranted',
      `namespace "${namespace}" is hourglass's own: nothing in it is ever granted`,
    );
  }
  const rules = input.request.spec.permissions ?? [];
  for (const [index, rule] of rules.entries()) {
    const why = neverGrantedInRule(rule, namespace, input.signingKeySecretName);
    if (why !== undefined) return refuse('NeverGranted', `permissions[${index}]: ${why}`);
  }
  for (const [index, rule] of rules.entries()) {
    const refusal = outOfNamespaceScope(rule, input.isNamespaced);
    if (refusal !== undefined) return { ...refusal, message: `permissions[${index}]: ${refusal.message}` };
  }
  return undefined;
}

function neverGrantedInRule(
  rule: RequestedRule,
  namespace: string,
  signingKeySecretName: string,
): string | undefined {
  if ((rule.nonResourceURLs ?? []).length > 0) return 'nonResourceURLs are never granted';
  const verb = rule.verbs.find((candidate) => NEVER_GRANTED_VERBS.includes(candidate));
  if (verb !== undefined) return `verb "${verb}" is never granted`;
  if (rule.verbs.includes('*')) {
    const reached = PRIVILEGE_VERB_RESOURCES.find(({ apiGroup, resource }) =>
      reaches(rule, apiGroup, resource),
    );
    if (reached !== undefined) {
      return `verb "*" on ${describeResource(reached.apiGroup, reached.resource)} includes ${reached.includes}`;
    }
  }
  const namespaceWildcard = wildcardReachingNamespace(rule, namespace);
  if (namespaceWildcard !== undefined) {
    return (
      `resource ${describeResource(namespaceWildcard.apiGroup, namespaceWildcard.resource)} reaches the ` +
      `Namespace "${namespace}" itself (a RoleBinding's rules apply to its own namespace's object, so ` +
      `"delete" would delete the namespace), and namespaces are never granted: name the resources instead`
    );
  }
  if (reaches(rule, '', 'secrets') && rule.resourceNames?.includes(signingKeySecretName)) {
    return `Secret "${signingKeySecretName}" holds hourglass's signing keys and is never granted`;
  }
  return undefined;
}

// A wildcard group or resource is not looked up: a namespaced Role reaches no cluster-scoped
// resource but the Namespace object of its own namespace, which neverGrantedInRule refuses.
function outOfNamespaceScope(
  rule: RequestedRule,
  isNamespaced: DecisionInput['isNamespaced'],
): Refusal | undefined {
  for (const apiGroup of rule.apiGroups) {
    for (const resource of rule.resources) {
      if (apiGroup === '*' || resource.includes('*')) continue;
      const namespaced = isNamespaced(apiGroup, resource);
      const described = describeResource(apiGroup, resource);
      if (namespaced === undefined) return refuse('UnknownResource', `unknown resource ${described}`);
      if (!namespaced) {
        return refuse(
          'NeverGranted',
          `${described} is cluster-scoped, and cluster-scoped resources are never granted`,
        );
      }
    }
  }
  return undefined;
}

// The wildcard group and resource, in RBAC's forms ("*", "*/status"), by which a rule reaches the
// Namespace object of the request's namespace; undefined when it does not. Object names that leave
// out the namespace's name keep the rule off it.
function wildcardReachingNamespace(
  rule: RequestedRule,
  namespace: string,
): { apiGroup: string; resource: string } | undefined {
  const apiGroup = rule.apiGroups.find((group) => group === '' || group === '*');
  if (apiGroup === undefined) return undefined;
  const names = rule.resourceNames ?? [];
  if (names.length > 0 && !names.includes(namespace)) return undefined;
  const resource = rule.resources.find(
    (candidate) =>
      candidate.includes('*') && NAMESPACE_RESOURCES.some((named) => rbacResourceMatches(candidate, named)),
  );
  return resource === undefined ? undefined : { apiGroup, resource };
}

// As RBAC's ResourceMatches: "*" matches every resource and subresource, "*/x" subresource x of any.
function rbacResourceMatches(ruleResource: string, resource: string): boolean {
  if (ruleResource === '*' || ruleResource === resource) return true;
  const slash = resource.indexOf('/');
  return ruleResource.startsWith('*/') && slash !== -1 && ruleResource === `*${resource.slice(slash)}`;
}

function reaches(rule: RequestedRule, apiGroup: string, resource: string): boolean {
  return (
    (rule.apiGroups.includes(apiGroup) || rule.apiGroups.includes('*')) &&
    (rule.resources.includes(resource) || rule.resources.includes('*'))
  );
}

function refuse(reason: Refusal['reason'], message: string): Refusal {
  return { reason, message };
}
