import { Watch } from '@kubernetes/client-node';
import { GROUP, VERSION, plural, TERMINAL_PHASES, type AccessRequest, type Phase } from '../api/types.ts';
import { isNotFound } from '../k8s/errors.ts';
import { formatDuration } from './durations.ts';
import { Refused, TimedOut } from './errors.ts';
import { describePhase, explainPhase, ref } from './output.ts';
import type { Session } from './session.ts';

/** What a check answers for one observed state: done with a value, or keep waiting. */
export type Check<T> = (request: AccessRequest) => T | undefined;

export interface WaitOptions {
  timeoutMs: number;
  /** What is awaited, for the timeout message ("to be Granted"). */
  what: string;
  /** Called with every state observed, for progress output. */
  observe?: (request: AccessRequest) => void;
}

type Change =
  | { kind: 'object'; request: AccessRequest }
  | { kind: 'deleted' }
  | { kind: 'closed' }
  | { kind: 'error'; forbidden: boolean };

const RETRY_MS = 1000;
const POLL_MS = 1000;

/**
 * Reads the request and watches it until `check` answers (or throws), or the timeout passes.
 * Without permission to watch it polls instead. A `check` that throws Refused ends the wait.
 */
export async function waitForRequest<T>(
  session: Session,
  namespace: string,
  name: string,
  check: Check<T>,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let poll = false;
  session.refreshCredentials();
  // A request missing from the start is an API error (NotFound, with the server's message).
  let current = await session.requests.get(namespace, name);
  for (;;) {
    options.observe?.(current);
    const result = check(current);
    if (result !== undefined) return result;
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new TimedOut(
        `timed out after ${formatDuration(options.timeoutMs)} waiting for ${ref(current)} ${options.what}; it is ${describePhase(current)}`,
      );
    }
    let change: Change = { kind: 'closed' };
    if (poll) await sleep(Math.min(POLL_MS, remaining));
    else change = await nextChange(session, current, remaining);
    if (change.kind === 'deleted') throw new Refused(`${ref(current)} was deleted`);
    if (change.kind === 'error') {
      poll ||= change.forbidden;
      if (!change.forbidden) await sleep(Math.min(RETRY_MS, Math.max(0, deadline - Date.now())));
    }
    current = change.kind === 'object' ? change.request : await read(session, namespace, name);
  }
}

/** The request again; gone while it was awaited is an outcome, as a DELETED event is. */
async function read(session: Session, namespace: string, name: string): Promise<AccessRequest> {
  session.refreshCredentials();
  try {
    return await session.requests.get(namespace, name);
  } catch (error) {
    if (isNotFound(error)) throw new Refused(`accessrequest/${name} was deleted`);
    throw error;
  }
}

/** The next change of the request after the state read, or why there is none. */
function nextChange(session: Session, request: AccessRequest, timeoutMs: number): Promise<Change> {
  session.refreshCredentials();
  const { namespace, name, resourceVersion } = request.metadata;
  const watch = new Watch(session.kubeConfig);
  return new Promise<Change>((resolve) => {
    let controller: AbortController | undefined;
    let settled = false;
    const finish = (change: Change) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      controller?.abort();
      resolve(change);
    };
    const timer = setTimeout(() => finish({ kind: 'closed' }), timeoutMs);
    watch
      .watch(
        `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural.AccessRequest}`,
        {
          fieldSelector: `metadata.name=${name}`,
          resourceVersion,
          allowWatchBookmarks: true,
          // The server ends the watch before client-node's 30 s inactivity timeout would.
          timeoutSeconds: 25,
        },
        (type: string, object: unknown) => {
          if (type === 'ADDED' || type === 'MODIFIED')
            finish({ kind: 'object', request: object as AccessRequest });
          else if (type === 'DELETED') finish({ kind: 'deleted' });
          // ERROR is most often 410 Gone (the resourceVersion is too old): read again.
          else if (type === 'ERROR') finish({ kind: 'closed' });
        },
        (error: unknown) =>
          finish(
            error
              ? { kind: 'error', forbidden: (error as { statusCode?: number }).statusCode === 403 }
              : { kind: 'closed' },
          ),
      )
      .then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        () => finish({ kind: 'error', forbidden: false }),
      );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const PHASE_ORDER: Record<Phase, number> = {
  Pending: 0,
  AwaitingApproval: 1,
  Granted: 2,
  Denied: 3,
  Expired: 3,
  Revoked: 3,
  Failed: 3,
};

export function phaseOf(request: AccessRequest): Phase {
  return request.status?.phase ?? 'Pending';
}

/**
 * Done when the request is in `target`; Refused when it is in a phase from which `target` can
 * no longer be reached (a final phase, or a later one: phases only move forward).
 */
export function untilPhase(target: Phase): Check<AccessRequest> {
  return (request) => {
    const phase = phaseOf(request);
    if (phase === target) return request;
    if (TERMINAL_PHASES.has(phase)) throw new Refused(`${ref(request)} is ${explainPhase(request)}`);
    if (PHASE_ORDER[phase] > PHASE_ORDER[target]) {
      throw new Refused(`${ref(request)} is ${describePhase(request)}; it will not be ${target} again`);
    }
    return undefined;
  };
}

/** Reports each new phase (and reason) once, on stderr. */
export function progressReporter(write: (line: string) => void): (request: AccessRequest) => void {
  let last = '';
  return (request) => {
    const now = describePhase(request);
    if (now !== last) write(`${ref(request)}: ${now}`);
    last = now;
  };
}
