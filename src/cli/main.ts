// The hourglass CLI: `kubectl hourglass ...` for people, `hourglass ...` inside a pod.
// bin/hourglass and bin/kubectl-hourglass run this file with Node 24.
import { runCli } from './program.ts';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  // Opened only when read (verify-token without --token-file): an open stdin keeps the process alive.
  stdin: { [Symbol.asyncIterator]: () => process.stdin[Symbol.asyncIterator]() },
  env: process.env,
});
process.exitCode = code;
// A watch or keep-alive socket still closing must not hold the exit back.
setTimeout(() => process.exit(code), 2_000).unref();
