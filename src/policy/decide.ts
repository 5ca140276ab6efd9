import type { AnyAccessPolicy } from '../api/types.ts';
import { newCelBudget } from './cel.ts';
import { firstFailure } from './checks.ts';
import type { Decision, DecisionInput } from './decision.ts';
import { parseDuration } from './duration.ts';
import { neverGranted } from './never-granted.ts';
import { matchesLabelSelector } from './selector.ts';
import { grantTTL, policyTerms } from './terms.ts';

export type {
  Allowed,
  ApprovalMode,
  CelContext,
  Decision,
  DecisionInput,
  Denied,
  DenialReason,
} from './decision.ts';

/**
 * Decides a request against the policies, denying by default. Never-granted access is refused
 * before any policy is read. Then the policies that apply to the request's namespace are tried
 * in order, AccessPolicies before ClusterAccessPolicies and each by name; the first that allows
 * the request wins. A denial names every policy tried and its first failing check. The CEL
 * conditions of all the policies tried share one cost budget.
 */
export function decide(input: DecisionInput): Decision {
  const refusal = neverGranted(input);
  if (refusal !== undefined) return { allowed: false, ...refusal };

  const namespace = input.request.metadata.namespace;
  const applicable = input.policies
    .filter((policy) => appliesToNamespace(policy, namespace, input.namespaceLabels))
    .sort(inEvaluationOrder);
  const failures: string[] = [];
  const celBudget = newCelBudget();
  for (const policy of applicable) {
    const terms = policyTerms(policy.spec);
    const failure = firstFailure({ input, policy, terms, celBudget });
    if (failure === undefined) {
      return {
        allowed: true,
        policy,
        ttlSeconds: parseDuration(grantTTL(input.request, terms).value),
        maxLifetimeSeconds: parseDuration(terms.maxLifetime),
        maxRenewals: terms.maxRenewals,
        approval: terms.approval,
        approvalTimeoutSeconds: parseDuration(terms.approvalTimeout),
        message: `allowed by ${policyRef(policy)}`,
      };
    }
    failures.push(`${policyRef(policy)}: ${failure}`);
  }
  return {
    allowed: false,
    reason: 'NoPolicyAllows',
    message:
      failures.length > 0
        ? `denied: ${failures.join('; ')}`
        : `no policy in namespace "${namespace}" or cluster-wide allows this request`,
  };
}

/** A policy as Kind/name, as decisions and status name it. */
export function policyRef(policy: AnyAccessPolicy): string {
  return `${policy.kind}/${policy.metadata.name}`;
}

// A policy outside the request's namespace is not named in the denial: its name is not the
// requester's business.
function appliesToNamespace(
  policy: AnyAccessPolicy,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
): boolean {
  if (policy.kind === 'AccessPolicy') return policy.metadata.namespace === namespace;
  const selector = policy.spec.namespaceSelector;
  return selector === undefined || matchesLabelSelector(selector, namespaceLabels);
}

function inEvaluationOrder(a: AnyAccessPolicy, b: AnyAccessPolicy): number {
  const kindOrder = Number(a.kind === 'ClusterAccessPolicy') - Number(b.kind === 'ClusterAccessPolicy');
  if (kindOrder !== 0) return kindOrder;
  if (a.metadata.name === b.metadata.name) return 0;
  return a.metadata.name < b.metadata.name ? -1 : 1;
}
