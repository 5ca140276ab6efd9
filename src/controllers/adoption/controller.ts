import type { KubeConfig, V1Job, V1Pod } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { adoption, adoptedRequestName } from '../../api/adoption.ts';
import { adoptedSubjectOf } from '../../http/pod-admission.ts';
import {
  annotations,
  GROUP,
  plural,
  VERSION,
  type AccessRequest,
  type AnyAccessPolicy,
} from '../../api/types.ts';
import { isAlreadyExists, isNotFound, statusMessage } from '../../k8s/errors.ts';
import type { EventRecorder, ObjectRef } from '../../k8s/events.ts';
import type { Clients } from '../../k8s/resources.ts';
import type { Logger } from '../../log.ts';
import { SupervisedInformer } from '../../runtime/informer.ts';
import { WorkQueue, type HandlerResult } from '../../runtime/workqueue.ts';
import type { ObjectCache } from '../accessrequest/caches.ts';
import { isAdopted, isGated, planGatedPod, planRenewal } from './decide.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

export interface AdoptionDeps {
  clients: Clients;
  events: EventRecorder;
  log: Logger;
  now: () => Date;
  /** The AccessRequest controller's caches of Jobs and policies. */
  jobs: ObjectCache<V1Job>;
  policies: ObjectCache<AnyAccessPolicy>;
  clusterPolicies: ObjectCache<AnyAccessPolicy>;
  /** How long a pod whose grant will never come stays gated, visible, before it is failed. */
  refusalGraceMs: number;
  resyncMs: number;
  /** Pods and requests reconciled at once. */
  concurrency: number;
}

const POD = 'pod/';
const REQUEST = 'request/';

/**
 * Zero-code adoption: for each opted-in pod that the webhook gated, creates its subject's
 * AccessRequest, lifts the gate once the grant is live, and fails the pod when it will never be;
 * renews the live grants of adopted requests. It watches only opted-in pods and adopted requests
 * (label selectors), never every pod.
 */
export class AdoptionController {
  readonly #deps: AdoptionDeps;
  readonly #pods: SupervisedInformer<V1Pod>;
  readonly #requests: SupervisedInformer<AccessRequest>;
  #queue = new WorkQueue();
  #reconciling = false;
  /** Pod UIDs whose refusal was already told in Events (once per pod and reason). */
  readonly #told = new Map<string, string>();

  constructor(kc: KubeConfig, deps: AdoptionDeps) {
    this.#deps = deps;
    const { core, custom } = deps.clients;
    const optedIn = `${adoption.inject}=true`;
    const adopted = `${adoption.adopted}=true`;
    this.#pods = new SupervisedInformer<V1Pod>({
      kubeConfig: kc,
      path: '/api/v1/pods',
      labelSelector: optedIn,
      list: (() => core.listPodForAllNamespaces({ labelSelector: optedIn })) as never,
      onChange: (pod) => this.#onPod(pod),
      strip: (pod) => delete pod.metadata?.managedFields,
      resyncMs: deps.resyncMs,
    });
    this.#requests = new SupervisedInformer<AccessRequest>({
      kubeConfig: kc,
      path: `/apis/${GROUP}/${VERSION}/${plural.AccessRequest}`,
      labelSelector: adopted,
      list: (() =>
        custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: plural.AccessRequest,
          labelSelector: adopted,
        })) as never,
      onChange: (request) => this.#onRequest(request),
      strip: (request) => delete request.metadata.managedFields,
      resyncMs: deps.resyncMs,
    });
  }

  async startInformers(): Promise<void> {
    this.#pods.start();
    this.#requests.start();
    await Promise.all([this.#pods.synced(), this.#requests.synced()]);
  }

  startReconciling(): void {
    if (this.#reconciling) return;
    this.#reconciling = true;
    for (const pod of this.#pods.list())
      this.#queue.add(`${POD}${pod.metadata?.namespace}/${pod.metadata?.name}`);
    for (const request of this.#requests.list()) this.#onRequest(request);
    this.#queue.run((key) => this.#reconcile(key), this.#deps.concurrency);
  }

  async stopReconciling(): Promise<void> {
    if (!this.#reconciling) return;
    this.#reconciling = false;
    const running = this.#queue;
    this.#queue = new WorkQueue();
    await running.shutdown();
  }

  async stop(): Promise<void> {
    await this.stopReconciling();
    await Promise.all([this.#pods.stop(), this.#requests.stop()]);
  }

  /** A Job changed (from the AccessRequest controller's Job informer): its request may need a renewal. */
  onJob(job: V1Job): void {
    const namespace = job.metadata?.namespace ?? '';
    for (const request of this.#requests.list(namespace)) {
      if (request.spec.subject.jobName === job.metadata?.name) this.#onRequest(request);
    }
  }

  #onRequest(request: AccessRequest): void {
    const { namespace, name } = request.metadata;
    this.#queue.add(`${REQUEST}${namespace}/${name}`);
    const { jobName, podName } = request.spec.subject;
    for (const pod of this.#pods.list(namespace)) {
      const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
      const forSubject =
        jobName !== undefined
          ? owner?.kind === 'Job' && owner.name === jobName
          : pod.metadata?.name === podName;
      if (forSubject && isGated(pod)) this.#queue.add(`${POD}${namespace}/${pod.metadata?.name}`);
    }
  }

  async #reconcile(key: string): Promise<HandlerResult | void> {
    const [namespace = '', name = ''] = key.slice(key.indexOf('/') + 1).split('/');
    return key.startsWith(POD)
      ? this.#reconcilePod(namespace, name)
      : this.#reconcileRequest(namespace, name);
  }

  async #reconcilePod(namespace: string, name: string): Promise<HandlerResult | void> {
    const pod = this.#pods.get(namespace, name);
    if (!pod || !isGated(pod) || pod.status?.phase === 'Failed') return;
    const { log, now, refusalGraceMs, clients } = this.#deps;
    const subject = adoptedSubjectOf(pod);
    const requestName = adoptedRequestName(subject ?? { kind: 'Pod', name });
    const request =
      this.#requests.get(namespace, requestName) ?? (await this.#readRequest(namespace, requestName));
    const job = subject?.kind === 'Job' ? this.#deps.jobs.get(namespace, subject.name) : undefined;
    const plan = planGatedPod(pod, request, now(), refusalGraceMs, job);
    switch (plan.action) {
      case 'wait':
        return plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
      case 'create':
        try {
          await clients.custom.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: plural.AccessRequest,
            namespace,
            body: plan.request,
          });
          log.info('Created AccessRequest for an opted-in pod', {
            pod: `${namespace}/${name}`,
            request: requestName,
          });
        } catch (error) {
          if (isAlreadyExists(error)) return { requeueAfterMs: 200 };
          this.#tell(
            pod,
            'InvalidDeclaration',
            `AccessRequest ${requestName} could not be created: ${statusMessage(error)}`,
          );
          throw error;
        }
        return;
      case 'ungate': {
        const gates = pod.spec?.schedulingGates ?? [];
        await clients.core.patchNamespacedPod(
          {
            namespace,
            name,
            body: [
              { op: 'test', path: '/spec/schedulingGates', value: gates },
              {
                op: 'replace',
                path: '/spec/schedulingGates',
                value: gates.filter((g) => g.name !== adoption.gate),
              },
            ],
          },
          jsonPatch,
        );
        log.info('Removed the grant gate', { pod: `${namespace}/${name}`, request: requestName });
        return;
      }
      case 'refuse': {
        this.#tell(pod, plan.reason, plan.message);
        const waitMs = plan.failAt.getTime() - now().getTime();
        if (waitMs > 0) return { requeueAfterMs: waitMs };
        await clients.core.patchNamespacedPodStatus(
          {
            namespace,
            name,
            body: {
              status: {
                phase: 'Failed',
                reason: plan.reason,
                message: `hourglass: ${plan.message}`.slice(0, 1024),
              },
            },
          },
          mergePatch,
        );
        log.info('Failed a pod whose grant will never be live', {
          pod: `${namespace}/${name}`,
          reason: plan.reason,
        });
        return;
      }
    }
  }

  async #readRequest(namespace: string, name: string): Promise<AccessRequest | undefined> {
    try {
      return await this.#deps.clients.accessRequests.get(namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  #onPod(pod: V1Pod): void {
    const { namespace = '', name = '', uid = '' } = pod.metadata ?? {};
    // A pod gone from the cache is told nothing more: what was told of it goes too.
    if (this.#pods.get(namespace, name)?.metadata?.uid !== uid) this.#told.delete(uid);
    this.#queue.add(`${POD}${namespace}/${name}`);
  }

  /** One Warning Event on the pod and one on its Job per pod and reason. */
  #tell(pod: V1Pod, reason: string, message: string): void {
    const uid = pod.metadata?.uid ?? '';
    if (this.#told.get(uid) === reason) return;
    this.#told.set(uid, reason);
    const namespace = pod.metadata?.namespace ?? '';
    const regarding: ObjectRef = {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace,
      name: pod.metadata?.name ?? '',
      uid,
    };
    this.#deps.events.record(regarding, 'Warning', reason, 'Gate', message);
    const owner = pod.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === 'Job');
    if (owner) {
      const job: ObjectRef = {
        apiVersion: 'batch/v1',
        kind: 'Job',
        namespace,
        name: owner.name,
        uid: owner.uid,
      };
      this.#deps.events.record(job, 'Warning', reason, 'Gate', `pod ${pod.metadata?.name}: ${message}`);
    }
  }

  async #reconcileRequest(namespace: string, name: string): Promise<HandlerResult | void> {
    const request = this.#requests.get(namespace, name);
    if (!request || !isAdopted(request)) return;
    const { jobName } = request.spec.subject;
    const job = jobName ? this.#deps.jobs.get(namespace, jobName) : undefined;
    const plan = planRenewal(request, job, this.#renewBefore(request), this.#deps.now());
    if (plan.renewValue === undefined)
      return plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
    await this.#deps.clients.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: plural.AccessRequest,
        namespace,
        name,
        body: {
          metadata: {
            resourceVersion: request.metadata.resourceVersion,
            annotations: {
              [annotations.renew]: plan.renewValue,
              ...(plan.jobRenewal !== undefined ? { [adoption.jobRenewal]: plan.jobRenewal } : {}),
            },
          },
        },
      },
      mergePatch,
    );
    this.#deps.log.info('Asked for a renewal of an adopted grant', {
      request: `${namespace}/${name}`,
      renew: plan.renewValue,
    });
  }

  #renewBefore(request: AccessRequest): string | undefined {
    const ref = request.status?.policy;
    if (!ref?.name) return undefined;
    const policy =
      ref.kind === 'ClusterAccessPolicy'
        ? this.#deps.clusterPolicies.get('', ref.name)
        : this.#deps.policies.get(ref.namespace ?? request.metadata.namespace, ref.name);
    return policy?.spec.renewBefore;
  }
}
