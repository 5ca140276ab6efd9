import { celType, isCelError, parse, plan, type CelInput, type CelResult } from '@bufbuild/cel';
import type { AccessPolicySpec, AccessRequestSpec, AnyAccessPolicy } from '../api/types.ts';
import { checkCondition } from './cel-check.ts';
import {
  budgetSpentMessage,
  CEL_ENV,
  charge,
  COST_LIMIT,
  exceeded,
  meterComprehensions,
  metered,
  nodeCount,
  type CostMeter,
} from './cel-env.ts';

export { COST_LIMIT } from './cel-env.ts';

/** One CEL condition of a policy, as written in spec.conditions. */
export type Condition = NonNullable<AccessPolicySpec['conditions']>[number];

/** Why a condition does not compile. */
export interface ConditionError {
  name: string;
  message: string;
}

/** A policy's conditions, parsed, checked and planned, ready to evaluate. */
export interface CompiledConditions {
  readonly conditions: readonly CompiledCondition[];
}

interface CompiledCondition {
  name: string;
  message: string | undefined;
  /** What evaluating the expression once costs before any loop runs: its node count. */
  baseCost: number;
  run: (bindings: Record<string, CelInput>) => CelResult;
}

export type CompileResult =
  { ok: true; program: CompiledConditions } | { ok: false; errors: ConditionError[] };

/** What conditions read: `request`, `subject`, `requester` and `now`. */
export interface CelVariables {
  /** The AccessRequest, as JSON. */
  request: object;
  /** The workload (its Pod or Job), its ServiceAccount and its Namespace, as JSON. */
  subject: { pod?: object; job?: object; serviceAccount?: object; namespace?: object };
  requester: Requester;
  now: Date;
}

export type Requester = NonNullable<AccessRequestSpec['requester']>;

/**
 * The cost units left to one decision's conditions, shared by every policy it tries: a new one
 * per decision, never per policy.
 */
export type CelBudget = CostMeter;

/** A fresh budget for one decision: COST_LIMIT units unless told. */
export function newCelBudget(limit: number = COST_LIMIT): CelBudget {
  return { spent: 0, limit };
}

// As the CRD: spec.conditions[].expression has maxLength 4096.
const MAX_EXPRESSION_LENGTH = 4096;
const VARIABLES: ReadonlySet<string> = new Set(['request', 'subject', 'requester', 'now']);

/**
 * Compiles a policy's conditions: parses each, checks what can be checked before it runs
 * (variables, functions, constant regular expressions, a non-bool result) and plans it.
 * Reports every condition that does not compile, for the policy's Ready condition.
 */
export function compileConditions(conditions: readonly Condition[] = []): CompileResult {
  const compiled: CompiledCondition[] = [];
  const errors: ConditionError[] = [];
  const seen = new Set<string>();
  for (const { name, expression, message } of conditions) {
    if (seen.has(name)) {
      errors.push({ name, message: 'another condition has the same name' });
      continue;
    }
    seen.add(name);
    const result = compileCondition(expression);
    if (typeof result === 'string') errors.push({ name, message: result });
    else compiled.push({ name, message, ...result });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, program: { conditions: compiled } };
}

/** What does not compile, one clause per condition; undefined when everything does. */
export function compileErrorsMessage(result: CompileResult): string | undefined {
  if (result.ok) return undefined;
  return result.errors
    .map((error) => `condition "${error.name}" does not compile: ${error.message}`)
    .join('; ');
}

function compileCondition(expression: string): Pick<CompiledCondition, 'baseCost' | 'run'> | string {
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    return `the expression is longer than ${MAX_EXPRESSION_LENGTH} characters`;
  }
  try {
    const parsed = parse(expression);
    const source = { expression, positions: parsed.sourceInfo?.positions ?? {} };
    const [problem] = checkCondition(parsed.expr, CEL_ENV, VARIABLES, source);
    if (problem !== undefined) return problem;
    const baseCost = nodeCount(parsed.expr);
    meterComprehensions(parsed.expr);
    return { baseCost, run: plan(CEL_ENV, parsed) };
  } catch (error) {
    // A parse error, or a stack overflow on a deeply nested expression.
    return errorMessage(error);
  }
}

/**
 * Evaluates compiled conditions in order: undefined when all hold, else why the first one does
 * not, for the denial message. A condition that is false fails with its message; one that
 * errs, returns something other than a bool or goes over the budget fails as not evaluated.
 * The conditions charge the budget they are given, which the caller shares across the policies of
 * one decision; once it is spent, no condition runs and the first fails as not evaluated.
 */
export function evaluateConditions(
  program: CompiledConditions,
  variables: CelVariables,
  budget: CelBudget = newCelBudget(),
): string | undefined {
  const [first] = program.conditions;
  if (first === undefined) return undefined;
  if (spent(budget)) return notEvaluated(first, budgetSpentMessage(budget));
  let bindings: Record<string, CelInput>;
  try {
    bindings = bindingsOf(variables);
  } catch (error) {
    return notEvaluated(first, errorMessage(error));
  }
  for (const condition of program.conditions) {
    const failure = evaluateCondition(condition, bindings, budget);
    if (failure !== undefined) return failure;
  }
  return undefined;
}

// Spent to the last unit, not only over: any evaluation would be charged at least its node count.
function spent(budget: CelBudget): boolean {
  return budget.spent >= budget.limit;
}

function evaluateCondition(
  condition: CompiledCondition,
  bindings: Record<string, CelInput>,
  meter: CostMeter,
): string | undefined {
  let result: CelResult;
  try {
    result = metered(meter, () => {
      charge(condition.baseCost);
      return condition.run(bindings);
    });
  } catch (error) {
    return notEvaluated(condition, errorMessage(error));
  }
  if (exceeded(meter)) return notEvaluated(condition, budgetSpentMessage(meter));
  if (isCelError(result)) return notEvaluated(condition, result.message);
  if (typeof result !== 'boolean') {
    return notEvaluated(condition, `the expression returned ${celType(result).name}, not bool`);
  }
  if (result) return undefined;
  return condition.message
    ? `condition "${condition.name}" failed: ${condition.message}`
    : `condition "${condition.name}" failed`;
}

function notEvaluated(condition: Pick<CompiledCondition, 'name'>, why: string): string {
  return `condition "${condition.name}" could not be evaluated: ${why}`;
}

const MAX_CACHED_POLICIES = 4096;

interface CacheEntry {
  generation: number | undefined;
  conditions: readonly Condition[];
  compiled: CompileResult;
}

// By policy UID; one entry per policy, replaced when its generation or conditions change.
const compiledByPolicy = new Map<string, CacheEntry>();

/**
 * A policy's conditions compiled, cached per policy UID and generation, so that deciding does not
 * parse. The conditions are compared too: a policy under admission, or one not yet stored, can
 * carry new conditions under an old generation.
 */
export function policyConditions(policy: AnyAccessPolicy): CompileResult {
  const { uid, generation } = policy.metadata;
  const conditions = policy.spec.conditions ?? [];
  const cached = compiledByPolicy.get(uid);
  if (
    cached !== undefined &&
    cached.generation === generation &&
    sameConditions(cached.conditions, conditions)
  ) {
    return cached.compiled;
  }
  const compiled = compileConditions(conditions);
  compiledByPolicy.delete(uid);
  if (compiledByPolicy.size >= MAX_CACHED_POLICIES) {
    const oldest = compiledByPolicy.keys().next();
    if (!oldest.done) compiledByPolicy.delete(oldest.value);
  }
  compiledByPolicy.set(uid, { generation, conditions, compiled });
  return compiled;
}

function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  return (
    a === b ||
    (a.length === b.length &&
      a.every(
        (condition, index) =>
          condition.name === b[index]?.name &&
          condition.expression === b[index]?.expression &&
          condition.message === b[index]?.message,
      ))
  );
}

// Computed at most once per variables object, however many policies read them.
const bindingsCache = new WeakMap<CelVariables, Record<string, CelInput>>();

function bindingsOf(variables: CelVariables): Record<string, CelInput> {
  let bindings = bindingsCache.get(variables);
  if (bindings === undefined) {
    const { request, subject, requester, now } = variables;
    bindings = {
      request: toCel(request),
      subject: toCel(subject),
      requester: toCel({
        username: requester.username ?? '',
        uid: requester.uid ?? '',
        groups: requester.groups ?? [],
        extra: requester.extra ?? {},
      }),
      now: timestamp(now),
    };
    bindingsCache.set(variables, bindings);
  }
  return bindings;
}

const timestampOf = plan(CEL_ENV, parse('timestamp(time)'));

function timestamp(time: Date): CelInput {
  const result = timestampOf({ time: time.toISOString() });
  if (isCelError(result)) throw result;
  return result;
}

/**
 * A value as its JSON reads in CEL, as Kubernetes does for unstructured objects: a whole number is
 * an int, another number a double, an object a map of its own fields; a Date (as client-node
 * gives metav1.Time) is its RFC 3339 string, and an undefined field is absent.
 */
function toCel(value: unknown): CelInput {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return value;
    case 'number':
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return value.toISOString().replace('.000Z', 'Z');
      if (Array.isArray(value)) return value.map(toCel);
      return new Map(
        Object.entries(value)
          .filter(([, field]) => field !== undefined)
          .map(([key, field]) => [key, toCel(field)]),
      );
    default:
      return null;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
