// Runs the CLI in-process with captured output and a connect() that fails the test when called:
// parsing and validation must finish before the CLI touches the cluster.
import { runCli } from '../../../src/cli/program.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  connected: boolean;
}

export async function runOffline(args: string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  let connected = false;
  const code = await runCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    connect: () => {
      connected = true;
      throw new Error('offline: this test must not connect');
    },
  });
  return { code, stdout, stderr, connected };
}
