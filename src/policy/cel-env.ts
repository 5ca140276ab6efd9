import {
  celEnv,
  celFunc,
  celMethod,
  CelScalar,
  isCelError,
  isCelList,
  isCelMap,
  type CelEnv,
  type CelFunc,
  type CelValue,
  type parse,
} from '@bufbuild/cel';
import { RE2JS } from '@bufbuild/re2';

/** A parsed CEL expression, in @bufbuild/cel's AST. */
export type Expr = ReturnType<typeof parse>['expr'];
type Comprehension = Extract<Expr['exprKind'], { case: 'comprehensionExpr' }>['value'];

/**
 * The cost units the conditions of every policy one decision tries may spend together, in the
 * spirit of Kubernetes' CEL cost limit: an evaluation that goes over it stops and is an error, so a
 * deny, and the conditions of the policies after it are not evaluated and deny too. One budget per
 * decision, not per policy, so that writing many policies does not multiply the work of a decision.
 * One unit is roughly one node evaluated, one loop iteration, or ten characters or list entries
 * handed to a function; spending the whole budget takes about a tenth of a second.
 */
export const COST_LIMIT = 250_000;

// Characters of a string, bytes of a bytes value, or entries of a list or map that one unit covers.
const ELEMENTS_PER_UNIT = 10;
// Regular expression cost is text units times pattern units, as each pattern character may be
// tried against each text character by the (linear-time) RE2 automaton.
const PATTERN_CHARACTERS_PER_UNIT = 4;

/** Cost units spent by the evaluations of one decision, and how many they may spend. */
export interface CostMeter {
  spent: number;
  readonly limit: number;
}

// The meter of the evaluation in progress. Evaluation is synchronous, so there is at most one.
let activeMeter: CostMeter | undefined;

/**
 * Runs a CEL evaluation, charging the meter. Once over its limit every later charge fails too, so
 * that an error CEL would otherwise absorb (`... || true`) still ends the evaluation; the caller
 * must treat a meter over its limit as an error whatever the result.
 */
export function metered<T>(meter: CostMeter, evaluate: () => T): T {
  const outer = activeMeter;
  activeMeter = meter;
  try {
    return evaluate();
  } finally {
    activeMeter = outer;
  }
}

/** Whether an evaluation went over its limit and was stopped. */
export function exceeded(meter: CostMeter): boolean {
  return meter.spent > meter.limit;
}

/** Why an evaluation was stopped, or not started, once the meter is over its limit. */
export function budgetSpentMessage(meter: CostMeter): string {
  return `the decision's CEL budget of ${meter.limit} cost units is spent`;
}

/** Charges cost units to the evaluation in progress; throws once it is over its limit. */
export function charge(units: number): void {
  if (activeMeter === undefined) return;
  activeMeter.spent += units;
  if (activeMeter.spent > activeMeter.limit) {
    throw new Error(budgetSpentMessage(activeMeter));
  }
}

/** The number of nodes of an expression: the work of evaluating it once, loops aside. */
export function nodeCount(expr: Expr | undefined): number {
  let count = 0;
  forEachChild(expr, (child) => (count += nodeCount(child)));
  return expr === undefined ? 0 : count + 1;
}

/** Calls visit for each direct child of a node. */
export function forEachChild(expr: Expr | undefined, visit: (child: Expr) => void): void {
  const kind = expr?.exprKind;
  const children: (Expr | undefined)[] = [];
  switch (kind?.case) {
    case 'selectExpr':
      children.push(kind.value.operand);
      break;
    case 'callExpr':
      children.push(kind.value.target, ...kind.value.args);
      break;
    case 'listExpr':
      children.push(...kind.value.elements);
      break;
    case 'structExpr':
      for (const entry of kind.value.entries) {
        if (entry.keyKind.case === 'mapKey') children.push(entry.keyKind.value);
        children.push(entry.value);
      }
      break;
    case 'comprehensionExpr': {
      const { iterRange, accuInit, loopCondition, loopStep, result } = kind.value;
      children.push(iterRange, accuInit, loopCondition, loopStep, result);
      break;
    }
  }
  for (const child of children) if (child !== undefined) visit(child);
}

// Names no CEL source can spell (identifiers cannot start with "@"), so only the rewrite below calls them.
const ITERATION = '@hourglass_iteration';
const RANGE = '@hourglass_range';

/**
 * Rewrites every comprehension (all, exists, exists_one, map, filter) so that it pays for its
 * work: its range costs its size, and each iteration costs the size of its loop body.
 * Without this, `l.all(x, l.all(y, true))` would run without calling any metered function.
 */
export function meterComprehensions(expr: Expr): void {
  forEachChild(expr, meterComprehensions);
  if (expr.exprKind.case !== 'comprehensionExpr') return;
  const comprehension: Comprehension = expr.exprKind.value;
  const { iterRange, loopCondition, loopStep } = comprehension;
  if (iterRange === undefined || loopCondition === undefined) return;
  const weight = BigInt(nodeCount(loopCondition) + nodeCount(loopStep));
  comprehension.iterRange = call(RANGE, [iterRange]);
  comprehension.loopCondition = call(ITERATION, [loopCondition, intConstant(weight)]);
}

function call(name: string, args: Expr[]): Expr {
  return {
    $typeName: 'cel.expr.Expr',
    id: 0n,
    exprKind: { case: 'callExpr', value: { $typeName: 'cel.expr.Expr.Call', function: name, args } },
  };
}

function intConstant(value: bigint): Expr {
  return {
    $typeName: 'cel.expr.Expr',
    id: 0n,
    exprKind: {
      case: 'constExpr',
      value: { $typeName: 'cel.expr.Constant', constantKind: { case: 'int64Value', value } },
    },
  };
}

const REGEX_CACHE_SIZE = 256;
const regexCache = new Map<string, RE2JS>();

/**
 * A regular expression compiled by RE2 (@bufbuild/re2, a port of RE2/J): linear-time matching, no
 * backreferences or lookaround. Throws on a pattern RE2 refuses.
 */
export function compileRegex(pattern: string): RE2JS {
  let regex = regexCache.get(pattern);
  if (regex === undefined) {
    regex = RE2JS.compile(pattern);
    if (regexCache.size >= REGEX_CACHE_SIZE) regexCache.clear();
    regexCache.set(pattern, regex);
  }
  return regex;
}

// CEL's matches() is a partial match (RE2 "find"), as in cel-go: anchor with ^ and $ for a full one.
const matches = celMethod(
  'matches',
  CelScalar.STRING,
  [CelScalar.STRING],
  CelScalar.BOOL,
  function (pattern) {
    charge(1 + units(this.length) * Math.ceil(Math.max(1, pattern.length) / PATTERN_CHARACTERS_PER_UNIT));
    return compileRegex(pattern).test(this);
  },
);

const iteration = celFunc(ITERATION, [CelScalar.DYN, CelScalar.INT], CelScalar.DYN, (condition, weight) => {
  charge(1 + Number(weight));
  return condition;
});

// A comprehension copies its range first, converting each element: one unit each.
const range = celFunc(RANGE, [CelScalar.DYN], CelScalar.DYN, (items) => {
  charge(1 + (isCelList(items) || isCelMap(items) ? items.size : 0));
  return items;
});

/**
 * Wraps a standard function so that each call costs one unit plus the size of what it is given:
 * string and list operations are linear in their operands.
 */
function meteredFunction(func: CelFunc): CelFunc {
  const impl = function (this: CelValue | undefined, ...args: CelValue[]): CelValue {
    const operands = this === undefined ? args : [this, ...args];
    charge(1 + operands.reduce<number>((sum, operand) => sum + sizeUnits(operand), 0));
    const result = func.call(0, this, args);
    if (result === undefined) throw new Error(`found no matching overload for "${func.id}"`);
    if (isCelError(result)) throw result;
    return result;
  };
  return func.target === undefined
    ? celFunc(func.name, func.arguments, func.result, impl)
    : celMethod(func.name, func.target, func.arguments, func.result, impl);
}

function sizeUnits(value: CelValue): number {
  if (typeof value === 'string' || value instanceof Uint8Array) return units(value.length);
  if (isCelList(value) || isCelMap(value)) return units(value.size);
  return 0;
}

function units(elements: number): number {
  return Math.ceil(elements / ELEMENTS_PER_UNIT);
}

/**
 * The environment conditions run in: CEL's standard functions, each metered, with matches() on
 * RE2; no extensions. A function given with the same signature replaces the standard one.
 */
export const CEL_ENV: CelEnv = celEnv({
  funcs: [
    ...Array.from(celEnv().funcs)
      .filter((func) => func.name !== 'matches')
      .map(meteredFunction),
    matches,
    iteration,
    range,
  ],
});
