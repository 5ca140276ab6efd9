import type { AccessRequest, Condition } from '../api/types.ts';
import { formatDuration } from './durations.ts';
import { formatRule } from './rules.ts';

export const ref = (request: AccessRequest): string => `accessrequest/${request.metadata.name}`;

/** "Granted (Issued)", "Revoked (Manual)", "Pending". */
export function describePhase(request: AccessRequest): string {
  const phase = request.status?.phase ?? 'Pending';
  const reason = request.status?.reason;
  return reason && reason !== phase ? `${phase} (${reason})` : phase;
}

/** The phase with why, for a request that ended: "Denied (NoPolicyAllows): denied: ...". */
export function explainPhase(request: AccessRequest): string {
  const status = request.status ?? {};
  let message: string | undefined;
  switch (status.phase) {
    case 'Denied':
      message = findCondition(status.conditions, 'Denied')?.message ?? status.decision;
      break;
    case 'Revoked':
    case 'Expired':
      message = status.revocation?.message;
      break;
    case 'Failed':
      message = status.decision;
      break;
  }
  return message ? `${describePhase(request)}: ${message}` : describePhase(request);
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Columns aligned with three spaces, as kubectl prints them. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('   ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

function age(timestamp: string | Date | undefined, now: Date): string {
  if (!timestamp) return '<unknown>';
  return formatDuration(now.getTime() - new Date(timestamp).getTime());
}

/** "in 4m32s" for a future time, "2m ago" for a past one. */
export function relative(timestamp: string | undefined, now: Date): string {
  if (!timestamp) return '<none>';
  const delta = Date.parse(timestamp) - now.getTime();
  return delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
}

export interface ListOptions {
  allNamespaces: boolean;
  wide: boolean;
  now: Date;
}

/** The requests as `kubectl get accessrequests` shows them, with the printer columns. */
export function requestTable(
  requests: readonly AccessRequest[],
  { allNamespaces, wide, now }: ListOptions,
): string {
  const header = [
    ...(allNamespaces ? ['NAMESPACE'] : []),
    'NAME',
    'PHASE',
    'SUBJECT',
    'EXPIRES',
    'AGE',
    ...(wide ? ['REASON', 'POLICY', 'GRANT'] : []),
  ];
  const rows = requests.map((request) => {
    const status = request.status ?? {};
    const live = status.phase === 'Granted';
    return [
      ...(allNamespaces ? [request.metadata.namespace] : []),
      request.metadata.name,
      status.phase ?? 'Pending',
      status.subject?.ref ?? subjectRef(request),
      live ? relative(status.grant?.expiresAt, now) : '-',
      age(request.metadata.creationTimestamp, now),
      ...(wide ? [status.reason ?? '', status.policy?.name ?? '', status.grant?.id ?? ''] : []),
    ];
  });
  return table([header, ...rows]);
}

function subjectRef(request: AccessRequest): string {
  const { podName, jobName } = request.spec.subject;
  return podName ? `pod/${podName}` : jobName ? `job/${jobName}` : '';
}

/** One request in detail: the table row's facts, then grant, renewals, revocation and conditions. */
export function describeRequest(request: AccessRequest, now: Date): string {
  const { metadata, spec } = request;
  const status = request.status ?? {};
  const lines: [string, string][] = [
    ['Name', metadata.name],
    ['Namespace', metadata.namespace],
    ['Phase', describePhase(request)],
    [
      'Subject',
      `${status.subject?.ref ?? subjectRef(request)}${status.subject?.serviceAccountName ? ` (service account ${status.subject.serviceAccountName})` : ''}`,
    ],
    ['Purpose', spec.purpose],
    ['TTL', spec.ttl ?? '<policy default>'],
    ['Age', age(metadata.creationTimestamp, now)],
  ];
  spec.permissions?.forEach((rule, i) => lines.push([i === 0 ? 'Permissions' : '', formatRule(rule)]));
  if (spec.token) {
    lines.push([
      'Token',
      `audience ${spec.token.audience.join(',')}, actions ${spec.token.actions.join(',')}, target ${spec.token.target}`,
    ]);
  }
  if (spec.requester?.username) lines.push(['Requester', spec.requester.username]);
  if (status.policy?.name)
    lines.push(['Policy', `${status.policy.kind ?? 'AccessPolicy'}/${status.policy.name}`]);
  if (status.decision) lines.push(['Decision', status.decision]);
  if (status.approval?.decision) {
    lines.push([
      'Approval',
      `${status.approval.decision} by ${status.approval.by ?? '<unknown>'}${status.approval.at ? ` at ${status.approval.at}` : ''}`,
    ]);
  }
  if (status.grant?.id) {
    lines.push(['Grant', status.grant.id]);
    lines.push(['  Issued', status.grant.issuedAt ?? '<unknown>']);
    const expires = status.grant.expiresAt;
    lines.push(['  Expires', expires ? `${expires} (${relative(expires, now)})` : '<unknown>']);
    if (status.grant.secretName) lines.push(['  Secret', status.grant.secretName]);
    if (status.grant.roleName) lines.push(['  Role', status.grant.roleName]);
  }
  if (status.lifetimeEndsAt) lines.push(['Lifetime ends', status.lifetimeEndsAt]);
  if (status.renewals !== undefined || status.lastRenewal !== undefined) {
    lines.push([
      'Renewals',
      `${status.renewals ?? 0}${status.lastRenewal ? ` (last renew value "${status.lastRenewal}")` : ''}`,
    ]);
  }
  if (status.revocation?.reason) {
    lines.push([
      'Revocation',
      `${status.revocation.reason}${status.revocation.at ? ` at ${status.revocation.at}` : ''}${status.revocation.message ? `: ${status.revocation.message}` : ''}`,
    ]);
  }
  const width = Math.max(...lines.map(([key]) => key.length)) + 2;
  let text = lines.map(([key, value]) => `${key ? `${key}:` : ''}`.padEnd(width) + value).join('\n') + '\n';
  const conditions = status.conditions ?? [];
  text += 'Conditions:\n';
  if (conditions.length === 0) return text + '  <none>\n';
  const rows = conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message]);
  return (
    text +
    table([['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], ...rows])
      .split('\n')
      .map((line) => (line ? `  ${line}` : line))
      .join('\n')
  );
}
