import type { EventsV1Api } from '@kubernetes/client-node';
import { statusMessage } from './errors.ts';
import type { Logger } from '../log.ts';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

/** Publishes events.k8s.io/v1 Events without delaying the caller; a failed publish is only logged. */
export class EventRecorder {
  readonly #events: EventsV1Api;
  readonly #log: Logger;
  readonly #instance: string;

  constructor(events: EventsV1Api, log: Logger, instance: string) {
    this.#events = events;
    this.#log = log;
    this.#instance = instance;
  }

  record(
    regarding: ObjectRef,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
  ): void {
    const now = new Date();
    this.#events
      .createNamespacedEvent({
        namespace: regarding.namespace,
        body: {
          metadata: { generateName: `${regarding.name}-`, namespace: regarding.namespace },
          // MicroTime: the API server wants six fractional digits.
          eventTime: now.toISOString().replace(/Z$/, '000Z') as unknown as Date,
          reportingController: 'hourglass.dev/controller',
          reportingInstance: this.#instance,
          action,
          reason,
          note: note.slice(0, 1024),
          type,
          regarding,
        },
      })
      .catch((error: unknown) =>
        this.#log.warn('Failed to publish event', {
          reason,
          object: `${regarding.namespace}/${regarding.name}`,
          error: statusMessage(error),
        }),
      );
  }
}
