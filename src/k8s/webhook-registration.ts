import type {
  AdmissionregistrationV1Api,
  V1MutatingWebhookConfiguration,
  V1ValidatingAdmissionPolicy,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { GROUP, VERSION, labels, MANAGED_BY } from '../api/types.ts';
import type { Logger } from '../log.ts';
import { isNotFound } from './errors.ts';
import { statusPolicy } from './status-policy.ts';
import { podWebhook } from './pod-webhook.ts';

/** What the local controller registers; in-cluster, the Helm chart registers the same by Service. */
export const LOCAL_WEBHOOK_NAME = 'hourglass-local';
/** The ValidatingAdmissionPolicy (and its binding) that backs the webhook's status rule. */
export const LOCAL_STATUS_POLICY_NAME = 'hourglass-local-status';

function webhooks(baseUrl: string, caBundle: string) {
  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 5,
  };
  const rule = (resources: string[], operations: string[]) => ({
    apiGroups: [GROUP],
    apiVersions: [VERSION],
    resources,
    operations,
    scope: '*',
  });
  const mutating: V1MutatingWebhookConfiguration = {
    metadata: { name: LOCAL_WEBHOOK_NAME, labels: { [labels.managedBy]: MANAGED_BY } },
    webhooks: [
      {
        ...common,
        name: 'mutate.hourglass.dev',
        clientConfig: { url: `${baseUrl}/mutate`, caBundle },
        // UPDATE: the renew and revoke annotations are stamped with who wrote them.
        rules: [rule(['accessrequests'], ['CREATE', 'UPDATE']), rule(['accessrequests/status'], ['UPDATE'])],
        reinvocationPolicy: 'Never',
      },
      podWebhook(`${baseUrl}/mutate-pods`, caBundle),
    ],
  };
  const validating: V1ValidatingWebhookConfiguration = {
    metadata: { name: LOCAL_WEBHOOK_NAME, labels: { [labels.managedBy]: MANAGED_BY } },
    webhooks: [
      {
        ...common,
        name: 'validate.hourglass.dev',
        clientConfig: { url: `${baseUrl}/validate`, caBundle },
        rules: [rule(['accesspolicies', 'clusteraccesspolicies'], ['CREATE', 'UPDATE'])],
      },
    ],
  };
  return { mutating, validating };
}

class RegistrationStopped extends Error {
  constructor() {
    super('The webhook registration was stopped');
  }
}

/** What decides in a status policy, without the fields the API server defaults. */
const rulesOf = (policy: V1ValidatingAdmissionPolicy) =>
  JSON.stringify([
    policy.spec?.matchConditions?.map((c) => [c.name, c.expression]),
    policy.spec?.validations?.map((v) => [v.expression, v.message]),
  ]);

/**
 * Registers the admission webhook of a controller running outside the cluster, by URL, and keeps
 * it registered: several local controllers take turns, and a killed one's registration is
 * overwritten by the next live one within a period.
 */
export class LocalWebhookRegistration {
  readonly #api: AdmissionregistrationV1Api;
  readonly #desired: ReturnType<typeof webhooks>;
  readonly #statusPolicy: ReturnType<typeof statusPolicy>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  /** The registration under way, if any: stop() waits for it. */
  #inFlight: Promise<void> | undefined;
  /** Once stopped, no registration writes anything again (remove() may then run safely). */
  #stopped = false;

  constructor(
    api: AdmissionregistrationV1Api,
    baseUrl: string,
    caPem: string,
    controllerUsername: string,
    log: Logger,
  ) {
    this.#api = api;
    this.#desired = webhooks(baseUrl, Buffer.from(caPem).toString('base64'));
    this.#statusPolicy = statusPolicy(LOCAL_STATUS_POLICY_NAME, controllerUsername);
    this.#log = log;
  }

  /** Registers what is missing or differs; writes nothing once stop() or remove() was called. */
  async ensure(): Promise<void> {
    const run = this.#ensure().catch((error: unknown) => {
      if (!(error instanceof RegistrationStopped)) throw error;
    });
    this.#inFlight = run;
    try {
      await run;
    } finally {
      if (this.#inFlight === run) this.#inFlight = undefined;
    }
  }

  /** Refuses a write that would follow stop(): a registration that outlives the removal is the fault. */
  #checkRunning(): void {
    if (this.#stopped) throw new RegistrationStopped();
  }

  async #ensure(): Promise<void> {
    this.#checkRunning();
    const { mutating, validating } = this.#desired;
    // What this controller registers: its URL and what is sent to it.
    const registered = (
      config: { webhooks?: { clientConfig: { url?: string }; rules?: object[] }[] } | undefined,
    ) => JSON.stringify(config?.webhooks?.map((webhook) => [webhook.clientConfig.url, webhook.rules]));
    const currentMutating = await this.#api
      .readMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME })
      .catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
    this.#checkRunning();
    if (!currentMutating) await this.#api.createMutatingWebhookConfiguration({ body: mutating });
    else if (registered(currentMutating) !== registered(mutating)) {
      await this.#api.replaceMutatingWebhookConfiguration({
        name: LOCAL_WEBHOOK_NAME,
        body: {
          ...mutating,
          metadata: { ...mutating.metadata, resourceVersion: currentMutating.metadata?.resourceVersion },
        },
      });
    }
    const currentValidating = await this.#api
      .readValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME })
      .catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
    this.#checkRunning();
    if (!currentValidating) await this.#api.createValidatingWebhookConfiguration({ body: validating });
    else if (registered(currentValidating) !== registered(validating)) {
      await this.#api.replaceValidatingWebhookConfiguration({
        name: LOCAL_WEBHOOK_NAME,
        body: {
          ...validating,
          metadata: { ...validating.metadata, resourceVersion: currentValidating.metadata?.resourceVersion },
        },
      });
    }
    await this.#ensureStatusPolicy();
  }

  /** Creates the status policy and its binding, or replaces them when another controller's differ. */
  async #ensureStatusPolicy(): Promise<void> {
    const { policy, binding } = this.#statusPolicy;
    const name = LOCAL_STATUS_POLICY_NAME;
    const orNothing = (e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e));
    const current = await this.#api.readValidatingAdmissionPolicy({ name }).catch(orNothing);
    this.#checkRunning();
    if (!current) await this.#api.createValidatingAdmissionPolicy({ body: policy });
    else if (rulesOf(current) !== rulesOf(policy)) {
      await this.#api.replaceValidatingAdmissionPolicy({
        name,
        body: {
          ...policy,
          metadata: { ...policy.metadata, resourceVersion: current.metadata?.resourceVersion },
        },
      });
    }
    const currentBinding = await this.#api.readValidatingAdmissionPolicyBinding({ name }).catch(orNothing);
    this.#checkRunning();
    if (!currentBinding) await this.#api.createValidatingAdmissionPolicyBinding({ body: binding });
  }

  /** Registers again every period, one registration at a time. */
  start(periodMs = 10_000): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.ensure()
        .catch((error: unknown) => this.#log.warn('Failed to register the webhook', { error: String(error) }))
        .finally(() => this.start(periodMs));
    }, periodMs);
    this.#timer.unref();
  }

  /**
   * Registers no more, and resolves once the registration under way (if any) has ended, or after
   * `waitMs`: a stalled API server must not hold the shutdown forever.
   */
  async stop(waitMs = 15_000): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const inFlight = this.#inFlight;
    if (!inFlight) return;
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      inFlight.then(
        () => true,
        () => true,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
    ]);
    clearTimeout(timer);
    if (!settled) this.#log.warn('Stopped waiting for the webhook registration under way', { waitMs });
  }

  /** Removes the registration, so that no write waits for a webhook nobody serves. */
  async remove(): Promise<void> {
    await this.stop(0);
    await this.#api.deleteMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }).catch(() => undefined);
    await this.#api.deleteValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME }).catch(() => undefined);
    const name = LOCAL_STATUS_POLICY_NAME;
    await this.#api.deleteValidatingAdmissionPolicyBinding({ name }).catch(() => undefined);
    await this.#api.deleteValidatingAdmissionPolicy({ name }).catch(() => undefined);
  }
}
