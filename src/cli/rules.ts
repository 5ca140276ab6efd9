import type { RequestedRule } from '../api/types.ts';
import { UsageError } from './errors.ts';

const VERB = /^([a-z]+|\*)$/;
const RESOURCE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\*)$/;
const GROUP = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\*)$/;
const NAME = /^[^\s\p{C}*]+$/u;

export const RULE_SYNTAX = 'VERBS RESOURCE[.GROUP][/NAME[,NAME...]]';

/**
 * Parses one `--rule`: `VERBS RESOURCE[.GROUP][/NAME[,NAME...]]`, as `get,list secrets/orders-db`
 * or `get,watch deployments.apps/web`, the way kubectl writes TYPE.GROUP/NAME; or a PolicyRule
 * as JSON, for what the short form cannot say (subresources, several resources).
 */
export function parseRule(text: string): RequestedRule {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return parseJsonRule(trimmed);
  const fields = trimmed.split(/\s+/);
  if (fields.length !== 2 || !fields[0] || !fields[1]) {
    throw new UsageError(`--rule "${text}" must be ${RULE_SYNTAX}, as 'get,list secrets/orders-db'`);
  }
  const [verbList, target] = fields as [string, string];
  const verbs = verbList.split(',');
  for (const verb of verbs) {
    if (!VERB.test(verb))
      throw new UsageError(`--rule "${text}": "${verb}" is not a verb (as get, list, watch)`);
  }
  const slash = target.indexOf('/');
  const type = slash < 0 ? target : target.slice(0, slash);
  const dot = type.indexOf('.');
  const resource = dot < 0 ? type : type.slice(0, dot);
  const group = dot < 0 ? '' : type.slice(dot + 1);
  if (!RESOURCE.test(resource)) {
    throw new UsageError(`--rule "${text}": "${resource}" is not a resource (as secrets, deployments.apps)`);
  }
  if (group !== '' && !GROUP.test(group))
    throw new UsageError(`--rule "${text}": "${group}" is not an API group`);
  const rule: RequestedRule = { apiGroups: [group], resources: [resource], verbs };
  if (slash >= 0) {
    const names = target.slice(slash + 1).split(',');
    for (const name of names) {
      if (name.includes('/')) {
        throw new UsageError(
          `--rule "${text}": write subresources such as pods/log as a JSON rule, as '{"apiGroups":[""],"resources":["pods/log"],"verbs":["get"]}'`,
        );
      }
      if (!NAME.test(name)) {
        throw new UsageError(`--rule "${text}": "${name}" is not an object name (literal, no "*")`);
      }
    }
    rule.resourceNames = names;
  }
  return rule;
}

function parseJsonRule(text: string): RequestedRule {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--rule is not valid JSON: ${(error as Error).message}`);
  }
  const rule = value as Record<string, unknown>;
  const stringList = (key: string, required: boolean): string[] | undefined => {
    const list = rule[key];
    if (list === undefined && !required) return undefined;
    if (
      !Array.isArray(list) ||
      (required && list.length === 0) ||
      !list.every((x) => typeof x === 'string')
    ) {
      throw new UsageError(
        `--rule ${text}: "${key}" must be a ${required ? 'non-empty ' : ''}list of strings`,
      );
    }
    return list as string[];
  };
  const unknown = Object.keys(rule).filter(
    (k) => !['apiGroups', 'resources', 'resourceNames', 'verbs'].includes(k),
  );
  if (unknown.length > 0) {
    throw new UsageError(
      `--rule ${text}: unknown field "${unknown[0]}" (a rule has apiGroups, resources, resourceNames, verbs)`,
    );
  }
  const parsed: RequestedRule = {
    apiGroups: stringList('apiGroups', true) ?? [],
    resources: stringList('resources', true) ?? [],
    verbs: stringList('verbs', true) ?? [],
  };
  const resourceNames = stringList('resourceNames', false);
  if (resourceNames?.some((name) => name.includes('*'))) {
    throw new UsageError(`--rule ${text}: resourceNames must be literal names, without "*"`);
  }
  if (resourceNames !== undefined) parsed.resourceNames = resourceNames;
  return parsed;
}

/** The short form of a rule where it has one, else its JSON. */
export function formatRule(rule: RequestedRule): string {
  const simple =
    rule.apiGroups.length === 1 && rule.resources.length === 1 && !rule.resources[0]?.includes('/');
  if (!simple) return JSON.stringify(rule);
  const group = rule.apiGroups[0] ? `.${rule.apiGroups[0]}` : '';
  const names = rule.resourceNames?.length ? `/${rule.resourceNames.join(',')}` : '';
  return `${rule.verbs.join(',')} ${rule.resources[0]}${group}${names}`;
}
