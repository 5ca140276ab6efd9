import type { Logger } from '../log.ts';

export interface ShutdownStep {
  /** What the step does, for the log ("Removed the webhook registration"). */
  done: string;
  run: () => Promise<unknown>;
  /** A step still running after this long is given up, so that a stalled API server cannot hold the exit. */
  timeoutMs: number;
}

/**
 * On the first SIGTERM or SIGINT, runs the steps one after another, each bounded in time, then
 * exits (1 when a step failed or timed out). A second signal exits at once.
 */
export function exitInOrderOnSignal(
  steps: ShutdownStep[],
  { log, exit = (code: number) => process.exit(code) }: { log: Logger; exit?: (code: number) => void },
): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) {
        log.warn('Stopped at once on a second signal', { signal });
        exit(130);
        return;
      }
      stopping = true;
      log.info('Stopping controller', { signal });
      void runInOrder(steps, log).then((clean) => exit(clean ? 0 : 1));
    });
  }
}

/** Runs each step after the previous one has ended or timed out; true when all ended in time. */
export async function runInOrder(steps: ShutdownStep[], log: Logger): Promise<boolean> {
  let clean = true;
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      step.run().then(
        () => 'done' as const,
        (error: unknown) => error,
      ),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), step.timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === 'done') log.info(step.done);
    else {
      clean = false;
      log.error('Failed a shutdown step', {
        step: step.done,
        error: outcome === 'timeout' ? `timed out after ${step.timeoutMs} ms` : String(outcome),
      });
    }
  }
  return clean;
}
