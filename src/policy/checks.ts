import type { AnyAccessPolicy } from '../api/types.ts';
import { describeAccess } from './access.ts';
import { evaluateConditions, policyConditions, type CelBudget, type CelVariables } from './cel.ts';
import type { DecisionInput } from './decision.ts';
import { parseDuration } from './duration.ts';
import { requesterRefusal } from './requesters.ts';
import { firstUncoveredAccess, type UncoveredAccess } from './rules.ts';
import { matchesLabelSelector } from './selector.ts';
import { matchesTarget } from '../tokens/contract.ts';
import { grantTTL, type PolicyTerms } from './terms.ts';

export interface PolicyCheckContext {
  input: DecisionInput;
  policy: AnyAccessPolicy;
  terms: PolicyTerms;
  /** What CEL may still spend in this decision: one budget for every policy the decision tries. */
  celBudget: CelBudget;
}

/** One condition a policy puts on a request: undefined when it holds, else why not, for the denial message. */
export type PolicyCheck = (context: PolicyCheckContext) => string | undefined;

const notSuspended: PolicyCheck = ({ policy }) => (policy.spec.suspend ? 'policy is suspended' : undefined);

const approvalUsable: PolicyCheck = ({ input, policy, terms }) => {
  const approved = input.approvedPolicy ?? 'any';
  if (terms.approval !== 'Manual' || approved === 'any') return undefined;
  if (approved === 'none') return 'it needs an approval, and this grant was issued without one';
  if (approved.uid !== policy.metadata.uid)
    return `it needs an approval of its own (the approval was given under ${approved.ref})`;
  const generation = policy.metadata.generation ?? 1;
  return approved.generation === undefined || approved.generation === generation
    ? undefined
    : `it changed since the approval (generation ${approved.generation}, now ${generation}): a new request needs a new approval`;
};

const serviceAccountIsSubject: PolicyCheck = ({ input, policy }) => {
  const { serviceAccounts } = policy.spec.subjects;
  const name = input.subject.serviceAccountName;
  return serviceAccounts.includes(name) || serviceAccounts.includes('*')
    ? undefined
    : `service account "${name}" is not a subject`;
};

const subjectLabelsMatch: PolicyCheck = ({ input, policy }) => {
  const selector = policy.spec.subjects.podSelector;
  return selector === undefined || matchesLabelSelector(selector, input.subject.labels)
    ? undefined
    : "the subject's labels do not match subjects.podSelector";
};

const requesterAllowed: PolicyCheck = ({ input, policy }) => requesterRefusal(input, policy.spec.requesters);

const permissionsCovered: PolicyCheck = ({ input, policy }) => {
  const allowed = policy.spec.allow.permissions ?? [];
  for (const [index, rule] of (input.request.spec.permissions ?? []).entries()) {
    const uncovered = firstUncoveredAccess(allowed, rule);
    if (uncovered !== undefined) return `permissions[${index}]: ${describeUncovered(uncovered)}`;
  }
  return undefined;
};

/** Whether every requested action is allowed: literally, or by a "*" that allows any action. */
export function coversActions(allowed: readonly string[], requested: readonly string[]): boolean {
  return allowed.includes('*') || requested.every((action) => allowed.includes(action));
}

const tokenCovered: PolicyCheck = ({ input, policy }) => {
  const requested = input.request.spec.token;
  if (requested === undefined) return undefined;
  const allowed = policy.spec.allow.token;
  if (allowed === undefined) return 'no token is allowed (allow.token is not set)';
  const audience = requested.audience.find((candidate) => !allowed.audiences.includes(candidate));
  if (audience !== undefined) return `token audience "${audience}" is not in allow.token.audiences`;
  const action = requested.actions.find((candidate) => !coversActions(allowed.actions, [candidate]));
  if (action !== undefined) return `token action "${action}" is not in allow.token.actions`;
  return allowed.targets.some((glob) => matchesTarget(glob, requested.target))
    ? undefined
    : `token target "${requested.target}" matches no glob in allow.token.targets`;
};

// The CRD validates these; a policy read before validation must still not pass with a broken limit.
const policyDurationsValid: PolicyCheck = ({ terms }) => {
  const durations = {
    maxTTL: terms.maxTTL,
    defaultTTL: terms.defaultTTL,
    maxLifetime: terms.maxLifetime,
    'approval.timeout': terms.approvalTimeout,
  };
  const invalid = Object.entries(durations).find(([, value]) => secondsOrUndefined(value) === undefined);
  return invalid === undefined ? undefined : `${invalid[0]} "${invalid[1]}" is not a valid duration`;
};

const ttlWithinLimits: PolicyCheck = ({ input, terms }) => {
  const ttl = grantTTL(input.request, terms);
  const ttlSeconds = secondsOrUndefined(ttl.value);
  if (ttlSeconds === undefined || ttlSeconds <= 0) {
    return `${ttl.field} "${ttl.value}" is not a positive duration`;
  }
  if (ttlSeconds > parseDuration(terms.maxTTL)) {
    return `${ttl.field} ${ttl.value} exceeds maxTTL ${terms.maxTTL}`;
  }
  if (ttlSeconds > parseDuration(terms.maxLifetime)) {
    return `${ttl.field} ${ttl.value} exceeds maxLifetime ${terms.maxLifetime}`;
  }
  return undefined;
};

const activeGrantsBelowLimit: PolicyCheck = ({ input, terms }) =>
  input.activeGrants < terms.maxActivePerSubject
    ? undefined
    : `service account "${input.subject.serviceAccountName}" already holds ${input.activeGrants} active grants (maxActivePerSubject ${terms.maxActivePerSubject})`;

// Last, as the only costly check: CEL runs only for a request every other check allows.
const conditionsHold: PolicyCheck = ({ input, policy, celBudget }) => {
  const [first] = policy.spec.conditions ?? [];
  if (first === undefined) return undefined;
  const compiled = policyConditions(policy);
  if (!compiled.ok) {
    const [error = { name: first.name, message: 'unknown error' }] = compiled.errors;
    return `condition "${error.name}" does not compile: ${error.message}`;
  }
  const variables = celVariables(input);
  if (variables === undefined) {
    return `condition "${first.name}" could not be evaluated: the decision was given no CEL context`;
  }
  return evaluateConditions(compiled.program, variables, celBudget);
};

/** In the order they run: a denial reports the first that fails. */
export const POLICY_CHECKS: readonly PolicyCheck[] = [
  notSuspended,
  policyDurationsValid,
  approvalUsable,
  serviceAccountIsSubject,
  subjectLabelsMatch,
  requesterAllowed,
  permissionsCovered,
  tokenCovered,
  ttlWithinLimits,
  activeGrantsBelowLimit,
  conditionsHold,
];

/** The first failing check of a policy, or undefined when the policy allows the request. */
export function firstFailure(context: PolicyCheckContext): string | undefined {
  for (const check of POLICY_CHECKS) {
    const failure = check(context);
    if (failure !== undefined) return failure;
  }
  return undefined;
}

function describeUncovered({ access, resourceName, sensitivity }: UncoveredAccess): string {
  const described = describeAccess(access, resourceName);
  return sensitivity === undefined
    ? `${described} is not allowed by allow.permissions`
    : `${described} is sensitive (${sensitivity}) and allow.permissions does not name it literally`;
}

function secondsOrUndefined(goDuration: string): number | undefined {
  try {
    return parseDuration(goDuration);
  } catch {
    return undefined;
  }
}

// One variables object per decision, so that every policy reuses its CEL form.
const celVariablesByInput = new WeakMap<DecisionInput, CelVariables>();

function celVariables(input: DecisionInput): CelVariables | undefined {
  const context = input.celContext;
  if (context === undefined) return undefined;
  let variables = celVariablesByInput.get(input);
  if (variables === undefined) {
    const { pod, job, serviceAccount, namespace, requester, now } = context;
    variables = {
      request: input.request,
      subject: { pod, job, serviceAccount, namespace },
      requester: requester ?? input.request.spec.requester ?? {},
      now,
    };
    celVariablesByInput.set(input, variables);
  }
  return variables;
}
