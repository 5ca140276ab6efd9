import { ApiException } from '@kubernetes/client-node';
import { statusCode, statusMessage } from '../k8s/errors.ts';

/** The CLI's exit codes: scripts and Jobs branch on them, so they are part of its contract. */
export const ExitCode = {
  ok: 0,
  /** The request was Denied, Failed, Revoked or Expired, or an action on it was refused. */
  refused: 1,
  usage: 2,
  timeout: 3,
  /** The API server could not be reached or answered with an error; or a local file could not be written. */
  apiError: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line on stderr and exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The command line is wrong: exit 2. `command` names the help to point at. */
export class UsageError extends CliError {
  command: string | undefined;

  constructor(message: string, command?: string) {
    super(ExitCode.usage, message);
    this.command = command;
  }
}

/** The request reached a state in which what was asked cannot happen: exit 1. */
export class Refused extends CliError {
  constructor(message: string) {
    super(ExitCode.refused, message);
  }
}

export class TimedOut extends CliError {
  constructor(message: string) {
    super(ExitCode.timeout, message);
  }
}

/**
 * One line for any error: the server's message for an API error, the cause for a connection
 * error. Never a stack, never a request header (so never a token).
 */
export function describeError(error: unknown, server?: string): { exitCode: ExitCode; message: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, message: error.message };
  if (error instanceof ApiException) {
    const code = statusCode(error);
    const message = statusMessage(error);
    if (code === 401) {
      return {
        exitCode: ExitCode.apiError,
        message: `the API server refused the credentials (${message}); check the kubeconfig or the token file`,
      };
    }
    return { exitCode: ExitCode.apiError, message };
  }
  const cause = (error as { cause?: unknown } | null)?.cause;
  const where = server ? ` at ${server}` : '';
  if (cause instanceof Error) {
    return { exitCode: ExitCode.apiError, message: `cannot reach the API server${where}: ${cause.message}` };
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return { exitCode: ExitCode.apiError, message: `cannot reach the API server${where}` };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: ExitCode.apiError, message: oneLine(message) };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
