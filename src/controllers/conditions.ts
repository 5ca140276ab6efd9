import type { Condition } from '../api/types.ts';

/**
 * Returns conditions with `next` set: lastTransitionTime changes only when the status does.
 * Approved and Denied, once set, are never replaced, and never both set.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: Date,
): Condition[] {
  const existing = conditions?.find((c) => c.type === next.type);
  if (next.type === 'Approved' || next.type === 'Denied') {
    const opposite = next.type === 'Approved' ? 'Denied' : 'Approved';
    if (existing || conditions?.some((c) => c.type === opposite)) return conditions ?? [];
  }
  const lastTransitionTime =
    existing && existing.status === next.status ? existing.lastTransitionTime : now.toISOString();
  const updated = { ...next, lastTransitionTime };
  return existing
    ? (conditions ?? []).map((c) => (c.type === next.type ? updated : c))
    : [...(conditions ?? []), updated];
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type && c.status === 'True');
}
