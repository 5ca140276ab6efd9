import type { ParseArgsOptionsConfig } from 'node:util';
import type { GlobalOptions, ParsedArgs } from './args.ts';
import type { Env, Session } from './session.ts';

/** Where the CLI reads and writes; the process in production, fakes in tests. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  stdin?: AsyncIterable<string | Uint8Array>;
  env: Env;
  /** Connects to the cluster; tests that must not reach it pass one that throws. */
  connect?: (globals: GlobalOptions, env: Env) => Session;
}

/** What a command runs with once its arguments are valid. */
export interface RunContext {
  io: CliIo;
  /** The program as the user invoked it: "hourglass" or "kubectl hourglass". */
  prog: string;
  /** Connects on first use; the session is closed when the command ends. */
  session(): Session;
  /** Prints one line on stdout. */
  out(line: string): void;
  /** Prints one progress line on stderr. */
  progress(line: string): void;
  now(): Date;
}

/** One subcommand: pure parsing and validation first, then the run against the cluster. */
export interface CommandSpec<T> {
  name: string;
  summary: string;
  /** The full help text; `prog` is how the program was invoked. */
  help(prog: string): string;
  options: ParseArgsOptionsConfig;
  /** Validates the arguments into what `run` needs; throws UsageError. Reads only `env`, never the cluster. */
  parse(parsed: ParsedArgs, env: Env): T;
  run(options: T, ctx: RunContext): Promise<number>;
}

/** A command whose options type is hidden, so that commands can be listed together. */
export interface Command {
  name: string;
  summary: string;
  help(prog: string): string;
  options: ParseArgsOptionsConfig;
  prepare(parsed: ParsedArgs, env: Env): (ctx: RunContext) => Promise<number>;
}

export function defineCommand<T>(spec: CommandSpec<T>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    options: spec.options,
    prepare(parsed, env) {
      const options = spec.parse(parsed, env);
      return (ctx) => spec.run(options, ctx);
    },
  };
}
