import type { Phase } from '../../api/types.ts';
import { positionals, stringValue } from '../args.ts';
import { defineCommand } from '../command.ts';
import { parseTimeout } from '../durations.ts';
import { UsageError } from '../errors.ts';
import { describePhase, ref } from '../output.ts';
import { progressReporter, untilPhase, waitForRequest } from '../wait-for.ts';
import { helpText, validName } from './common.ts';
import { DEFAULT_WAIT_TIMEOUT } from './request.ts';

export const PHASES: readonly Phase[] = [
  'Pending',
  'AwaitingApproval',
  'Granted',
  'Denied',
  'Expired',
  'Revoked',
  'Failed',
];

export interface WaitOptions {
  name: string;
  phase: Phase;
  timeoutMs: number;
}

/** A phase name, in any letter case. */
export function parsePhase(text: string): Phase {
  const phase = PHASES.find((p) => p.toLowerCase() === text.toLowerCase());
  if (!phase) throw new UsageError(`--for must be one of ${PHASES.join(', ')}, not "${text}"`, 'wait');
  return phase;
}

export const wait = defineCommand<WaitOptions>({
  name: 'wait',
  summary: 'Wait until an AccessRequest reaches a phase',
  help: (prog) =>
    helpText(
      prog,
      `wait NAME --for PHASE [--timeout ${DEFAULT_WAIT_TIMEOUT}]`,
      `
Waits until the request is in PHASE (${PHASES.join(', ')}).
Exits 0 when it is, 1 when it reached a phase from which PHASE cannot follow (a final phase,
or a later one: waiting for Granted on a Revoked request), 3 on timeout.`,
      `
  --for PHASE             the phase to wait for (required)
  --timeout DURATION      how long to wait (default ${DEFAULT_WAIT_TIMEOUT})`,
    ),
  options: {
    for: { type: 'string' },
    timeout: { type: 'string' },
  },
  parse(parsed) {
    const [name] = positionals(parsed, 'wait', ['NAME']);
    if (name === undefined) throw new UsageError('NAME is required', 'wait');
    const phase = stringValue(parsed.values, 'for');
    if (phase === undefined) throw new UsageError(`--for is required (one of ${PHASES.join(', ')})`, 'wait');
    return {
      name: validName(name, 'wait'),
      phase: parsePhase(phase),
      timeoutMs: parseTimeout(stringValue(parsed.values, 'timeout') ?? DEFAULT_WAIT_TIMEOUT),
    };
  },
  async run({ name, phase, timeoutMs }, ctx) {
    const session = ctx.session();
    const reached = await waitForRequest(session, session.namespace, name, untilPhase(phase), {
      timeoutMs,
      what: `to be ${phase}`,
      observe: progressReporter(ctx.progress),
    });
    ctx.out(`${ref(reached)} is ${describePhase(reached)}`);
    return 0;
  },
});
