import { createHash } from 'node:crypto';
import type { AccessRequestSpec, RequestedRule } from './types.ts';
import { parseRule } from '../cli/rules.ts';

/**
 * Zero-code adoption: the labels and annotations with which a Pod (or a Job's pod template)
 * declares the access it needs, and the names hourglass derives from them (docs/api.md,
 * "Zero-code adoption").
 */
export const adoption = {
  /** Label, "true": the pod opts in; the pod admission webhook is only ever called for these pods. */
  inject: 'hourglass.dev/inject',
  /** Annotation: RBAC rules in the CLI's short form, separated by ";". */
  access: 'hourglass.dev/access',
  /** Annotation: "AUDIENCE ACTION[,ACTION...] TARGET", the token for a backend. */
  token: 'hourglass.dev/token',
  /** Annotation: the ttl of one grant; the policy's defaultTTL when absent. */
  ttl: 'hourglass.dev/ttl',
  /** Annotation: the purpose; "<kind>/<name> declared its access by annotation" when absent. */
  purpose: 'hourglass.dev/purpose',
  /** The scheduling gate held until the grant is live. */
  gate: 'hourglass.dev/grant',
  /** Label on the AccessRequests hourglass creates for opted-in pods. */
  adopted: 'hourglass.dev/adopted',
  /**
   * Annotation on such a request: the UID of the pod it was created for. Written by the controller
   * only (the webhook refuses it from anyone else): it is what marks a request as hourglass's own.
   */
  adoptedFor: 'hourglass.dev/adopted-for',
  /** Annotation on such a request: the Job's hourglass.dev/renew value last passed on to it. */
  jobRenewal: 'hourglass.dev/job-renewal',
  /** The token volume the webhook adds, and where every container sees it. */
  volumeName: 'hourglass-grant',
  mountPath: '/var/run/hourglass',
} as const;

/** What the annotations declare: an AccessRequest spec without its subject and requester. */
export type Declaration = Omit<AccessRequestSpec, 'subject' | 'requester'>;

const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const PRINTABLE = /^[^\p{C}]+$/u;
const LITERAL = /^[^*\s\p{Z}\p{C}]+$/u;
const TARGET = /^[^*%\s\p{Z}\p{C}]+$/u;

/**
 * The declaration carried by these annotations, or the reasons it is malformed (each naming the
 * annotation). `workload` ("job/etl") makes the default purpose.
 */
export function parseDeclaration(
  annotations: Readonly<Record<string, string>>,
  workload: string,
): { declaration: Declaration; errors?: undefined } | { declaration?: undefined; errors: string[] } {
  const errors: string[] = [];
  const declaration: Declaration = {
    purpose: annotations[adoption.purpose] ?? `${workload} declared its access by annotation`,
  };
  const access = annotations[adoption.access];
  if (access !== undefined) {
    const rules: RequestedRule[] = [];
    for (const text of access.split(';').filter((part) => part.trim() !== '')) {
      try {
        rules.push(parseRule(text));
      } catch (error) {
        errors.push(`${adoption.access}: ${(error as Error).message.replace(/^--rule /, 'rule ')}`);
      }
    }
    if (rules.length === 0 && errors.length === 0)
      errors.push(`${adoption.access}: no rule; write rules as 'get secrets/orders-db; list configmaps'`);
    declaration.permissions = rules;
  }
  const token = annotations[adoption.token];
  if (token !== undefined) {
    const fields = token.trim().split(/\s+/);
    const [audience = '', actionList = '', target = ''] = fields;
    const actions = actionList.split(',');
    if (fields.length !== 3) {
      errors.push(
        `${adoption.token}: "${token}" must be AUDIENCE ACTION[,ACTION...] TARGET, as 'orders-api orders:read postgres://orders-db/orders'`,
      );
    } else if (!LITERAL.test(audience) || !actions.every((action) => LITERAL.test(action))) {
      errors.push(`${adoption.token}: the audience and actions must be literal (no "*")`);
    } else if (!TARGET.test(target) || target.includes('..')) {
      errors.push(`${adoption.token}: the target must be literal, without "*", "%", ".." or whitespace`);
    } else {
      declaration.token = { audience: [audience], actions, target };
    }
  }
  if (access === undefined && token === undefined)
    errors.push(
      `${adoption.inject} is set, but neither ${adoption.access} nor ${adoption.token} says what to grant`,
    );
  const ttl = annotations[adoption.ttl];
  if (ttl !== undefined) {
    if (GO_DURATION.test(ttl)) declaration.ttl = ttl;
    else errors.push(`${adoption.ttl}: "${ttl}" is not a Go duration (as 15m, 1h30m)`);
  }
  const purpose = declaration.purpose;
  if (purpose.length > 512 || !PRINTABLE.test(purpose))
    errors.push(`${adoption.purpose}: 1 to 512 printable characters`);
  return errors.length > 0 ? { errors } : { declaration };
}

/** The workload an opted-in pod's request is for: its Job when the Job controller made it, else itself. */
export interface AdoptedSubject {
  kind: 'Job' | 'Pod';
  name: string;
}

/**
 * The AccessRequest name of a subject, deterministic so a retried pod of the same Job finds its
 * Job's request: "job-<name>" or "pod-<name>", cut with a hash of the full name past 63 characters.
 */
export function adoptedRequestName(subject: AdoptedSubject): string {
  const name = `${subject.kind.toLowerCase()}-${subject.name}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, 52).replace(/[-.]+$/, '')}-${hash}`;
}
