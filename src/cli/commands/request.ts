import type { ParseArgsOptionsConfig } from 'node:util';
import { API_VERSION, type AccessRequest, type AccessRequestSpec } from '../../api/types.ts';
import { flag, positionals, stringList, stringValue, type ParsedArgs } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseTimeout, parseTtl } from '../durations.ts';
import { UsageError } from '../errors.ts';
import { readGrantToken, writeTokenFile } from '../grant-token.ts';
import { ref } from '../output.ts';
import { parseRule, RULE_SYNTAX } from '../rules.ts';
import type { Env } from '../session.ts';
import { progressReporter, untilPhase, waitForRequest } from '../wait-for.ts';
import { generatedName, helpText, podFromEnv, requestCrd, validName } from './common.ts';

export const DEFAULT_WAIT_TIMEOUT = '5m';

export interface RequestOptions {
  name: string;
  spec: AccessRequestSpec;
  wait: boolean;
  timeoutMs: number;
  tokenOut: string | undefined;
}

const PURPOSE = /^[^\p{C}]+$/u;

const options = {
  pod: { type: 'string' },
  job: { type: 'string' },
  purpose: { type: 'string' },
  ttl: { type: 'string' },
  rule: { type: 'string', multiple: true },
  'token-audience': { type: 'string' },
  'token-action': { type: 'string', multiple: true },
  'token-target': { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  'token-out': { type: 'string' },
} satisfies ParseArgsOptionsConfig;

/** Validates `request`'s arguments into what it creates; reads the pod from `env` (the downward API). */
export function parseRequest(parsed: ParsedArgs, env: Env): RequestOptions {
  const { values } = parsed;
  const [nameArg] = positionals(parsed, 'request', ['[NAME]']);
  const pod = stringValue(values, 'pod');
  const job = stringValue(values, 'job');
  if (pod !== undefined && job !== undefined)
    throw new UsageError('give --pod or --job, not both', 'request');
  const envPod = podFromEnv(env);
  const subject: AccessRequestSpec['subject'] =
    job !== undefined ? { jobName: job } : { podName: pod ?? envPod ?? '' };
  if (!subject.jobName && !subject.podName) {
    throw new UsageError(
      'the subject is missing: give --pod or --job (inside a pod, set POD_NAME)',
      'request',
    );
  }
  let name: string;
  if (nameArg !== undefined) name = validName(nameArg, 'request');
  else if (subject.podName) name = generatedName(subject.podName);
  else throw new UsageError('NAME is required for a Job subject', 'request');

  const purpose = stringValue(values, 'purpose');
  if (purpose === undefined || purpose.trim() === '')
    throw new UsageError('--purpose is required', 'request');
  if (purpose.length > 512 || !PURPOSE.test(purpose)) {
    throw new UsageError('--purpose must be 1 to 512 printable characters', 'request');
  }
  const spec: AccessRequestSpec = { subject, purpose };
  const ttl = stringValue(values, 'ttl');
  if (ttl !== undefined) spec.ttl = parseTtl(ttl);
  const rules = stringList(values, 'rule').map(parseRule);
  if (rules.length > 0) spec.permissions = rules;

  const audience = stringValue(values, 'token-audience');
  const actions = stringList(values, 'token-action');
  const target = stringValue(values, 'token-target');
  if (audience !== undefined || actions.length > 0 || target !== undefined) {
    if (audience === undefined || actions.length === 0 || target === undefined) {
      throw new UsageError(
        'a token needs all of --token-audience, --token-action and --token-target',
        'request',
      );
    }
    spec.token = { audience: [audience], actions, target };
  }
  if (!spec.permissions && !spec.token) {
    throw new UsageError(
      'ask for something: give --rule, or --token-audience/--token-action/--token-target',
      'request',
    );
  }

  const wait = flag(values, 'wait');
  const timeout = stringValue(values, 'timeout');
  const tokenOut = stringValue(values, 'token-out');
  if (!wait && timeout !== undefined) throw new UsageError('--timeout needs --wait', 'request');
  if (!wait && tokenOut !== undefined) throw new UsageError('--token-out needs --wait', 'request');
  if (tokenOut !== undefined && !spec.token) {
    throw new UsageError(
      '--token-out needs a token: give --token-audience, --token-action and --token-target',
      'request',
    );
  }
  return { name, spec, wait, timeoutMs: parseTimeout(timeout ?? DEFAULT_WAIT_TIMEOUT), tokenOut };
}

export const request = defineCommand<RequestOptions>({
  name: 'request',
  summary: 'Create an AccessRequest, optionally wait for its grant and write its token',
  help: (prog) =>
    helpText(
      prog,
      `request [NAME] (--pod POD | --job JOB) --purpose TEXT [--rule RULE...] [--token-audience A --token-action X --token-target T] [--ttl 15m] [--wait [--timeout 5m] [--token-out FILE]]`,
      `
Creates an AccessRequest for one pod or Job in the namespace.

Inside a pod (POD_NAME and POD_NAMESPACE set from the downward API), the subject defaults to that
pod and NAME to "<pod>-<random>", so a Job needs only:
  ${prog} request --wait --purpose "OPS-1234 nightly export" --rule 'get secrets/orders-db' \\
    --token-audience orders-api --token-action orders:read --token-target postgres://orders-db/orders \\
    --token-out /var/run/hourglass/token

With --wait it waits until the request is Granted and exits 1 with the reason when it is Denied,
Failed, Revoked or Expired instead, 3 on timeout.`,
      `
  --pod POD               the subject pod (default: $POD_NAME)
  --job JOB               the subject Job
  --purpose TEXT          why the task needs access, as a ticket id and a sentence (required)
  --ttl DURATION          lifetime of one grant, 10s to 24h (default: the policy's defaultTTL)
  --rule RULE             an RBAC rule to grant, repeatable: ${RULE_SYNTAX},
                          as 'get,list secrets/orders-db' or 'get deployments.apps/web',
                          or a PolicyRule as JSON, as '{"apiGroups":[""],"resources":["pods/log"],"verbs":["get"]}'
  --token-audience A      ask for a signed token for the backend A ...
  --token-action X        ... allowing the action X (repeatable) ...
  --token-target T        ... on the literal target T
  --wait                  wait until the request is Granted
  --timeout DURATION      how long --wait waits (default ${DEFAULT_WAIT_TIMEOUT})
  --token-out FILE        with --wait: write the grant's token to FILE (mode 0600)`,
    ),
  options,
  parse: parseRequest,
  async run(options, ctx) {
    const session = ctx.session();
    const { namespace } = session;
    session.refreshCredentials();
    const created = (await session.custom.createNamespacedCustomObject({
      ...requestCrd,
      namespace,
      body: {
        apiVersion: API_VERSION,
        kind: 'AccessRequest',
        metadata: { name: options.name, namespace },
        spec: options.spec,
      },
    })) as AccessRequest;
    ctx.out(`${ref(created)} created`);
    if (!options.wait) return 0;

    const deadline = Date.now() + options.timeoutMs;
    const granted = await waitForRequest(session, namespace, options.name, untilPhase('Granted'), {
      timeoutMs: options.timeoutMs,
      what: 'to be Granted',
      observe: progressReporter(ctx.progress),
    });
    const grant = granted.status?.grant;
    if (options.tokenOut !== undefined) {
      const token = await readGrantToken(session, granted, deadline);
      await writeTokenFile(options.tokenOut, token);
      ctx.progress(`Wrote the token of grant ${grant?.id} to ${options.tokenOut}`);
    }
    ctx.out(`${ref(granted)} granted: grant ${grant?.id} expires at ${grant?.expiresAt}`);
    return 0;
  },
});
