import type { AllowedRule, RequestedRule } from '../api/types.ts';
import { accessesOf, type Access } from './access.ts';
import { sensitivity } from './sensitive.ts';

/** An access of a requested rule that no allowed rule covers. */
export interface UncoveredAccess {
  access: Access;
  /** The first object name left uncovered, when the requested rule names objects. */
  resourceName?: string;
  /** Why the access is sensitive, when it is: then only a literal mention covers it. */
  sensitivity?: string;
}

/** Whether one allowed rule covers every access of a requested rule. */
export function ruleCovers(allowed: AllowedRule, requested: RequestedRule): boolean {
  return firstUncoveredAccess([allowed], requested) === undefined;
}

/**
 * The first access of a requested rule that no allowed rule covers, or undefined. Coverage is per
 * (apiGroup, resource, verb, object name), as in RBAC's escalation check: each combination needs
 * some allowed rule, not necessarily the same one for all. A request for every object of a
 * resource (no resourceNames) is covered only by an allowed rule without resourceNames.
 */
export function firstUncoveredAccess(
  allowed: readonly AllowedRule[],
  requested: RequestedRule,
): UncoveredAccess | undefined {
  for (const access of accessesOf(requested)) {
    const sensitive = sensitivity(access);
    const wildcardsApply = sensitive === undefined;
    const covering = allowed.filter((rule) => coversKind(rule, access, wildcardsApply));
    const uncovered = (resourceName?: string): UncoveredAccess => ({
      access,
      ...(resourceName === undefined ? {} : { resourceName }),
      ...(sensitive === undefined ? {} : { sensitivity: sensitive }),
    });
    if (access.resourceNames.length === 0) {
      if (!covering.some(allowsEveryObject)) return uncovered();
      continue;
    }
    const resourceName = access.resourceNames.find(
      (name) => !covering.some((rule) => allowsEveryObject(rule) || rule.resourceNames?.includes(name)),
    );
    if (resourceName !== undefined) return uncovered(resourceName);
  }
  return undefined;
}

// Whether the rule covers the access's group, resource and verb; object names are left to the caller.
function coversKind(rule: AllowedRule, access: Access, wildcardsApply: boolean): boolean {
  return (
    listed(rule.apiGroups, access.apiGroup, wildcardsApply) &&
    resourceListed(rule.resources, access.resource, wildcardsApply) &&
    listed(rule.verbs, access.verb, wildcardsApply)
  );
}

function listed(allowed: readonly string[], requested: string, wildcardsApply: boolean): boolean {
  return allowed.includes(requested) || (wildcardsApply && allowed.includes('*'));
}

// "pods/exec" is its own resource, not covered by "pods"; RBAC's "*/exec" form covers a
// subresource of every resource.
function resourceListed(allowed: readonly string[], requested: string, wildcardsApply: boolean): boolean {
  if (listed(allowed, requested, wildcardsApply)) return true;
  const slash = requested.indexOf('/');
  return wildcardsApply && slash !== -1 && allowed.includes(`*${requested.slice(slash)}`);
}

function allowsEveryObject(rule: AllowedRule): boolean {
  return (rule.resourceNames ?? []).length === 0;
}
