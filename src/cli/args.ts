import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { UsageError } from './errors.ts';

/** Options every command takes, before or after the command name, as kubectl's global flags. */
export const GLOBAL_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsOptionsConfig;

export interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  /** A bearer token file (a pod-bound service account token) to authenticate with instead of the kubeconfig user. */
  tokenFile?: string;
}

export const GLOBAL_HELP = `Global options:
  --kubeconfig FILE       the kubeconfig (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)
  --context NAME          the kubeconfig context
  -n, --namespace NS      the namespace (default: $POD_NAMESPACE, else the context's, else "default")
  --token-file FILE       authenticate with this bearer token (a pod's service account token)
                          against the kubeconfig's cluster (default: $HOURGLASS_TOKEN_FILE)
  -h, --help              print help
`;

const valueTakingGlobals = new Set(
  Object.entries(GLOBAL_OPTIONS).flatMap(([name, option]) =>
    option.type === 'string' ? [`--${name}`, ...('short' in option ? [`-${option.short}`] : [])] : [],
  ),
);

/**
 * Finds the command name: the first argument that is neither an option nor the value of a
 * global option. The rest are the command's arguments.
 */
export function splitCommand(argv: readonly string[]): {
  command: string | undefined;
  rest: string[];
  /** The arguments after the command name. */
  after: string[];
} {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (arg.startsWith('-')) {
      if (valueTakingGlobals.has(arg)) i++;
      continue;
    }
    return { command: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)], after: argv.slice(i + 1) };
  }
  return { command: undefined, rest: [...argv], after: [] };
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  values: Values;
  positionals: string[];
  globals: GlobalOptions;
  help: boolean;
}

/** Parses a command's arguments together with the global options; throws UsageError. */
export function parseCommandArgs(
  command: string,
  args: readonly string[],
  options: ParseArgsOptionsConfig,
): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...GLOBAL_OPTIONS, ...options },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error), command);
  }
  const values = parsed.values as Values;
  const globals: GlobalOptions = {};
  const kubeconfig = stringValue(values, 'kubeconfig');
  const context = stringValue(values, 'context');
  const namespace = stringValue(values, 'namespace');
  const tokenFile = stringValue(values, 'token-file');
  if (kubeconfig !== undefined) globals.kubeconfig = kubeconfig;
  if (context !== undefined) globals.context = context;
  if (namespace !== undefined) globals.namespace = namespace;
  if (tokenFile !== undefined) globals.tokenFile = tokenFile;
  return { values, positionals: parsed.positionals, globals, help: values.help === true };
}

/** parseArgs' messages are long and name JavaScript; these are one short line. */
function parseArgsMessage(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const option = /'(?:-\w, )?(--?[^' ,]+)/.exec(message)?.[1];
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option '${option ?? message}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing|ambiguous/.test(message)
        ? `option '${option}' needs a value`
        : `option '${option}' takes no value`;
    default:
      return message.split('\n')[0] ?? message;
  }
}

export function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function stringList(values: Values, name: string): string[] {
  const value = values[name];
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
}

export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

/** At most `max` positional arguments, named in `names` for the message. */
export function positionals(parsed: ParsedArgs, command: string, names: string[]): (string | undefined)[] {
  if (parsed.positionals.length > names.length) {
    const extra = parsed.positionals[names.length];
    throw new UsageError(
      names.length === 0
        ? `"${command}" takes no arguments, got "${extra}"`
        : `unexpected argument "${extra}": "${command}" takes ${names.join(' ')}`,
      command,
    );
  }
  return names.map((_, i) => parsed.positionals[i]);
}
