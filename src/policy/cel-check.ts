import { CelScalar, type CelEnv, type CelFunc } from '@bufbuild/cel';
import { compileRegex, forEachChild, type Expr } from './cel-env.ts';

type Call = Extract<Expr['exprKind'], { case: 'callExpr' }>['value'];

/** Where each node of an expression starts, for messages. */
export interface SourcePositions {
  expression: string;
  /** Code point offset of each node, by node id. */
  positions: Readonly<Record<string, number>>;
}

// Calls the planner evaluates itself rather than through a function.
const SPECIAL_FORMS: ReadonlySet<string> = new Set([
  '_&&_',
  '_||_',
  '_?_:_',
  '_[_]',
  '_[?_]',
  '_?._',
  '@not_strictly_false',
  '__not_strictly_false__',
]);
const BOOLEAN_FORMS: ReadonlySet<string> = new Set([
  '_&&_',
  '_||_',
  '@not_strictly_false',
  '__not_strictly_false__',
]);

// Type names usable as values, as in `type(x) == string`.
const TYPE_NAMES: ReadonlySet<string> = new Set([
  'bool',
  'bytes',
  'double',
  'int',
  'list',
  'map',
  'null_type',
  'string',
  'type',
  'uint',
  'google',
]);

/**
 * What can be known wrong about a parsed condition before it runs, as @bufbuild/cel has no type
 * checker: an undeclared variable, an unknown function or a call no overload takes, a constant
 * regular expression RE2 refuses, a result that cannot be a bool. Variables are dynamic, so the
 * rest (a missing field, a wrong operand type) is only found when the condition runs.
 */
export function checkCondition(
  expr: Expr,
  env: CelEnv,
  variables: ReadonlySet<string>,
  source: SourcePositions,
): string[] {
  const errors: string[] = [];
  const report = (node: Expr, message: string) => errors.push(`${message}${located(node, source)}`);
  checkNode(expr, env, variables, report);
  const result = resultType(expr, env);
  if (result !== undefined) errors.push(`the expression returns ${result}, not bool`);
  return errors;
}

function checkNode(
  expr: Expr,
  env: CelEnv,
  scope: ReadonlySet<string>,
  report: (node: Expr, message: string) => void,
): void {
  const kind = expr.exprKind;
  switch (kind.case) {
    case 'identExpr':
      if (!scope.has(kind.value.name) && !TYPE_NAMES.has(kind.value.name)) {
        report(expr, `undeclared reference to "${kind.value.name}"`);
      }
      return;
    case 'callExpr': {
      const problem = callProblem(kind.value, env);
      if (problem !== undefined) report(expr, problem);
      break;
    }
    case 'comprehensionExpr': {
      const { iterVar, iterVar2, accuVar, iterRange, accuInit, loopCondition, loopStep, result } = kind.value;
      const inner = new Set([...scope, iterVar, iterVar2, accuVar].filter((name) => name !== ''));
      for (const child of [iterRange, accuInit]) if (child) checkNode(child, env, scope, report);
      for (const child of [loopCondition, loopStep, result]) if (child) checkNode(child, env, inner, report);
      return;
    }
  }
  forEachChild(expr, (child) => checkNode(child, env, scope, report));
}

function callProblem(call: Call, env: CelEnv): string | undefined {
  if (SPECIAL_FORMS.has(call.function)) return undefined;
  const qualified = call.target && qualifiedName(call.target);
  if (qualified !== undefined && env.funcs.find(`${qualified}.${call.function}`) !== undefined)
    return undefined;
  const group = env.funcs.find(call.function);
  if (group === undefined) return `undeclared reference to function "${call.function}"`;
  if (overloads(group, call).length === 0) {
    const form = call.target === undefined ? 'a function' : 'a method';
    return `"${call.function}" has no overload called as ${form} with ${call.args.length} argument(s)`;
  }
  if (call.function === 'matches') {
    const pattern = call.target === undefined ? call.args[1] : call.args[0];
    const constant = pattern?.exprKind.case === 'constExpr' ? pattern.exprKind.value.constantKind : undefined;
    if (constant?.case === 'stringValue') {
      try {
        compileRegex(constant.value);
      } catch (error) {
        return `invalid regular expression: ${(error as Error).message}`;
      }
    }
  }
  return undefined;
}

function overloads(group: Iterable<CelFunc>, call: Call): CelFunc[] {
  return Array.from(group).filter(
    (func) =>
      (func.target === undefined) === (call.target === undefined) &&
      func.arguments.length === call.args.length,
  );
}

// The type an expression surely returns when it is not bool, or undefined when it is or may be bool.
function resultType(expr: Expr, env: CelEnv): string | undefined {
  const kind = expr.exprKind;
  switch (kind.case) {
    case 'constExpr': {
      const constant = kind.value.constantKind.case;
      return constant === 'boolValue' || constant === undefined ? undefined : constantTypes[constant];
    }
    case 'listExpr':
      return 'list';
    case 'structExpr':
      return kind.value.messageName === '' ? 'map' : kind.value.messageName;
    case 'comprehensionExpr': {
      const { result, accuVar, accuInit } = kind.value;
      if (result?.exprKind.case === 'identExpr' && result.exprKind.value.name === accuVar) {
        return accuInit && resultType(accuInit, env);
      }
      return result && resultType(result, env);
    }
    case 'callExpr': {
      const call = kind.value;
      if (BOOLEAN_FORMS.has(call.function)) return undefined;
      if (call.function === '_?_:_') {
        const [, then, otherwise] = call.args.map((arg) => resultType(arg, env));
        return then !== undefined && otherwise !== undefined ? then : undefined;
      }
      const group = SPECIAL_FORMS.has(call.function) ? undefined : env.funcs.find(call.function);
      const results = group === undefined ? [] : overloads(group, call).map((func) => func.result);
      const maybeBool = results.some((type) => type === CelScalar.BOOL || type === CelScalar.DYN);
      return results.length === 0 || maybeBool ? undefined : results[0]?.name;
    }
    default:
      return undefined;
  }
}

const constantTypes = {
  nullValue: 'null_type',
  int64Value: 'int',
  uint64Value: 'uint',
  doubleValue: 'double',
  stringValue: 'string',
  bytesValue: 'bytes',
  durationValue: 'google.protobuf.Duration',
  timestampValue: 'google.protobuf.Timestamp',
} as const;

// "a.b.c" for a chain of field selections on an identifier, as a qualified function name's prefix.
function qualifiedName(expr: Expr): string | undefined {
  const kind = expr.exprKind;
  if (kind.case === 'identExpr') return kind.value.name;
  if (kind.case !== 'selectExpr' || kind.value.testOnly || kind.value.operand === undefined) return undefined;
  const operand = qualifiedName(kind.value.operand);
  return operand === undefined ? undefined : `${operand}.${kind.value.field}`;
}

function located(expr: Expr, { expression, positions }: SourcePositions): string {
  const offset = positions[String(expr.id)];
  if (offset === undefined) return '';
  const before = Array.from(expression).slice(0, offset);
  const line = before.filter((character) => character === '\n').length + 1;
  const column = before.length - before.lastIndexOf('\n');
  return line === 1 ? ` (at column ${column})` : ` (at line ${line}, column ${column})`;
}
