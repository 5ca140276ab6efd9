// Measures, against the local cluster, how fast /introspect answers and how long a revoked
// grant's token stays active there: pod deleted -> introspection says active: false.
//   npm run bench:introspection -- [--grants 30] [--seconds 5] [--concurrency 8]
// Prints figures; asserts nothing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, fetch } from 'undici';
import { ensureCrds, kubectl, kubectlOk, repoRoot } from '../test/support/cluster.ts';
import { ControllerProcess } from '../test/support/controller.ts';
import {
  api,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  grantObjectsPresent,
  waitForPhase,
} from '../test/support/hourglass.ts';

const { values } = parseArgs({
  options: { grants: { type: 'string' }, seconds: { type: 'string' }, concurrency: { type: 'string' } },
});
const grants = Number(values.grants ?? 30);
const seconds = Number(values.seconds ?? 5);
const concurrency = Number(values.concurrency ?? 8);
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

const namespace = `bench-introspect-${Date.now().toString(36)}`;
await ensureCrds();
await kubectlOk(['create', 'namespace', namespace]);
const controller = await ControllerProcess.start('bench-introspection');
try {
  await createServiceAccount(namespace, 'etl');
  await createServiceAccount(namespace, 'orders-api');
  await createPolicy(namespace, 'batch-readers', { maxActivePerSubject: 10_000 });
  const callerToken = (await kubectlOk(['-n', namespace, 'create', 'token', 'orders-api'])).trim();
  const dispatcher = new Agent({
    connect: { ca: readFileSync(path.join(repoRoot, '.cluster', 'pki', 'ca.crt')) },
  });
  const introspectUrl = `${controller.url('https')}/introspect`;
  const introspect = async (token: string) => {
    const response = await fetch(introspectUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${callerToken}` },
      body: new URLSearchParams({ token }),
      dispatcher,
    });
    return ((await response.json()) as { active: boolean }).active;
  };

  const tokens: string[] = [];
  for (let i = 0; i < grants; i++) {
    await createPod(namespace, `p${i}`, 'etl');
    await createRequest(namespace, `r${i}`, { subject: { podName: `p${i}` } });
  }
  for (let i = 0; i < grants; i++) {
    await waitForPhase(namespace, `r${i}`, 'Granted');
    const { secret } = await grantObjectsPresent(namespace, `r${i}`);
    tokens.push(Buffer.from(secret?.data?.token ?? '', 'base64').toString());
  }

  // Throughput: `concurrency` callers introspecting active tokens for `seconds`.
  let answered = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; Date.now() < until; i += concurrency) {
        if (!(await introspect(tokens[i % tokens.length]!)))
          throw new Error('an active token was reported inactive');
        answered++;
      }
    }),
  );
  console.log(
    `introspection: ${(answered / seconds).toFixed(0)} answers/s at concurrency ${concurrency} (${answered} in ${seconds}s)`,
  );

  // Revocation to inactive: delete each pod, then poll its token every 10 ms.
  const delays: number[] = [];
  for (let i = 0; i < grants; i++) {
    const deletedAt = Date.now();
    await api().core.deleteNamespacedPod({ namespace, name: `p${i}`, gracePeriodSeconds: 0 });
    while (await introspect(tokens[i]!)) await new Promise((r) => setTimeout(r, 10));
    delays.push(Date.now() - deletedAt);
  }
  delays.sort((a, b) => a - b);
  console.log(
    `pod deleted -> token inactive at /introspect: p50 ${percentile(delays, 50)} ms, p99 ${percentile(delays, 99)} ms, max ${delays.at(-1)} ms (n=${grants})`,
  );
  console.log(
    `BENCH_INTROSPECTION ${JSON.stringify({ answersPerSecond: answered / seconds, concurrency, revokeToInactiveMs: { p50: percentile(delays, 50), p99: percentile(delays, 99), max: delays.at(-1) } })}`,
  );
} finally {
  await controller.stop();
  await kubectl(['delete', 'namespace', namespace, '--wait=false']);
}
