import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { annotations, TERMINAL_PHASES } from '../../api/types.ts';
import { flag, positionals, stringValue } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseTimeout } from '../durations.ts';
import { UsageError } from '../errors.ts';
import { describePhase, ref } from '../output.ts';
import { phaseOf, progressReporter, waitForRequest } from '../wait-for.ts';
import { helpText, readRequest, requestCrd, validName } from './common.ts';
import { DEFAULT_WAIT_TIMEOUT } from './request.ts';

export interface RevokeOptions {
  name: string;
  reason: string;
  wait: boolean;
  timeoutMs: number;
}

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export const revoke = defineCommand<RevokeOptions>({
  name: 'revoke',
  summary: 'End the access of an AccessRequest now',
  help: (prog) =>
    helpText(
      prog,
      `revoke NAME --reason TEXT [--wait [--timeout ${DEFAULT_WAIT_TIMEOUT}]]`,
      `
Sets the annotation hourglass.dev/revoke to the reason: the controller deletes the grant and the
request ends Revoked with reason Manual. A request that has already ended is left as it is.`,
      `
  --reason TEXT           why, for the audit log (required)
  --wait                  wait until the request has ended
  --timeout DURATION      how long --wait waits (default ${DEFAULT_WAIT_TIMEOUT})`,
    ),
  options: {
    reason: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  },
  parse(parsed) {
    const [name] = positionals(parsed, 'revoke', ['NAME']);
    if (name === undefined) throw new UsageError('NAME is required', 'revoke');
    const reason = stringValue(parsed.values, 'reason');
    if (reason === undefined || reason.trim() === '') throw new UsageError('--reason is required', 'revoke');
    const wait = flag(parsed.values, 'wait');
    const timeout = stringValue(parsed.values, 'timeout');
    if (!wait && timeout !== undefined) throw new UsageError('--timeout needs --wait', 'revoke');
    return {
      name: validName(name, 'revoke'),
      reason,
      wait,
      timeoutMs: parseTimeout(timeout ?? DEFAULT_WAIT_TIMEOUT),
    };
  },
  async run({ name, reason, wait, timeoutMs }, ctx) {
    const session = ctx.session();
    const { namespace } = session;
    const current = await readRequest(session, namespace, name);
    if (TERMINAL_PHASES.has(phaseOf(current))) {
      ctx.out(`${ref(current)} has already ended: ${describePhase(current)}`);
      return 0;
    }
    await session.custom.patchNamespacedCustomObject(
      {
        ...requestCrd,
        namespace,
        name,
        body: { metadata: { annotations: { [annotations.revoke]: reason } } },
      },
      mergePatch,
    );
    ctx.out(`${ref(current)} revocation requested`);
    if (!wait) return 0;
    const ended = await waitForRequest(
      session,
      namespace,
      name,
      (r) => (TERMINAL_PHASES.has(phaseOf(r)) ? r : undefined),
      { timeoutMs, what: 'to end', observe: progressReporter(ctx.progress) },
    );
    ctx.out(`${ref(ended)} is ${describePhase(ended)}`);
    return 0;
  },
});
