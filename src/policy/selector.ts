import type { LabelSelector } from '../api/types.ts';

type Requirement = NonNullable<LabelSelector['matchExpressions']>[number];

/**
 * Whether labels satisfy a Kubernetes label selector: every matchLabels pair and every
 * matchExpressions requirement. An empty selector matches everything. A requirement the API
 * server would refuse (In/NotIn without values, Exists/DoesNotExist with values) matches nothing.
 */
export function matchesLabelSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const matchLabels = Object.entries(selector.matchLabels ?? {});
  return (
    matchLabels.every(([key, value]) => labelOf(labels, key) === value) &&
    (selector.matchExpressions ?? []).every((requirement) => satisfies(requirement, labels))
  );
}

function satisfies(requirement: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const values = requirement.values ?? [];
  const value = labelOf(labels, requirement.key);
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return values.length > 0 && (value === undefined || !values.includes(value));
    case 'Exists':
      return values.length === 0 && value !== undefined;
    case 'DoesNotExist':
      return values.length === 0 && value === undefined;
    default:
      return false;
  }
}

// Own properties only: a label named "constructor" must not be found on Object.prototype.
function labelOf(labels: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}
