import type {
  KubernetesListObject,
  KubernetesObject,
  KubeConfig,
  V1Job,
  V1Pod,
} from '@kubernetes/client-node';
import {
  GROUP,
  labels,
  MANAGED_BY,
  plural,
  TERMINAL_PHASES,
  VERSION,
  type AccessRequest,
  type AnyAccessPolicy,
} from '../../api/types.ts';
import type { Clients } from '../../k8s/resources.ts';
import { statusMessage } from '../../k8s/errors.ts';
import type { EventRecorder } from '../../k8s/events.ts';
import { listInPages, type ListPage } from '../../k8s/paged-list.ts';
import type { Logger } from '../../log.ts';
import type { IndexFunctions } from '../../runtime/cache-index.ts';
import { SupervisedInformer } from '../../runtime/informer.ts';
import type { ApiServerReachability } from '../../runtime/reachability.ts';
import { WorkQueue } from '../../runtime/workqueue.ts';
import { policyKey, PolicyStatusReconciler } from '../accesspolicy/reconcile.ts';
import type { GrantObject, GrantObjectStore } from '../../k8s/grant-store.ts';
import type { GrantTokenClaims } from '../../tokens/grant-token.ts';
import { dropManagedFields, dropTokenAndManagedFields, projectJob, projectPod } from './cached-objects.ts';
import type { Caches, WrittenCache } from './caches.ts';
import { GrantObjectPort } from './grant-object-port.ts';
import { AccessRequestReconciler, type ReconcilerDeps } from './reconcile.ts';

const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
const subjectIndexValue = (namespace: string, kind: 'Pod' | 'Job', name: string) =>
  `${namespace}/${kind}/${name}`;

/** What the controller looks requests up by: the subject they name, their current grant's id. */
const REQUEST_INDEXES: IndexFunctions<AccessRequest> = {
  subject: ({ metadata: { namespace }, spec: { subject } }) => [
    subject.podName
      ? subjectIndexValue(namespace, 'Pod', subject.podName)
      : subjectIndexValue(namespace, 'Job', subject.jobName ?? ''),
  ],
  grantId: (request) => (request.status?.grant?.id ? [request.status.grant.id] : []),
};
const NONE: ReadonlySet<string> = new Set();

/** What the composition root gives the controller; it adds the caches, the indexes and the grant-object port. */
export type ControllerDeps = Omit<ReconcilerDeps, 'caches' | 'grantedRequests' | 'grantObjects'> & {
  grantObjectStore: GrantObjectStore;
  signToken: (claims: Omit<GrantTokenClaims, 'issuer'>) => Promise<string>;
};

/**
 * Watches AccessRequests and everything their grants depend on, maps each change to the keys of
 * the requests it concerns, and reconciles those keys through one work queue; policies' own
 * status goes through a second.
 */
export class AccessRequestController {
  readonly caches: Caches;
  /** Collects keys on every replica; processes them only while this replica reconciles. */
  queue: WorkQueue;
  /** Keys of policies whose status to bring up to date (see policyKey). */
  policyQueue = new WorkQueue();
  #reconciling = false;
  readonly #informers: SupervisedInformer<KubernetesObject>[] = [];
  readonly #reconciler: AccessRequestReconciler;
  readonly #policyStatus: PolicyStatusReconciler;
  readonly #log: Logger;
  readonly #deps: ControllerDeps;
  readonly #concurrency: number;
  readonly #reachability: ApiServerReachability | undefined;
  /** The requests' cache, with its indexes (REQUEST_INDEXES). */
  readonly #requests: SupervisedInformer<AccessRequest>;
  /** "namespace/serviceAccount" → UIDs of its requests that hold or are issuing a grant (maxActivePerSubject). */
  readonly #grantedBySubject = new Map<string, Set<string>>();
  /** Policy UID → the generation whose spec its live requests were last re-decided under. */
  readonly #policyGenerations = new Map<string, number | undefined>();
  /** Request UID → the "namespace/serviceAccount" it is counted under in #grantedBySubject. */
  readonly #grantedUnder = new Map<string, string>();

  constructor(
    kc: KubeConfig,
    clients: Clients,
    deps: ControllerDeps,
    options: {
      concurrency: number;
      resyncMs: number;
      events: EventRecorder;
      /** Told of failed API calls; when the API server answers again, what backed off retries now. */
      reachability?: ApiServerReachability;
      /** Also told of every Job change (zero-code adoption renews on the Job's annotation). */
      onJob?: (job: V1Job) => void;
    },
  ) {
    this.#log = deps.log;
    this.#deps = deps;
    this.#concurrency = options.concurrency;
    this.#reachability = options.reachability;
    this.#reachability?.onRecovered(() => this.#retryNow());
    this.queue = this.#newQueue();
    const managed = `${labels.managedBy}=${MANAGED_BY}`;
    const inform = <T extends KubernetesObject>(
      path: string,
      listPage: (page: ListPage) => Promise<KubernetesListObject<T>>,
      onChange: (object: T) => void,
      {
        labelSelector,
        strip = dropManagedFields,
        indexes,
      }: { labelSelector?: string; strip?: (object: T) => void; indexes?: IndexFunctions<T> } = {},
    ): SupervisedInformer<T> => {
      const informer = new SupervisedInformer<T>({
        kubeConfig: kc,
        path,
        list: () => listInPages(listPage, strip),
        ...(labelSelector ? { labelSelector } : {}),
        onChange,
        strip,
        ...(indexes ? { indexes } : {}),
        resyncMs: options.resyncMs,
        onWatchEnd: (end) => {
          this.#deps.metrics.watchReconnects.inc({ path, reason: end });
          if (end === 'stalled') this.#deps.metrics.watchStalls.inc({ path });
        },
        onRestart: (restart) => {
          this.#deps.metrics.informerRestarts.inc({ path, reason: restart.reason });
          if (restart.reason !== 'error') this.#deps.metrics.watchStalls.inc({ path });
          if (restart.error !== undefined) this.#reachability?.reportFailure(restart.error);
          this.#log.warn('Restarted informer', {
            path,
            reason: restart.reason,
            delayMs: restart.delayMs,
            error: String(restart.error ?? ''),
          });
        },
      });
      this.#informers.push(informer as unknown as SupervisedInformer<KubernetesObject>);
      return informer;
    };
    const custom = (kind: keyof typeof plural) => (page: ListPage) =>
      clients.custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: plural[kind],
        ...page,
      }) as Promise<KubernetesListObject<never>>;
    const crdPath = (kind: keyof typeof plural) => `/apis/${GROUP}/${VERSION}/${plural[kind]}`;

    this.#requests = inform<AccessRequest>(
      crdPath('AccessRequest'),
      custom('AccessRequest'),
      (r) => this.#onRequest(r),
      { indexes: REQUEST_INDEXES },
    );
    this.caches = {
      requests: this.#requests,
      policies: inform<AnyAccessPolicy>(crdPath('AccessPolicy'), custom('AccessPolicy'), (p) =>
        this.#onPolicy(p),
      ),
      clusterPolicies: inform<AnyAccessPolicy>(
        crdPath('ClusterAccessPolicy'),
        custom('ClusterAccessPolicy'),
        (p) => this.#onPolicy(p),
      ),
      pods: inform<V1Pod>(
        '/api/v1/pods',
        (page) => clients.core.listPodForAllNamespaces(page),
        (pod) => this.#enqueueSubject('Pod', pod),
        { strip: projectPod },
      ),
      jobs: inform<V1Job>(
        '/apis/batch/v1/jobs',
        (page) => clients.batch.listJobForAllNamespaces(page),
        (job) => {
          this.#enqueueSubject('Job', job);
          options.onJob?.(job);
        },
        { strip: projectJob },
      ),
      serviceAccounts: inform(
        '/api/v1/serviceaccounts',
        (page) => clients.core.listServiceAccountForAllNamespaces(page),
        (sa) => this.#enqueueLive(sa.metadata?.namespace),
      ),
      namespaces: inform(
        '/api/v1/namespaces',
        (page) => clients.core.listNamespace(page),
        (ns) => this.#enqueueLive(ns.metadata?.name),
      ),
      secrets: inform(
        '/api/v1/secrets',
        (page) => clients.core.listSecretForAllNamespaces({ labelSelector: managed, ...page }),
        (o) => this.#enqueueOwner(o),
        { labelSelector: managed, strip: dropTokenAndManagedFields },
      ),
      roles: inform(
        '/apis/rbac.authorization.k8s.io/v1/roles',
        (page) => clients.rbac.listRoleForAllNamespaces({ labelSelector: managed, ...page }),
        (o) => this.#enqueueOwner(o),
        { labelSelector: managed },
      ),
      roleBindings: inform(
        '/apis/rbac.authorization.k8s.io/v1/rolebindings',
        (page) => clients.rbac.listRoleBindingForAllNamespaces({ labelSelector: managed, ...page }),
        (o) => this.#enqueueOwner(o),
        { labelSelector: managed },
      ),
    };
    const { secrets, roles, roleBindings } = this.caches;
    this.#reconciler = new AccessRequestReconciler({
      ...deps,
      caches: this.caches,
      grantObjects: new GrantObjectPort({
        store: deps.grantObjectStore,
        caches: { Secret: secrets, Role: roles, RoleBinding: roleBindings } as {
          [K in 'Secret' | 'Role' | 'RoleBinding']: WrittenCache<GrantObject>;
        },
        signToken: deps.signToken,
      }),
      grantedRequests: (namespace, serviceAccountName) =>
        this.#grantedBySubject.get(`${namespace}/${serviceAccountName}`) ?? NONE,
    });
    this.#policyStatus = new PolicyStatusReconciler({
      policies: this.caches.policies,
      clusterPolicies: this.caches.clusterPolicies,
      writeStatus: (policy, status) => clients.policyStatus.patchStatus(policy, status),
      recordEvent: (regarding, type, reason, note) =>
        options.events.record(regarding, type, reason, 'Validate', note),
      log: deps.log,
      now: deps.now,
    });
  }

  #cachedRequest(key: string): AccessRequest | undefined {
    const [namespace = '', name = ''] = key.split('/');
    return this.caches.requests.get(namespace, name);
  }

  #newQueue(): WorkQueue {
    const { metrics } = this.#deps;
    return new WorkQueue({
      // A request awaiting its first decision does not wait behind retries and revocations.
      isNew: (key) => {
        const request = this.#cachedRequest(key);
        return request !== undefined && request.status?.phase === undefined;
      },
      observer: {
        depth: (depth) => metrics.queueDepth.set(depth),
        retried: () => metrics.queueRetries.inc(),
        processed: (key, run) => {
          metrics.reconciles.inc({ result: run.error ? 'error' : 'success' });
          metrics.reconcileDuration.observe(run.durationMs / 1000);
          metrics.queueWait.observe(run.waitMs / 1000);
          if (run.error) {
            this.#reachability?.reportFailure(run.error);
            this.#log.warn('Failed to reconcile AccessRequest', {
              request: key,
              error: statusMessage(run.error),
            });
          }
        },
      },
    });
  }

  /**
   * The API server answers again after an outage: informers waiting out a restart backoff relist
   * now, and keys whose reconcile failed are retried now (a revocation that came due during the
   * outage among them).
   */
  #retryNow(): void {
    for (const informer of this.#informers) informer.retryNow();
    this.queue.retryFailedNow();
    this.policyQueue.retryFailedNow();
  }

  /** Starts the informers and resolves once every cache is synced. */
  async startInformers(): Promise<void> {
    for (const informer of this.#informers) informer.start();
    await Promise.all(this.#informers.map((informer) => informer.synced()));
    this.#log.info('Synced caches', { informers: this.#informers.length });
  }

  /** Reconciles every request, and each change from now on (the leader, or the only replica). */
  startReconciling(): void {
    if (this.#reconciling) return;
    this.#reconciling = true;
    this.#enqueueLive();
    for (const request of this.caches.requests.list()) {
      this.queue.add(keyOf(request.metadata.namespace, request.metadata.name));
    }
    this.queue.run((key) => this.#reconciler.reconcile(key), this.#concurrency);
    for (const policy of [...this.caches.policies.list(), ...this.caches.clusterPolicies.list()])
      this.policyQueue.add(policyKey(policy));
    this.policyQueue.run((key) => this.#policyStatus.reconcile(key), 1);
  }

  /** Stops taking keys at once and resolves when the reconciles under way have finished. */
  async stopReconciling(): Promise<void> {
    if (!this.#reconciling) return;
    this.#reconciling = false;
    const running = [this.queue, this.policyQueue];
    this.queue = this.#newQueue();
    this.policyQueue = new WorkQueue();
    await Promise.all(running.map((queue) => queue.shutdown()));
  }

  async stop(): Promise<void> {
    await this.stopReconciling();
    await Promise.all(this.#informers.map((informer) => informer.stop()));
  }

  /** What the policies would decide for this request now, in words (for dry-run warnings). */
  explain(request: AccessRequest): string[] {
    const { decision } = this.#reconciler.observer.observe(request, this.#deps.now());
    return [
      decision.allowed
        ? `hourglass would allow this request: ${decision.message}`
        : `hourglass would deny this request: ${decision.message}`,
    ];
  }

  /** The request whose current grant has this id, if any (superseded and unknown ids find none). */
  readonly requestByGrantId = (grantId: string): AccessRequest | undefined =>
    this.#requests.byIndex('grantId', grantId)[0];

  #onRequest(request: AccessRequest): void {
    const key = keyOf(request.metadata.namespace, request.metadata.name);
    this.#countGranted(request);
    this.queue.add(key);
  }

  /**
   * A policy's status goes to the policy queue; a new spec (or a policy gone) re-decides the live
   * requests it may cover. Its own status writes do not: they change no decision.
   */
  #onPolicy(policy: AnyAccessPolicy): void {
    this.policyQueue.add(policyKey(policy));
    const { uid, generation } = policy.metadata;
    const cache = policy.kind === 'AccessPolicy' ? this.caches.policies : this.caches.clusterPolicies;
    const cached = cache.get(policy.metadata.namespace ?? '', policy.metadata.name)?.metadata.uid === uid;
    if (cached && this.#policyGenerations.get(uid) === generation) return;
    if (cached) this.#policyGenerations.set(uid, generation);
    else this.#policyGenerations.delete(uid);
    this.#enqueueLive(policy.kind === 'AccessPolicy' ? policy.metadata.namespace : undefined);
  }

  /**
   * Keeps #grantedBySubject equal to the cache: the request counts while it is cached and Granted,
   * or has recorded the intent of an issuance and is not final.
   */
  #countGranted(request: AccessRequest): void {
    const { namespace, name, uid } = request.metadata;
    const cached = this.caches.requests.get(namespace, name)?.metadata.uid === uid;
    const phase = request.status?.phase;
    const holding =
      phase === 'Granted' || (Boolean(request.status?.grant?.id) && !TERMINAL_PHASES.has(phase ?? 'Pending'));
    const subject =
      cached && holding ? `${namespace}/${request.status?.subject?.serviceAccountName ?? ''}` : undefined;
    const counted = this.#grantedUnder.get(uid);
    if (counted === subject) return;
    if (counted !== undefined) {
      const uids = this.#grantedBySubject.get(counted);
      uids?.delete(uid);
      if (uids?.size === 0) this.#grantedBySubject.delete(counted);
      this.#grantedUnder.delete(uid);
    }
    if (subject === undefined) return;
    let uids = this.#grantedBySubject.get(subject);
    if (!uids) this.#grantedBySubject.set(subject, (uids = new Set()));
    uids.add(uid);
    this.#grantedUnder.set(uid, subject);
  }

  #enqueueSubject(kind: 'Pod' | 'Job', object: V1Pod | V1Job): void {
    const subject = subjectIndexValue(object.metadata?.namespace ?? '', kind, object.metadata?.name ?? '');
    for (const request of this.#requests.byIndex('subject', subject))
      this.queue.add(keyOf(request.metadata.namespace, request.metadata.name));
  }

  /** Enqueues the requests that are not final yet, in one namespace or everywhere. */
  #enqueueLive(namespace?: string): void {
    for (const request of this.caches.requests.list(namespace)) {
      const phase = request.status?.phase;
      if (!phase || !TERMINAL_PHASES.has(phase))
        this.queue.add(keyOf(request.metadata.namespace, request.metadata.name));
    }
  }

  #enqueueOwner(object: KubernetesObject): void {
    const request = object.metadata?.labels?.[labels.request];
    if (request && object.metadata?.namespace) this.queue.add(keyOf(object.metadata.namespace, request));
  }
}
