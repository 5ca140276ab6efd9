import type { JSONSchema } from './schema.ts';

/**
 * The first size, count, type or presence rule of the schema that the value breaks, as
 * `spec.permissions[0].apiGroups: at most 16 items (got 30000)`, or undefined. The same rules the
 * API server applies after admission, checked before it at a cost bounded by the schema: a list
 * longer than its maxItems or a map with more than maxProperties entries is refused without a
 * look at its entries, so no entry beyond a limit is ever visited. Patterns, formats, enums and
 * CEL rules are left to the API server.
 *
 * With `old` (an update), a rule broken by a value equal to the stored one is let through, as the
 * API server's validation ratcheting does: an object stored under looser limits stays writable.
 */
export function firstBoundsViolation(schema: JSONSchema, value: unknown, old?: unknown): string | undefined {
  return check(schema, value, '', old === undefined ? undefined : { value: old });
}

/** The stored counterpart of the value being checked, on an update (its `value` may be absent). */
interface Stored {
  value: unknown;
}

function check(
  schema: JSONSchema,
  value: unknown,
  path: string,
  stored: Stored | undefined,
): string | undefined {
  if (value === undefined || value === null) return undefined;
  const refusal = ownViolation(schema, value);
  if (refusal !== undefined) {
    return stored && JSON.stringify(value) === JSON.stringify(stored.value)
      ? undefined
      : `${path || '<root>'}: ${refusal}`;
  }
  const at = (key: string | number): Stored | undefined =>
    stored && { value: (stored.value as Record<string | number, unknown> | null | undefined)?.[key] };
  if (schema.type === 'array' && schema.items) {
    const items = value as unknown[];
    for (let i = 0; i < items.length; i++) {
      const violation = check(schema.items, items[i], `${path}[${i}]`, at(i));
      if (violation) return violation;
    }
  } else if (schema.type === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) {
      const missing = (v: unknown) => v === undefined || v === null;
      if (missing(object[name]) && !(stored && missing(at(name)?.value)))
        return `${join(path, name)}: required`;
    }
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      const violation = check(property, object[name], join(path, name), at(name));
      if (violation) return violation;
    }
    if (typeof schema.additionalProperties === 'object') {
      for (const name in object) {
        if (!Object.hasOwn(object, name) || schema.properties?.[name]) continue;
        const violation = check(schema.additionalProperties, object[name], `${path}[${name}]`, at(name));
        if (violation) return violation;
      }
    }
  }
  return undefined;
}

/** What is wrong with this value itself, not looking into its items or properties. */
function ownViolation(schema: JSONSchema, value: unknown): string | undefined {
  switch (schema.type) {
    case 'string': {
      if (typeof value !== 'string') return `must be a string (got ${kindOf(value)})`;
      const max = schema.maxLength;
      // The API server counts characters (code points); a UTF-16 length within the limit is enough.
      if (max !== undefined && value.length > max) {
        const characters = codePoints(value);
        if (characters > max) return `at most ${quantity(max, 'character')} (got ${characters})`;
      }
      return undefined;
    }
    case 'integer':
      return Number.isInteger(value) ? undefined : `must be an integer (got ${kindOf(value)})`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be a boolean (got ${kindOf(value)})`;
    case 'array': {
      if (!Array.isArray(value)) return `must be a list (got ${kindOf(value)})`;
      const max = schema.maxItems;
      return max !== undefined && value.length > max
        ? `at most ${quantity(max, 'item')} (got ${value.length})`
        : undefined;
    }
    case 'object': {
      if (kindOf(value) !== 'object') return `must be an object (got ${kindOf(value)})`;
      const max = schema.maxProperties;
      if (max === undefined) return undefined;
      let count = 0;
      for (const name in value as object) {
        if (Object.hasOwn(value as object, name) && ++count > max)
          return `at most ${quantity(max, 'entry', 'entries')} (got more)`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

const quantity = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (value === null) return 'null';
  return typeof value === 'number' && !Number.isInteger(value) ? 'number' : typeof value;
}

function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A low surrogate completes the pair its high surrogate already counted.
    if (unit < 0xdc00 || unit > 0xdfff || i === 0 || !isHigh(text.charCodeAt(i - 1))) count++;
  }
  return count;
}
const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);
