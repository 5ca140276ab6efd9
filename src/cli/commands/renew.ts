import { annotations, TERMINAL_PHASES, type AccessRequest } from '../../api/types.ts';
import { flag, positionals, stringValue } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseTimeout } from '../durations.ts';
import { Refused, UsageError } from '../errors.ts';
import { readGrantToken, writeTokenFile } from '../grant-token.ts';
import { describePhase, explainPhase, findCondition, ref } from '../output.ts';
import { phaseOf, progressReporter, waitForRequest, type Check } from '../wait-for.ts';
import {
  helpText,
  podFromEnv,
  readRequest,
  requestCrd,
  resolveRequestName,
  uniqueRenewValue,
  validName,
} from './common.ts';
import { DEFAULT_WAIT_TIMEOUT } from './request.ts';
import { mergePatch } from './revoke.ts';

export interface RenewOptions {
  name: string | undefined;
  pod: string | undefined;
  wait: boolean;
  timeoutMs: number;
  tokenOut: string | undefined;
}

/**
 * Done when the controller honoured this renew value with a new grant; Refused when it honoured
 * it without one (the policy refused the renewal) or the request ended.
 */
export function untilRenewed(value: string, previousGrantId: string | undefined): Check<AccessRequest> {
  return (request) => {
    const status = request.status ?? {};
    if (TERMINAL_PHASES.has(phaseOf(request)))
      throw new Refused(`${ref(request)} is ${explainPhase(request)}`);
    if (status.lastRenewal !== value) return undefined;
    if (status.grant?.id && status.grant.id !== previousGrantId) return request;
    const refusal = findCondition(status.conditions, 'Renewed');
    throw new Refused(
      `renewal of ${ref(request)} was refused${refusal?.status === 'False' ? `: ${refusal.message}` : ''}`,
    );
  };
}

export const renew = defineCommand<RenewOptions>({
  name: 'renew',
  summary: 'Ask for a fresh grant (new id, token and expiry) before the current one expires',
  help: (prog) =>
    helpText(
      prog,
      `renew [NAME] [--wait [--timeout ${DEFAULT_WAIT_TIMEOUT}] [--token-out FILE]]`,
      `
Sets the annotation hourglass.dev/renew to a new value. The policy is evaluated again; on
success the old grant is made inactive and a fresh one replaces it. Only a Granted request can
be renewed. Inside a pod (POD_NAME set), NAME defaults to the pod's one Granted request.
With --wait, exits 1 when the renewal is refused or the request ends, 3 on timeout.`,
      `
  --wait                  wait until the fresh grant is issued
  --timeout DURATION      how long --wait waits (default ${DEFAULT_WAIT_TIMEOUT})
  --token-out FILE        with --wait: write the fresh grant's token to FILE (mode 0600)`,
    ),
  options: {
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    'token-out': { type: 'string' },
  },
  parse(parsed, env) {
    const [name] = positionals(parsed, 'renew', ['[NAME]']);
    const pod = podFromEnv(env);
    if (name === undefined && pod === undefined) {
      throw new UsageError("NAME is required (inside a pod, POD_NAME finds the pod's request)", 'renew');
    }
    const wait = flag(parsed.values, 'wait');
    const timeout = stringValue(parsed.values, 'timeout');
    const tokenOut = stringValue(parsed.values, 'token-out');
    if (!wait && timeout !== undefined) throw new UsageError('--timeout needs --wait', 'renew');
    if (!wait && tokenOut !== undefined) throw new UsageError('--token-out needs --wait', 'renew');
    return {
      name: name === undefined ? undefined : validName(name, 'renew'),
      pod,
      wait,
      timeoutMs: parseTimeout(timeout ?? DEFAULT_WAIT_TIMEOUT),
      tokenOut,
    };
  },
  async run(options, ctx) {
    const session = ctx.session();
    const { namespace } = session;
    const name = await resolveRequestName(session, namespace, options.name, options.pod, 'renew');
    const current = await readRequest(session, namespace, name);
    if (options.tokenOut !== undefined && !current.spec.token) {
      throw new UsageError(`--token-out: ${ref(current)} asks for no token`, 'renew');
    }
    if (phaseOf(current) !== 'Granted') {
      throw new Refused(`only a Granted request can be renewed; ${ref(current)} is ${explainPhase(current)}`);
    }
    const value = uniqueRenewValue(ctx.now());
    const deadline = Date.now() + options.timeoutMs;
    await session.custom.patchNamespacedCustomObject(
      { ...requestCrd, namespace, name, body: { metadata: { annotations: { [annotations.renew]: value } } } },
      mergePatch,
    );
    ctx.out(`${ref(current)} renewal requested (${annotations.renew}=${value})`);
    if (!options.wait) return 0;

    const renewed = await waitForRequest(
      session,
      namespace,
      name,
      untilRenewed(value, current.status?.grant?.id),
      {
        timeoutMs: options.timeoutMs,
        what: 'to be renewed',
        observe: progressReporter(ctx.progress),
      },
    );
    const grant = renewed.status?.grant;
    if (options.tokenOut !== undefined) {
      const token = await readGrantToken(session, renewed, deadline);
      await writeTokenFile(options.tokenOut, token);
      ctx.progress(`Wrote the token of grant ${grant?.id} to ${options.tokenOut}`);
    }
    ctx.out(
      `${ref(renewed)} renewed: grant ${grant?.id} expires at ${grant?.expiresAt} (${describePhase(renewed)})`,
    );
    return 0;
  },
});
