import type { RequestedRule } from '../api/types.ts';

/**
 * One verb on one resource of one API group, as a requested rule asks for it, on the objects
 * named by resourceNames (none: every object of the resource).
 */
export interface Access {
  apiGroup: string;
  resource: string;
  verb: string;
  resourceNames: readonly string[];
}

/** Every (apiGroup, resource, verb) combination a requested rule grants. */
export function* accessesOf(rule: RequestedRule): Generator<Access> {
  const resourceNames = rule.resourceNames ?? [];
  for (const apiGroup of rule.apiGroups)
    for (const resource of rule.resources)
      for (const verb of rule.verbs) yield { apiGroup, resource, verb, resourceNames };
}

/** A resource as users read it: `"pods"`, `"deployments" in group "apps"`. */
export function describeResource(apiGroup: string, resource: string): string {
  return apiGroup === '' ? `"${resource}"` : `"${resource}" in group "${apiGroup}"`;
}

/** An access as users read it: `verb "get" on "secrets" named "orders-db"`. */
export function describeAccess(access: Access, resourceName?: string): string {
  const named = resourceName === undefined ? '' : ` named "${resourceName}"`;
  return `verb "${access.verb}" on ${describeResource(access.apiGroup, access.resource)}${named}`;
}
