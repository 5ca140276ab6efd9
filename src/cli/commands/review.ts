import type { AccessRequest, Condition } from '../../api/types.ts';
import { isConflict } from '../../k8s/errors.ts';
import { positionals, stringValue } from '../args.ts';
import { defineCommand, type Command } from '../command.ts';
import { Refused, UsageError } from '../errors.ts';
import { explainPhase, findCondition, ref } from '../output.ts';
import { phaseOf } from '../wait-for.ts';
import { helpText, readRequest, validName } from './common.ts';

export interface ReviewOptions {
  name: string;
  message: string | undefined;
}

type Verdict = 'Approved' | 'Denied';
const CONFLICT_RETRIES = 5;

/** The condition an approver adds: the webhook merges it into status and records who sent it. */
export function verdictCondition(
  verdict: Verdict,
  message: string,
  request: AccessRequest,
  now: Date,
): Condition {
  return {
    type: verdict,
    status: 'True',
    reason: verdict === 'Approved' ? 'ApprovedByUser' : 'DeniedByUser',
    message,
    lastTransitionTime: now.toISOString().replace(/\.\d+Z$/, 'Z'),
    ...(request.metadata.generation === undefined ? {} : { observedGeneration: request.metadata.generation }),
  };
}

function reviewCommand(verdict: Verdict): Command {
  const command = verdict === 'Approved' ? 'approve' : 'deny';
  return defineCommand<ReviewOptions>({
    name: command,
    summary: `${verdict === 'Approved' ? 'Approve' : 'Deny'} an AccessRequest that awaits approval`,
    help: (prog) =>
      helpText(
        prog,
        `${command} NAME [--message TEXT]`,
        `
Adds one ${verdict} condition to the status of a request in AwaitingApproval, as an approver the
request's Manual policy lists. Admission records who decided, when and under which policy.`,
        `
  --message TEXT          a note for the requester and the audit log`,
      ),
    options: { message: { type: 'string' } },
    parse(parsed) {
      const [name] = positionals(parsed, command, ['NAME']);
      if (name === undefined) throw new UsageError('NAME is required', command);
      return { name: validName(name, command), message: stringValue(parsed.values, 'message') };
    },
    async run({ name, message }, ctx) {
      const session = ctx.session();
      for (let attempt = 1; ; attempt++) {
        const request = await readRequest(session, session.namespace, name);
        const decided =
          findCondition(request.status?.conditions, 'Approved') ??
          findCondition(request.status?.conditions, 'Denied');
        if (phaseOf(request) !== 'AwaitingApproval') {
          throw new Refused(
            `${ref(request)} does not await approval: it is ${explainPhase(request)}${decided ? ` (already ${decided.type})` : ''}`,
          );
        }
        const condition = verdictCondition(
          verdict,
          message ?? `${verdict} with ${ctx.prog}.`,
          request,
          ctx.now(),
        );
        try {
          // Merge patch of the status subresource: the existing conditions plus the new one, at
          // the resourceVersion they were read at.
          await session.requests.patchStatus(request, {
            conditions: [...(request.status?.conditions ?? []), condition],
          });
          ctx.out(`${ref(request)} ${verdict.toLowerCase()}`);
          return 0;
        } catch (error) {
          if (!isConflict(error) || attempt >= CONFLICT_RETRIES) throw error;
        }
      }
    },
  });
}

export const approve = reviewCommand('Approved');
export const deny = reviewCommand('Denied');
