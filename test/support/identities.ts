// Who acts in integration tests besides the cluster admin: users the admin impersonates (it is
// system:masters, so it may), and service-account tokens, bound to a pod or not. Also what they
// are allowed to do (Roles bound to them), and the two writes a user makes: creating an
// AccessRequest and patching its status as an approver.
import {
  AdmissionregistrationV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import {
  GROUP,
  TERMINAL_PHASES,
  VERSION,
  plural,
  type AccessRequest,
  type AccessRequestSpec,
  type Condition,
} from '../../src/api/types.ts';
import { statusMessage } from '../../src/k8s/errors.ts';
import { LOCAL_WEBHOOK_NAME } from '../../src/k8s/webhook-registration.ts';
import { adminConfig, eventually, kubectl, kubectlOk, tokenConfig, type Result } from './cluster.ts';
import { api, getRequest } from './hourglass.ts';

/** Someone who acts against the API server: the admin, a user the admin impersonates, or a bearer token. */
export type Actor = 'admin' | { user: string; groups?: string[] } | { token: string };

/** The kubectl flags that make the admin act as this user. */
export function impersonation(actor: { user: string; groups?: string[] }): string[] {
  return [`--as=${actor.user}`, ...(actor.groups ?? []).map((group) => `--as-group=${group}`)];
}

/** kubectl as the admin impersonating a user; never throws on a non-zero exit. */
export function kubectlAs(actor: { user: string; groups?: string[] }, args: string[], input?: string) {
  return kubectl([...impersonation(actor), ...args], input);
}

/**
 * A Role with these rules in the namespace, bound to users and service accounts of the namespace
 * (whose tokens and impersonations then hold exactly these rules, plus what every user holds).
 */
export async function grantRole(
  namespace: string,
  name: string,
  rules: V1PolicyRule[],
  subjects: { users?: string[]; serviceAccounts?: string[] },
): Promise<void> {
  const { rbac } = api();
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [
        ...(subjects.users ?? []).map((user) => ({
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'User',
          name: user,
        })),
        ...(subjects.serviceAccounts ?? []).map((serviceAccount) => ({
          kind: 'ServiceAccount',
          name: serviceAccount,
          namespace,
        })),
      ],
    },
  });
}

/** The rules a requester and an approver need on AccessRequests (RBAC, before any admission). */
export const requestRules: V1PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['accessrequests'], verbs: ['create', 'get', 'list', 'watch'] },
  { apiGroups: [GROUP], resources: ['accessrequests/status'], verbs: ['get', 'patch', 'update'] },
];

/** A token of the service account bound to the pod: the API server adds the pod's name and UID to its user. */
export async function podBoundToken(namespace: string, serviceAccount: string, podName: string) {
  const token = await kubectlOk([
    '-n',
    namespace,
    'create',
    'token',
    serviceAccount,
    '--bound-object-kind',
    'Pod',
    '--bound-object-name',
    podName,
  ]);
  return token.trim();
}

/** A token of the service account bound to nothing: any workload of that account could hold one. */
export async function plainToken(namespace: string, serviceAccount: string) {
  return (await kubectlOk(['-n', namespace, 'create', 'token', serviceAccount])).trim();
}

/** An AccessRequest manifest as a user writes it; `spec` may hold anything, valid or not. */
export function requestManifest(namespace: string, name: string, spec: object) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'AccessRequest',
    metadata: { name, namespace },
    spec,
  };
}

/** What came of a create: the object the API server stored, or the message it refused it with. */
export type Created<T> = { created: T; refused?: undefined } | { created?: undefined; refused: string };

/** Creates an object as the actor, through kubectl (admin, impersonated user) or the API (token). */
export async function createAs<T = AccessRequest>(
  actor: Actor,
  manifest: {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string };
    spec?: object;
  },
): Promise<Created<T>> {
  if (typeof actor === 'object' && 'token' in actor) {
    const kind = manifest.kind as keyof typeof plural;
    try {
      const created = await tokenConfig(actor.token)
        .makeApiClient(CustomObjectsApi)
        .createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: plural[kind],
          namespace: manifest.metadata.namespace ?? '',
          body: manifest,
        });
      return { created: created as T };
    } catch (error) {
      return { refused: statusMessage(error) };
    }
  }
  const args = ['create', '-o', 'json', '-f', '-'];
  const result = await (actor === 'admin'
    ? kubectl(args, JSON.stringify(manifest))
    : kubectlAs(actor, args, JSON.stringify(manifest)));
  return result.code === 0 ? { created: JSON.parse(result.stdout) as T } : { refused: result.stderr.trim() };
}

/** Creates an AccessRequest as the actor. */
export function createRequestAs(
  actor: Actor,
  namespace: string,
  name: string,
  spec: Partial<AccessRequestSpec> | object,
): Promise<Created<AccessRequest>> {
  return createAs<AccessRequest>(actor, requestManifest(namespace, name, spec));
}

/**
 * An approver's decision as `kubectl patch --subresource=status --type=merge` sends it: the
 * request's conditions as they are now, plus one condition of this type with status "True".
 */
export async function decideAs(
  approver: { user: string; groups?: string[] },
  namespace: string,
  name: string,
  type: 'Approved' | 'Denied',
  {
    reason = type === 'Approved' ? 'Reviewed' : 'NotNeeded',
    message = `${type} in review`,
    dryRun = false,
  } = {},
): Promise<Result> {
  const request = await getRequest(namespace, name);
  const condition: Condition = {
    type,
    status: 'True',
    reason,
    message,
    lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  return patchStatusAs(
    approver,
    namespace,
    name,
    { conditions: [...(request?.status?.conditions ?? []), condition] },
    dryRun ? ['--dry-run=server'] : [],
  );
}

/** A merge patch of the status subresource of an AccessRequest, as the user. */
export function patchStatusAs(
  actor: { user: string; groups?: string[] },
  namespace: string,
  name: string,
  status: object,
  flags: string[] = [],
): Promise<Result> {
  return kubectlAs(actor, [
    '-n',
    namespace,
    'patch',
    'accessrequest',
    name,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status }),
    ...flags,
  ]);
}

/**
 * A KubeConfig of the admin impersonating the user (the Impersonate-User header), for API calls
 * as that user without the start-up time of a kubectl process: what races the controller does.
 */
export function impersonatedConfig(user: string): KubeConfig {
  const admin = adminConfig();
  const cluster = admin.getCurrentCluster();
  const self = admin.getCurrentUser();
  if (!cluster || !self) throw new Error('no current cluster or user in the kubeconfig');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ ...self, name: 'impersonated', impersonateUser: user }],
    contexts: [{ name: 'impersonated', cluster: cluster.name, user: 'impersonated' }],
    currentContext: 'impersonated',
  });
  return kc;
}

/**
 * Appends one condition to an AccessRequest's status as the user, by JSON patch through the API:
 * it lands on the status as the API server has it then, whatever the caller read before.
 */
export async function appendConditionAs(
  user: string,
  namespace: string,
  name: string,
  condition: Omit<Condition, 'lastTransitionTime'>,
): Promise<{ ok: true } | { ok: false; message: string }> {
  const lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  try {
    await impersonatedConfig(user)
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          plural: plural.AccessRequest,
          namespace,
          name,
          body: [{ op: 'add', path: '/status/conditions/-', value: { ...condition, lastTransitionTime } }],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    return { ok: true };
  } catch (error) {
    return { ok: false, message: statusMessage(error) };
  }
}

/**
 * Waits until some controller's admission webhook is registered. Local controllers register it
 * at start and remove it at stop; without it, requests are stored without spec.requester and
 * policies without their author's check, and every admission test would be meaningless.
 */
export async function webhookRegistered(): Promise<void> {
  const admission = adminConfig().makeApiClient(AdmissionregistrationV1Api);
  await eventually(
    async () => {
      await admission.readMutatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME });
      await admission.readValidatingWebhookConfiguration({ name: LOCAL_WEBHOOK_NAME });
    },
    { timeout: 20_000, what: 'the admission webhook to be registered' },
  );
}

/** Waits until the request has reached a final phase, or Granted, and returns it. */
export async function settled(namespace: string, name: string, timeout = 30_000): Promise<AccessRequest> {
  return eventually(
    async () => {
      const request = await getRequest(namespace, name);
      const phase = request?.status?.phase;
      if (!request || !phase || !(TERMINAL_PHASES.has(phase) || phase === 'Granted'))
        throw new Error(`phase is ${phase ?? 'unset'}`);
      return request;
    },
    { timeout, what: `AccessRequest ${namespace}/${name} to be decided` },
  );
}

/** "Phase Reason: message" of a request, the way a user reads it off `kubectl get -o wide`. */
export function outcomeOf(request: AccessRequest): string {
  const { phase, reason, decision, conditions } = request.status ?? {};
  const message = conditions?.find((c) => c.type === 'Denied')?.message ?? decision ?? '';
  return `${phase} ${reason}: ${message}`;
}

/** An object's Events (events.k8s.io), as `kubectl events --for` lists them: "reason: note". */
export async function eventsOf(namespace: string, name: string, kind = 'AccessRequest'): Promise<string[]> {
  const result = await kubectlOk([
    '-n',
    namespace,
    'get',
    'events.events.k8s.io',
    '--field-selector',
    `regarding.name=${name},regarding.kind=${kind}`,
    '-o',
    'json',
  ]);
  const list = JSON.parse(result) as { items: { reason?: string; note?: string }[] };
  return list.items.map((event) => `${event.reason}: ${event.note}`);
}
