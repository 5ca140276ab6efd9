import { runVerifyToken } from '../verifier/cli.ts';
import { GLOBAL_HELP, parseCommandArgs, splitCommand } from './args.ts';
import type { CliIo, Command, RunContext } from './command.ts';
import { approve, deny } from './commands/review.ts';
import { renew } from './commands/renew.ts';
import { request } from './commands/request.ts';
import { revoke } from './commands/revoke.ts';
import { status } from './commands/status.ts';
import { wait } from './commands/wait.ts';
import { describeError, ExitCode, UsageError } from './errors.ts';
import { connect, type Session } from './session.ts';

export const COMMANDS: readonly Command[] = [request, status, wait, renew, revoke, approve, deny];
const VERIFY_TOKEN = {
  name: 'verify-token',
  summary: 'Verify a grant token for one action on one target (for backends)',
};

export function programName(env: CliIo['env']): string {
  return env.HOURGLASS_CLI_NAME || 'hourglass';
}

export function topLevelHelp(prog: string): string {
  const commands = [...COMMANDS, VERIFY_TOKEN];
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `${prog}: just-in-time access for Kubernetes workloads, for people and for the workloads themselves.

Usage: ${prog} COMMAND [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Run '${prog} COMMAND --help' for a command's options.

${GLOBAL_HELP}
Inside a pod, set POD_NAME and POD_NAMESPACE from the downward API: "request" then asks for the
pod itself, and the pod's service account token is the identity.

Exit codes: 0 done; 1 the request was Denied, Failed, Revoked or Expired, or the action was
refused; 2 usage error; 3 timeout; 4 API, connection or file error.
`;
}

/** Runs one invocation of the CLI and resolves its exit code. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const prog = programName(io.env);
  const fail = (message: string, code: number) => {
    io.stderr.write(`error: ${message}\n`);
    return code;
  };
  const { command: name, rest, after } = splitCommand(argv);

  if (name === undefined || name === 'help') {
    const topic = name === 'help' ? rest.find((a) => !a.startsWith('-')) : undefined;
    if (topic !== undefined) return runCli([topic, '--help'], io);
    const asked = name === 'help' || rest.includes('--help') || rest.includes('-h');
    if (asked) {
      io.stdout.write(topLevelHelp(prog));
      return ExitCode.ok;
    }
    io.stderr.write(topLevelHelp(prog));
    return fail(
      rest.length > 0 ? `no command given (got ${rest.join(' ')})` : 'no command given',
      ExitCode.usage,
    );
  }
  if (name === VERIFY_TOKEN.name) {
    // verify-token parses its own arguments (its --token-file is the token to verify).
    return runVerifyToken(after, { stdout: io.stdout, stderr: io.stderr, stdin: io.stdin });
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) return fail(`unknown command "${name}" (see '${prog} --help')`, ExitCode.usage);

  let session: Session | undefined;
  try {
    const parsed = parseCommandArgs(command.name, rest, command.options);
    if (parsed.help) {
      io.stdout.write(command.help(prog));
      return ExitCode.ok;
    }
    const run = command.prepare(parsed, io.env);
    const ctx: RunContext = {
      io,
      prog,
      session: () => (session ??= (io.connect ?? connect)(parsed.globals, io.env)),
      out: (line) => io.stdout.write(`${line}\n`),
      progress: (line) => io.stderr.write(`${line}\n`),
      now: () => new Date(),
    };
    return await run(ctx);
  } catch (error) {
    const { exitCode, message } = describeError(error, session?.server);
    const hint =
      error instanceof UsageError ? ` (see '${prog} ${error.command ?? command.name} --help')` : '';
    return fail(`${message}${hint}`, exitCode);
  } finally {
    await session?.close().catch(() => {});
  }
}
