// Requests, approvals and policies written by someone trying to get more than they should. Every
// case is refused, by the CRD schema, the admission webhook, or the controller (Denied or
// Failed), for a reason a user can read, and leaves no grant object behind.
import { expect } from 'chai';
import {
  labels,
  type AccessPolicySpec,
  type AccessRequest,
  type RequestedRule,
} from '../../src/api/types.ts';
import { eventually, kubectl, kubectlOk, useNamespace, ensureCrds } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  annotateRequest,
  api,
  canI,
  createPod,
  createPolicy,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
  patchPolicy,
  readOrders,
  waitForPhase,
} from '../support/hourglass.ts';
import {
  createAs,
  createRequestAs,
  decideAs,
  grantRole,
  kubectlAs,
  outcomeOf,
  patchStatusAs,
  plainToken,
  podBoundToken,
  requestRules,
  settled,
  webhookRegistered,
  type Actor,
} from '../support/identities.ts';

const CONTROLLER_NAMESPACE = 'hourglass-system';
const SIGNING_KEYS = 'hourglass-signing-keys';

const rule = (apiGroups: string[], resources: string[], verbs: string[], resourceNames?: string[]) => ({
  apiGroups,
  resources,
  verbs,
  ...(resourceNames ? { resourceNames } : {}),
});
const readOrdersDb = rule([''], ['secrets'], ['get'], ['orders-db']);

/** What the hostile caller saw: the refusal or decision, and the grant id that may stay (renewals only). */
type Outcome = string | { outcome: string; keeps: string };

interface HostileCase {
  /** The test's name: what is tried, and what refuses it. */
  sentence: string;
  /** Tries it under this AccessRequest name and resolves to what the caller saw. */
  attempt: (name: string) => Promise<Outcome>;
  /** The refusal, as `refused: <API server message>` or `<Phase> <Reason>: <message>`. */
  refusal: RegExp;
  /** Where the request lives, when not in the suite's namespace. */
  namespace?: () => string;
  /** The request's name, when not the one the case is given. */
  requestName?: (name: string) => string;
}

describe('hostile requests', function () {
  this.timeout(120_000);
  const namespace = useNamespace('hostile');
  const elsewhere = useNamespace('hostile-other');
  // One name for what this suite creates outside its namespaces: a pod and service account in the
  // controller's namespace, a ClusterRole and its binding, and a ClusterAccessPolicy if one slips in.
  const outside = `hostile-${process.pid}-${Date.now().toString(36)}`;
  const clusterPolicyAuthor = `mallory-${outside}`;
  // Registered before the controller, so that it runs while the controller still finalizes.
  after(async () => {
    await kubectl([
      '-n',
      CONTROLLER_NAMESPACE,
      'patch',
      'accessrequest',
      outside,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
    for (const [kind, ns] of [
      ['accessrequest', CONTROLLER_NAMESPACE],
      ['pod', CONTROLLER_NAMESPACE],
      ['serviceaccount', CONTROLLER_NAMESPACE],
    ] as const) {
      await kubectl(['-n', ns, 'delete', kind, outside, '--ignore-not-found', '--wait=false']);
    }
    for (const kind of ['clusterrolebinding', 'clusterrole', 'clusteraccesspolicy']) {
      await kubectl(['delete', kind, outside, '--ignore-not-found', '--wait=false']);
    }
  });
  // A subject not created within 2 s of its request fails it (the default is 2 minutes).
  useController('hostile', ['--await-subject', '2s']);

  const mallory = { user: 'mallory' };
  const alice = { user: 'alice' };
  const bob = { user: 'bob' };
  const carol = { user: 'carol' };
  const eve = { user: 'eve' };

  before(async function () {
    this.timeout(120_000);
    await ensureCrds();
    await webhookRegistered();
    const ns = namespace();
    const accounts = [
      'etl',
      'intruder',
      'selfie',
      'stranger',
      'ticketed',
      'probed',
      'dormant',
      'labelled',
      'limited',
      'renewer',
      'shrinker',
      'awaiting',
      'wildcard',
      'jobber',
    ];
    for (const account of accounts) await createServiceAccount(ns, account);
    const pods: [string, string, Record<string, string>?][] = [
      ['etl-pod', 'etl'],
      ['revoked-pod', 'etl'],
      ['finished-pod', 'etl'],
      ['intruder-pod', 'intruder'],
      ['self-a', 'selfie'],
      ['self-b', 'selfie'],
      ['stranger-pod', 'stranger'],
      ['ticket-pod', 'ticketed'],
      ['probe-pod', 'probed'],
      ['dormant-pod', 'dormant'],
      ['unlabelled-pod', 'labelled', { team: 'web' }],
      ['limit-1', 'limited'],
      ['limit-2', 'limited'],
      ['renew-pod', 'renewer'],
      ['shrink-pod', 'shrinker'],
      ['awaiting-pod', 'awaiting'],
      ['wildcard-pod', 'wildcard'],
    ];
    for (const [pod, account, podLabels] of pods) await createPod(ns, pod, account, podLabels);
    const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
    await api().core.patchNamespacedPodStatus(
      { namespace: ns, name: 'finished-pod', body: { status: { phase: 'Succeeded' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    await createServiceAccount(elsewhere(), 'etl');
    await createPod(elsewhere(), 'elsewhere-pod', 'etl');
    await createPolicy(elsewhere(), 'wide-elsewhere', {
      allow: { permissions: [rule(['*'], ['*'], ['*'])] },
    });

    // Allows anything to etl, with wildcards only: what is sensitive it does not name literally.
    await createPolicy(ns, 'wide', {
      allow: {
        permissions: [rule(['*'], ['*'], ['*'])],
        token: { audiences: ['orders-api'], actions: ['orders:read'], targets: ['postgres://orders-db/*'] },
      },
      maxTTL: '1h',
    });
    // Names "*" groups and resources literally, with a literal verb: it covers a rule asking for them.
    await createPolicy(ns, 'wildcard-delete', {
      subjects: { serviceAccounts: ['wildcard'] },
      allow: { permissions: [rule(['*'], ['*'], ['delete'])] },
    });
    await createPolicy(ns, 'job-self', {
      subjects: { serviceAccounts: ['jobber'] },
      requesters: { self: true },
    });
    await createPolicy(ns, 'self-service', {
      subjects: { serviceAccounts: ['selfie'] },
      requesters: { self: true },
    });
    await createPolicy(ns, 'ticketed', {
      subjects: { serviceAccounts: ['ticketed'] },
      conditions: [
        {
          name: 'has-ticket',
          expression: "request.spec.purpose.matches('^[A-Z]+-[0-9]+ ')",
          message: 'purpose must start with a ticket id',
        },
      ],
    });
    await createPolicy(ns, 'probed', {
      subjects: { serviceAccounts: ['probed'] },
      conditions: [{ name: 'team-label', expression: "subject.pod.metadata.labels['team'] == 'data'" }],
    });
    await createPolicy(ns, 'dormant', { subjects: { serviceAccounts: ['dormant'] }, suspend: true });
    await createPolicy(ns, 'labelled', {
      subjects: { serviceAccounts: ['labelled'], podSelector: { matchLabels: { team: 'data' } } },
    });
    await createPolicy(ns, 'limited', { subjects: { serviceAccounts: ['limited'] }, maxActivePerSubject: 1 });
    await createPolicy(ns, 'renewals', { subjects: { serviceAccounts: ['renewer'] }, maxRenewals: 1 });
    await createPolicy(ns, 'shrinking', {
      subjects: { serviceAccounts: ['shrinker'] },
      defaultTTL: '10s',
      maxTTL: '10s',
      maxLifetime: '1h',
    });
    await createPolicy(ns, 'manual', {
      subjects: { serviceAccounts: ['awaiting'] },
      requesters: { users: ['carol'], groups: ['system:masters'] },
      approval: {
        mode: 'Manual',
        approvers: { users: ['alice', 'carol', `system:serviceaccount:${ns}:awaiting`] },
      },
    });
    await createPolicy(ns, 'narrow-readers', { subjects: { serviceAccounts: ['nobody'] } });

    await grantRole(ns, 'requesters', requestRules, {
      users: ['mallory', 'alice', 'bob', 'carol'],
      serviceAccounts: ['selfie', 'stranger', 'awaiting', 'jobber'],
    });
    await grantRole(
      ns,
      'policy-writer',
      [{ apiGroups: ['hourglass.dev'], resources: ['accesspolicies'], verbs: ['create'] }],
      {
        users: ['mallory'],
      },
    );
    await grantRole(
      ns,
      'policy-editor',
      [
        { apiGroups: ['hourglass.dev'], resources: ['accesspolicies'], verbs: ['create', 'get', 'patch'] },
        { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
      ],
      { users: ['eve'] },
    );
    const { rbac } = api();
    await rbac.createClusterRole({
      body: {
        metadata: { name: outside },
        rules: [{ apiGroups: ['hourglass.dev'], resources: ['clusteraccesspolicies'], verbs: ['create'] }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: outside },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: outside,
        },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: clusterPolicyAuthor }],
      },
    });

    // A suspended Job (its controller creates no pod) and a pod of its service account that lists
    // the Job among its owners without being its pod: no controller: true, no Job labels.
    const job = await api().batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'nightly' },
        spec: {
          suspend: true,
          template: {
            spec: {
              serviceAccountName: 'jobber',
              restartPolicy: 'Never',
              containers: [{ name: 'main', image: 'busybox' }],
            },
          },
        },
      },
    });
    await api().core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: {
          name: 'job-hanger-on',
          ownerReferences: [
            { apiVersion: 'batch/v1', kind: 'Job', name: 'nightly', uid: job.metadata!.uid! },
          ],
        },
        spec: {
          serviceAccountName: 'jobber',
          nodeName: 'kwok-node-0',
          containers: [{ name: 'main', image: 'busybox' }],
        },
      },
    });

    await createServiceAccount(CONTROLLER_NAMESPACE, outside);
    await createPod(CONTROLLER_NAMESPACE, outside, outside);
  });

  beforeEach(webhookRegistered);

  /** A request for etl-pod reading one Secret, with these fields replaced. */
  const spec = (fields: object = {}) => ({
    subject: { podName: 'etl-pod' },
    purpose: 'OPS-1 hostile request',
    ttl: '5m',
    permissions: [readOrdersDb],
    ...fields,
  });
  const asking = (...permissions: RequestedRule[]) => spec({ permissions });

  /** Creates the request as the actor: the refusal, or the phase the controller settles it in. */
  async function submit(actor: Actor, name: string, fields: object, ns = namespace()): Promise<string> {
    const result = await createRequestAs(actor, ns, name, fields);
    if (result.refused !== undefined) return `refused: ${result.refused}`;
    if (!result.created.spec.requester) {
      throw new Error(
        `${ns}/${name} was stored without spec.requester: no admission webhook was registered (another local controller stopped); rerun`,
      );
    }
    return outcomeOf(await settled(ns, name));
  }

  /** A request for awaiting-pod under the Manual policy, AwaitingApproval. */
  async function awaitingApproval(name: string, requester: Actor = 'admin'): Promise<AccessRequest> {
    const result = await createRequestAs(
      requester,
      namespace(),
      name,
      spec({ subject: { podName: 'awaiting-pod' } }),
    );
    if (result.refused !== undefined) throw new Error(result.refused);
    return waitForPhase(namespace(), name, 'AwaitingApproval');
  }

  /** A status write's result, and the phase the request is in afterwards. */
  async function statusWrite(
    name: string,
    write: Promise<{ code: number; stderr: string }>,
  ): Promise<string> {
    const result = await write;
    // Give a wrongly accepted write the time to take effect.
    if (result.code === 0) await new Promise((r) => setTimeout(r, 2000));
    const phase = (await getRequest(namespace(), name))?.status?.phase;
    return `${result.code === 0 ? 'accepted' : `refused: ${result.stderr.trim()}`}; now ${phase}`;
  }

  /** A policy as `kubectl create` sends it, written by the actor. */
  async function writePolicy(
    actor: Actor,
    kind: 'AccessPolicy' | 'ClusterAccessPolicy',
    name: string,
    policySpec: Partial<AccessPolicySpec>,
  ): Promise<string> {
    const result = await createAs(actor, {
      apiVersion: 'hourglass.dev/v1alpha1',
      kind,
      metadata: { name, ...(kind === 'AccessPolicy' ? { namespace: namespace() } : {}) },
      spec: {
        subjects: { serviceAccounts: ['etl'] },
        requesters: { groups: ['system:masters'] },
        ...policySpec,
      },
    });
    return result.refused !== undefined ? `refused: ${result.refused}` : `created ${kind}/${name}`;
  }

  /** A granted request's renewals: the Renewed condition, and whether the grant id changed. */
  async function renewalOutcome(name: string, before: string, value: string): Promise<Outcome> {
    await annotateRequest(namespace(), name, { 'hourglass.dev/renew': value });
    const request = await eventually(
      async () => {
        const r = await getRequest(namespace(), name);
        expect(r?.status?.lastRenewal, 'the renewal to be handled').to.equal(value);
        return r!;
      },
      { what: `renewal ${value} of ${name}` },
    );
    const renewed = request.status?.conditions?.find((c) => c.type === 'Renewed');
    const grant = request.status?.grant?.id === before ? 'unchanged' : 'replaced';
    return {
      outcome: `${request.status?.phase}; Renewed=${renewed?.status} ${renewed?.reason}: ${renewed?.message}; renewals ${request.status?.renewals}; grant ${grant}`,
      keeps: before,
    };
  }

  const cases: HostileCase[] = [
    // Who asked: recorded by the webhook, never taken from the caller.
    {
      sentence: 'refuses, at the webhook, a manifest that fills in spec.requester itself',
      attempt: (name) =>
        submit('admin', name, spec({ requester: { username: 'system:serviceaccount:x:etl', groups: [] } })),
      refusal: /^refused: .*spec\.requester is set by hourglass from the authenticated caller/,
    },
    {
      sentence: 'refuses, at the webhook, a user who forges spec.requester as the cluster admin',
      attempt: (name) =>
        submit(
          mallory,
          name,
          spec({
            requester: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
          }),
        ),
      refusal: /^refused: .*spec\.requester is set by hourglass from the authenticated caller/,
    },
    {
      sentence: 'refuses, by the CRD rule, rewriting spec.requester after creation',
      attempt: async (name) => {
        const denied = await submit('admin', name, asking(rule([''], ['pods'], ['escalate'])));
        const patch = await kubectl([
          '-n',
          namespace(),
          'patch',
          'accessrequest',
          name,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { requester: { username: 'someone-else' } } }),
        ]);
        return `${patch.code === 0 ? 'accepted' : `refused: ${patch.stderr.trim()}`}; was ${denied.split(':')[0]}`;
      },
      refusal:
        /^refused: .*spec is immutable: a changed task is a new AccessRequest; was Denied NeverGranted$/,
    },
    {
      sentence:
        'refuses, by the CRD rule, an edit of spec.permissions after creation, and the request stays Denied',
      attempt: async (name) => {
        await submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['roles'], ['bind'])));
        const patch = await kubectl([
          '-n',
          namespace(),
          'patch',
          'accessrequest',
          name,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { permissions: [readOrdersDb] } }),
        ]);
        await new Promise((r) => setTimeout(r, 1000));
        const phase = (await getRequest(namespace(), name))?.status?.phase;
        return `${patch.code === 0 ? 'accepted' : `refused: ${patch.stderr.trim()}`}; now ${phase}`;
      },
      refusal: /^refused: .*spec is immutable: a changed task is a new AccessRequest; now Denied$/,
    },
    // A final phase is final, whoever writes it.
    {
      sentence:
        'refuses, by the CRD rule, moving a final phase back to Granted, even as the controller identity',
      attempt: async (name) => {
        await submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['roles'], ['escalate'])));
        const patch = await kubectl([
          '-n',
          namespace(),
          'patch',
          'accessrequest',
          name,
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify({ status: { phase: 'Granted', reason: 'Issued' } }),
        ]);
        const phase = (await getRequest(namespace(), name))?.status?.phase;
        return `${patch.code === 0 ? 'accepted' : `refused: ${patch.stderr.trim()}`}; now ${phase}`;
      },
      refusal: /^refused: .*a final phase \(Denied, Expired, Revoked, Failed\) cannot change; now Denied$/,
    },

    // The CRD schema: what no request may even say.
    {
      sentence: 'refuses, by the CRD schema, a request name longer than 63 characters',
      requestName: (name) => `${name}-${'x'.repeat(60)}`,
      attempt: (name) => submit('admin', `${name}-${'x'.repeat(60)}`, spec()),
      refusal: /^refused: .*metadata\.name must be at most 63 characters/,
    },
    {
      sentence: 'refuses, by the CRD schema, nonResourceURLs',
      attempt: (name) =>
        submit('admin', name, asking({ ...readOrdersDb, nonResourceURLs: ['/metrics'] } as RequestedRule)),
      refusal: /^refused: .*nonResourceURLs cannot be granted/,
    },
    {
      sentence: 'refuses, by the CRD schema, resourceNames "*"',
      attempt: (name) => submit('admin', name, asking(rule([''], ['secrets'], ['get'], ['*']))),
      refusal: /^refused: .*resourceNames must be literal names: "\*" is not allowed/,
    },
    {
      sentence: 'refuses, by the CRD schema, a glob in resourceNames ("orders-*")',
      attempt: (name) => submit('admin', name, asking(rule([''], ['secrets'], ['get'], ['orders-*']))),
      refusal: /^refused: .*resourceNames must be literal names/,
    },
    {
      sentence: 'refuses, by the CRD schema, a token target with ".."',
      attempt: (name) =>
        submit(
          'admin',
          name,
          spec({ token: { ...readOrders.token, target: 'postgres://orders-db/../payments' } }),
        ),
      refusal: /^refused: .*target must not contain "\.\."/,
    },
    {
      sentence: 'refuses, by the CRD schema, a percent-encoded token target ("%2e%2e")',
      attempt: (name) =>
        submit(
          'admin',
          name,
          spec({ token: { ...readOrders.token, target: 'postgres://orders-db/%2e%2e/payments' } }),
        ),
      refusal: /^refused: .*spec\.token\.target.*should match/,
    },
    {
      sentence: 'refuses, by the CRD schema, a wildcard token target',
      attempt: (name) =>
        submit('admin', name, spec({ token: { ...readOrders.token, target: 'postgres://orders-db/*' } })),
      refusal: /^refused: .*spec\.token\.target.*should match/,
    },
    {
      sentence: 'refuses, by the CRD schema, a wildcard token action ("orders:*")',
      attempt: (name) =>
        submit('admin', name, spec({ token: { ...readOrders.token, actions: ['orders:*'] } })),
      refusal: /^refused: .*spec\.token\.actions\[0\].*should match/,
    },
    {
      sentence: "refuses, by the webhook's schema bounds, a token for two audiences",
      attempt: (name) =>
        submit(
          'admin',
          name,
          spec({ token: { ...readOrders.token, audience: ['orders-api', 'payments-api'] } }),
        ),
      refusal: /^refused: .*denied the request: spec\.token\.audience: at most 1 item \(got 2\)/,
    },
    {
      sentence: 'refuses, by the CRD schema, a ttl above 24h',
      attempt: (name) => submit('admin', name, spec({ ttl: '25h' })),
      refusal: /^refused: .*ttl must be between 10s and 24h/,
    },
    {
      sentence: 'refuses, by the CRD schema, a ttl below 10s',
      attempt: (name) => submit('admin', name, spec({ ttl: '1s' })),
      refusal: /^refused: .*ttl must be between 10s and 24h/,
    },
    {
      sentence: 'refuses, by the CRD schema, a request that names neither permissions nor a token',
      attempt: (name) => submit('admin', name, spec({ permissions: undefined })),
      refusal: /^refused: .*at least one of permissions or token is required/,
    },
    {
      sentence: 'refuses, by the CRD schema, a subject that names both a pod and a Job',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'etl-pod', jobName: 'etl' } })),
      refusal: /^refused: .*exactly one of subject\.podName or subject\.jobName must be set/,
    },

    // The subject: one workload of the request's own namespace.
    {
      sentence: 'fails with SubjectNotFound a request naming a pod that exists only in another namespace',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'elsewhere-pod' } })),
      refusal:
        /^Failed SubjectNotFound: The subject pod "elsewhere-pod" does not exist in namespace "hostile-/,
    },
    {
      sentence: 'fails with SubjectNotFound a request naming a Job that does not exist',
      attempt: (name) => submit('admin', name, spec({ subject: { jobName: 'ghost' } })),
      refusal: /^Failed SubjectNotFound: The subject Job "ghost" does not exist/,
    },
    {
      sentence: 'fails with SubjectFinished a request for a pod that has already finished',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'finished-pod' } })),
      refusal: /^Failed SubjectFinished: The subject pod "finished-pod" has already finished/,
    },
    {
      sentence: 'denies a pod whose service account the policy does not cover',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'intruder-pod' } })),
      refusal:
        /^Denied NoPolicyAllows: denied: .*AccessPolicy\/wide: service account "intruder" is not a subject/,
    },
    {
      sentence: "denies a pod whose labels miss the policy's podSelector",
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'unlabelled-pod' } })),
      refusal: /AccessPolicy\/labelled: the subject's labels do not match subjects\.podSelector/,
    },

    // Who may ask.
    {
      sentence: 'denies a user the policy does not list as a requester',
      attempt: (name) => submit(mallory, name, spec()),
      refusal:
        /^Denied NoPolicyAllows: .*AccessPolicy\/wide: requester "mallory" is not allowed: requesters\.groups accepts "system:masters"/,
    },
    {
      sentence: 'denies, under requesters.self, a token bound to pod self-a asking for pod self-b',
      attempt: async (name) =>
        submit(
          { token: await podBoundToken(namespace(), 'selfie', 'self-a') },
          name,
          spec({ subject: { podName: 'self-b' } }),
        ),
      refusal:
        /^Denied NoPolicyAllows: .*AccessPolicy\/self-service: requester "system:serviceaccount:hostile-[^"]+:selfie" \(pod self-a\) is not allowed: requesters\.self needs a token bound to the subject pod "self-b"/,
    },
    {
      sentence: "denies, under requesters.self, a plain token of the subject's own service account",
      attempt: async (name) =>
        submit(
          { token: await plainToken(namespace(), 'selfie') },
          name,
          spec({ subject: { podName: 'self-a' } }),
        ),
      refusal:
        /AccessPolicy\/self-service: .*requesters\.self needs a token bound to the subject pod "self-a" \(a token bound to no pod is not enough\)/,
    },
    {
      sentence: 'denies, under requesters.self, a token of another service account bound to its own pod',
      attempt: async (name) =>
        submit(
          { token: await podBoundToken(namespace(), 'stranger', 'stranger-pod') },
          name,
          spec({ subject: { podName: 'self-a' } }),
        ),
      refusal:
        /AccessPolicy\/self-service: .*requesters\.self needs a token of service account "selfie" bound to the subject pod "self-a"/,
    },
    {
      sentence:
        "a pod of the Job's service account that merely lists the Job among its owners cannot ask for the Job under requesters.self",
      attempt: async (name) =>
        submit(
          { token: await podBoundToken(namespace(), 'jobber', 'job-hanger-on') },
          name,
          spec({ subject: { jobName: 'nightly' } }),
        ),
      refusal:
        /^Denied NoPolicyAllows: .*AccessPolicy\/job-self: requester "system:serviceaccount:hostile-[^"]+:jobber" \(pod job-hanger-on\) is not allowed: requesters\.self needs a token bound to a pod of the subject Job "nightly": pod "job-hanger-on" is not controlled by the Job/,
    },

    // Never granted, whatever a policy says.
    {
      sentence: 'denies the verb escalate as never granted',
      attempt: (name) =>
        submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['roles'], ['escalate']))),
      refusal: /^Denied NeverGranted: permissions\[0\]: verb "escalate" is never granted$/,
    },
    {
      sentence: 'denies the verb bind as never granted',
      attempt: (name) =>
        submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['roles'], ['get', 'bind']))),
      refusal: /^Denied NeverGranted: permissions\[0\]: verb "bind" is never granted$/,
    },
    {
      sentence: 'denies the verb impersonate as never granted',
      attempt: (name) =>
        submit('admin', name, asking(readOrdersDb, rule([''], ['serviceaccounts'], ['impersonate']))),
      refusal: /^Denied NeverGranted: permissions\[1\]: verb "impersonate" is never granted$/,
    },
    {
      sentence: 'denies the verb "*" on roles, which includes escalate and bind',
      attempt: (name) => submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['roles'], ['*']))),
      refusal:
        /^Denied NeverGranted: .*verb "\*" on "roles" in group "rbac\.authorization\.k8s\.io" includes escalate and bind/,
    },
    {
      sentence: 'denies the verb "*" on serviceaccounts, which includes impersonate',
      attempt: (name) => submit('admin', name, asking(rule([''], ['serviceaccounts'], ['*']))),
      refusal: /^Denied NeverGranted: .*verb "\*" on "serviceaccounts" includes impersonate/,
    },
    {
      sentence: 'denies the cluster-scoped resource nodes',
      attempt: (name) => submit('admin', name, asking(rule([''], ['nodes'], ['get']))),
      refusal:
        /^Denied NeverGranted: permissions\[0\]: "nodes" is cluster-scoped, and cluster-scoped resources are never granted$/,
    },
    {
      sentence: 'denies the cluster-scoped resource clusterroles',
      attempt: (name) =>
        submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['clusterroles'], ['get']))),
      refusal:
        /^Denied NeverGranted: .*"clusterroles" in group "rbac\.authorization\.k8s\.io" is cluster-scoped/,
    },
    {
      sentence: 'denies the cluster-scoped resource namespaces',
      attempt: (name) => submit('admin', name, asking(rule([''], ['namespaces'], ['get'], ['kube-system']))),
      refusal: /^Denied NeverGranted: .*"namespaces" is cluster-scoped/,
    },
    {
      sentence:
        'a namespace tenant cannot get delete on its own Namespace through a wildcard rule a policy allows literally',
      attempt: async (name) => {
        const outcome = await submit(
          'admin',
          name,
          spec({ subject: { podName: 'wildcard-pod' }, permissions: [rule(['*'], ['*'], ['delete'])] }),
        );
        const deletes = await canI(namespace(), 'wildcard', 'delete', 'namespaces', namespace());
        return `${outcome}; can-i delete namespace: ${deletes ? 'yes' : 'no'}`;
      },
      refusal:
        /^Denied NeverGranted: permissions\[0\]: resource "\*" in group "\*" reaches the Namespace "hostile-[^"]+" itself .*; can-i delete namespace: no$/,
    },
    {
      sentence: "denies hourglass's signing-key Secret by name",
      attempt: (name) =>
        submit('admin', name, asking(rule([''], ['secrets'], ['get'], ['orders-db', SIGNING_KEYS]))),
      refusal:
        /^Denied NeverGranted: permissions\[0\]: Secret "hourglass-signing-keys" holds hourglass's signing keys and is never granted$/,
    },
    {
      sentence:
        "denies anything in the controller's own namespace, even its signing keys asked for from there",
      namespace: () => CONTROLLER_NAMESPACE,
      attempt: () =>
        submit(
          'admin',
          outside,
          spec({
            subject: { podName: outside },
            permissions: [rule([''], ['secrets'], ['get'], [SIGNING_KEYS])],
          }),
          CONTROLLER_NAMESPACE,
        ),
      refusal:
        /^Denied NeverGranted: namespace "hourglass-system" is hourglass's own: nothing in it is ever granted$/,
    },
    {
      sentence: 'denies a resource the API server does not serve',
      attempt: (name) => submit('admin', name, asking(rule(['example.com'], ['widgets'], ['get']))),
      refusal:
        /^Denied UnknownResource: permissions\[0\]: unknown resource "widgets" in group "example\.com"$/,
    },
    {
      sentence: 'denies a resource spelled in capitals to dodge the sensitive list ("SECRETS")',
      attempt: (name) => submit('admin', name, asking(rule([''], ['SECRETS'], ['get']))),
      refusal: /^Denied UnknownResource: .*unknown resource "SECRETS"/,
    },

    // Sensitive: only a literal mention covers it, and the wide policy has only wildcards.
    {
      sentence: 'denies the verb "*" where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule([''], ['configmaps'], ['*']))),
      refusal:
        /AccessPolicy\/wide: permissions\[0\]: verb "\*" on "configmaps" is sensitive \(it asks for a wildcard\)/,
    },
    {
      sentence: 'denies the resource "*" where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule(['apps'], ['*'], ['get']))),
      refusal:
        /AccessPolicy\/wide: permissions\[0\]: verb "get" on "\*" in group "apps" is sensitive \(it asks for a wildcard\)/,
    },
    {
      sentence: 'denies the apiGroup "*" where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule(['*'], ['configmaps'], ['get']))),
      refusal: /AccessPolicy\/wide: .*"configmaps" in group "\*" is sensitive \(it asks for a wildcard\)/,
    },
    {
      sentence: 'denies pods/exec where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule([''], ['pods/exec'], ['create'], ['etl-pod']))),
      refusal:
        /AccessPolicy\/wide: .*"pods\/exec" named "etl-pod" is sensitive \(it reaches into running containers\)/,
    },
    {
      sentence: 'denies pods/portforward where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule([''], ['pods/portforward'], ['create']))),
      refusal:
        /AccessPolicy\/wide: .*"pods\/portforward" is sensitive \(it reaches into running containers\)/,
    },
    {
      sentence: "a policy author's wildcard does not give a tenant pods/ephemeralcontainers",
      attempt: (name) =>
        submit('admin', name, asking(rule([''], ['pods/ephemeralcontainers'], ['patch'], ['etl-pod']))),
      refusal:
        /AccessPolicy\/wide: .*verb "patch" on "pods\/ephemeralcontainers" named "etl-pod" is sensitive \(it reaches into running containers\)/,
    },
    {
      sentence: "a policy author's wildcard does not let a tenant patch a pod's image",
      attempt: (name) => submit('admin', name, asking(rule([''], ['pods'], ['patch'], ['etl-pod']))),
      refusal:
        /AccessPolicy\/wide: .*verb "patch" on "pods" named "etl-pod" is sensitive \(it changes what workloads run\)/,
    },
    {
      sentence: 'denies serviceaccounts/token where the policy allows it only by wildcard',
      attempt: (name) =>
        submit('admin', name, asking(rule([''], ['serviceaccounts/token'], ['create'], ['etl']))),
      refusal:
        /AccessPolicy\/wide: .*"serviceaccounts\/token" named "etl" is sensitive \(it mints service account tokens\)/,
    },
    {
      sentence: 'denies secrets without resourceNames where the policy allows them only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule([''], ['secrets'], ['get']))),
      refusal:
        /AccessPolicy\/wide: permissions\[0\]: verb "get" on "secrets" is sensitive \(it reaches every Secret\)/,
    },
    {
      sentence: 'denies creating pods where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule([''], ['pods'], ['create']))),
      refusal: /AccessPolicy\/wide: .*verb "create" on "pods" is sensitive \(it creates workloads\)/,
    },
    {
      sentence: 'denies creating Deployments where the policy allows it only by wildcard',
      attempt: (name) => submit('admin', name, asking(rule(['apps'], ['deployments'], ['create']))),
      refusal: /AccessPolicy\/wide: .*"deployments" in group "apps" is sensitive \(it creates workloads\)/,
    },
    {
      sentence: 'denies writing RoleBindings where the policy allows it only by wildcard',
      attempt: (name) =>
        submit('admin', name, asking(rule(['rbac.authorization.k8s.io'], ['rolebindings'], ['create']))),
      refusal:
        /AccessPolicy\/wide: .*"rolebindings" in group "rbac\.authorization\.k8s\.io" is sensitive \(it writes RBAC\)/,
    },
    {
      sentence:
        "denies hourglass's own API (approving AccessRequests) where the policy allows it only by wildcard",
      attempt: (name) =>
        submit('admin', name, asking(rule(['hourglass.dev'], ['accessrequests/status'], ['patch']))),
      refusal:
        /AccessPolicy\/wide: .*"accessrequests\/status" in group "hourglass\.dev" is sensitive \(it reaches hourglass's own API\)/,
    },

    // The policy's limits and conditions.
    {
      sentence: "denies a ttl over the policy's maxTTL",
      attempt: (name) => submit('admin', name, spec({ ttl: '2h' })),
      refusal: /AccessPolicy\/wide: ttl 2h exceeds maxTTL 1h/,
    },
    {
      sentence: 'denies a token audience the policy does not allow',
      attempt: (name) =>
        submit('admin', name, spec({ token: { ...readOrders.token, audience: ['payments-api'] } })),
      refusal: /AccessPolicy\/wide: token audience "payments-api" is not in allow\.token\.audiences/,
    },
    {
      sentence: 'denies a token action the policy does not allow',
      attempt: (name) =>
        submit('admin', name, spec({ token: { ...readOrders.token, actions: ['orders:write'] } })),
      refusal: /AccessPolicy\/wide: token action "orders:write" is not in allow\.token\.actions/,
    },
    {
      sentence: 'denies a token target whose "*" would have to cross a "/"',
      attempt: (name) =>
        submit(
          'admin',
          name,
          spec({ token: { ...readOrders.token, target: 'postgres://orders-db/orders/admin' } }),
        ),
      refusal:
        /AccessPolicy\/wide: token target "postgres:\/\/orders-db\/orders\/admin" matches no glob in allow\.token\.targets/,
    },
    {
      sentence: 'denies when a CEL condition of the policy is false',
      attempt: (name) =>
        submit(
          'admin',
          name,
          spec({ subject: { podName: 'ticket-pod' }, purpose: 'no ticket, just curious' }),
        ),
      refusal: /AccessPolicy\/ticketed: condition "has-ticket" failed: purpose must start with a ticket id/,
    },
    {
      sentence: 'denies when a CEL condition cannot be evaluated (a missing key)',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'probe-pod' } })),
      refusal: /AccessPolicy\/probed: condition "team-label" could not be evaluated/,
    },
    {
      sentence: 'denies under a suspended policy',
      attempt: (name) => submit('admin', name, spec({ subject: { podName: 'dormant-pod' } })),
      refusal: /AccessPolicy\/dormant: policy is suspended/,
    },
    {
      sentence: 'denies a grant beyond maxActivePerSubject for the service account',
      attempt: async (name) => {
        await createRequestAs(
          'admin',
          namespace(),
          `${name}-first`,
          spec({ subject: { podName: 'limit-1' } }),
        );
        await waitForPhase(namespace(), `${name}-first`, 'Granted');
        return submit('admin', name, spec({ subject: { podName: 'limit-2' } }));
      },
      refusal:
        /AccessPolicy\/limited: service account "limited" already holds 1 active grants \(maxActivePerSubject 1\)/,
    },
    {
      sentence: 'refuses a renewal over maxRenewals (Renewed=False RenewalRefused) and keeps the grant id',
      attempt: async (name) => {
        await createRequestAs('admin', namespace(), name, spec({ subject: { podName: 'renew-pod' } }));
        await waitForPhase(namespace(), name, 'Granted');
        await annotateRequest(namespace(), name, { 'hourglass.dev/renew': 'r1' });
        const once = await eventually(async () => {
          const r = await getRequest(namespace(), name);
          expect(r?.status?.renewals).to.equal(1);
          return r!;
        });
        return renewalOutcome(name, once.status!.grant!.id!, 'r2');
      },
      refusal:
        /^Granted; Renewed=False RenewalRefused: Renewal refused: the policy allows at most 1 renewals\.; renewals 1; grant unchanged$/,
    },
    {
      sentence: "refuses a renewal once the grant's lifetime is over the policy's maxLifetime",
      attempt: async (name) => {
        // ttl = maxTTL = 10s: renewed once, the grant outlives one ttl; then maxLifetime shrinks to
        // 10s. A renewal is decided under the policy as it is now (api.md), so the next one must be
        // refused: the grant is already older than the policy's maxLifetime. (Fails while plan.ts
        // checks renewals against status.lifetimeEndsAt, fixed at the first issue.)
        await createRequestAs(
          'admin',
          namespace(),
          name,
          spec({ subject: { podName: 'shrink-pod' }, ttl: '10s' }),
        );
        const granted = await waitForPhase(namespace(), name, 'Granted');
        const firstIssued = Date.parse(granted.status!.firstIssuedAt!);
        await new Promise((r) => setTimeout(r, firstIssued + 5_000 - Date.now()));
        await annotateRequest(namespace(), name, { 'hourglass.dev/renew': 'r1' });
        const renewed = await eventually(async () => {
          const r = await getRequest(namespace(), name);
          expect(r?.status?.renewals).to.equal(1);
          return r!;
        });
        await patchPolicy(namespace(), 'shrinking', { maxLifetime: '10s' });
        await new Promise((r) => setTimeout(r, firstIssued + 11_500 - Date.now()));
        return renewalOutcome(name, renewed.status!.grant!.id!, 'r2');
      },
      refusal: /^Granted; Renewed=False RenewalRefused: .*maxLifetime.*; renewals 1; grant unchanged$/,
    },
    {
      sentence: 'keeps a revoked grant revoked when the revoke annotation is taken away again',
      attempt: async (name) => {
        await createRequestAs('admin', namespace(), name, spec({ subject: { podName: 'revoked-pod' } }));
        await waitForPhase(namespace(), name, 'Granted');
        await annotateRequest(namespace(), name, { 'hourglass.dev/revoke': 'done' });
        await waitForPhase(namespace(), name, 'Revoked');
        await kubectlOk(['-n', namespace(), 'annotate', 'accessrequest', name, 'hourglass.dev/revoke-']);
        await new Promise((r) => setTimeout(r, 2000));
        return outcomeOf((await getRequest(namespace(), name))!);
      },
      refusal: /^Revoked Manual: /,
    },

    // Status belongs to the controller; approvers may only add one decision.
    {
      sentence: 'refuses, at the webhook, an approval by the requester of their own request',
      attempt: async (name) => {
        await awaitingApproval(name, carol);
        return statusWrite(name, decideAs(carol, namespace(), name, 'Approved'));
      },
      refusal: /^refused: .*the requester cannot approve or deny their own request; now AwaitingApproval$/,
    },
    {
      sentence: 'refuses, at the webhook, an approval by a user the policy does not list',
      attempt: async (name) => {
        await awaitingApproval(name);
        return statusWrite(name, decideAs(bob, namespace(), name, 'Approved'));
      },
      refusal: /^refused: .*bob is not an approver of AccessPolicy\/manual; now AwaitingApproval$/,
    },
    {
      sentence: "refuses, at the webhook, an approval by the subject's own service account",
      attempt: async (name) => {
        await awaitingApproval(name);
        const account = { user: `system:serviceaccount:${namespace()}:awaiting` };
        return statusWrite(name, decideAs(account, namespace(), name, 'Approved'));
      },
      refusal:
        /^refused: .*the subject's service account cannot approve or deny its own access; now AwaitingApproval$/,
    },
    {
      sentence: 'refuses, at the webhook, an approval of a request that is not AwaitingApproval',
      attempt: async (name) => {
        await submit('admin', name, spec({ subject: { podName: 'awaiting-pod' }, ttl: '2h' }));
        return statusWrite(name, decideAs(alice, namespace(), name, 'Approved'));
      },
      refusal:
        /^refused: .*only a request AwaitingApproval can be approved or denied; this one is Denied; now Denied$/,
    },
    {
      sentence: 'refuses, at the webhook, a status write by another identity that is not an approval',
      attempt: async (name) => {
        await awaitingApproval(name);
        return statusWrite(
          name,
          patchStatusAs(mallory, namespace(), name, { phase: 'Granted', reason: 'Issued' }),
        );
      },
      refusal:
        /^refused: .*the status of an AccessRequest is written by hourglass; .*; now AwaitingApproval$/,
    },
    {
      sentence: 'refuses, at the webhook, an approver who adds Granted along with Approved',
      attempt: async (name) => {
        const request = await awaitingApproval(name);
        const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const conditions = [
          ...(request.status?.conditions ?? []),
          { type: 'Approved', status: 'True', reason: 'Reviewed', message: 'ok', lastTransitionTime: at },
          { type: 'Granted', status: 'True', reason: 'Issued', message: 'ok', lastTransitionTime: at },
        ];
        return statusWrite(name, patchStatusAs(alice, namespace(), name, { conditions }));
      },
      refusal:
        /^refused: .*an approver may only add one Approved or Denied condition with status "True"; now AwaitingApproval$/,
    },
    {
      sentence: 'refuses, at the webhook, an approver who also rewrites the recorded policy',
      attempt: async (name) => {
        const request = await awaitingApproval(name);
        const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        return statusWrite(
          name,
          patchStatusAs(alice, namespace(), name, {
            conditions: [
              ...(request.status?.conditions ?? []),
              { type: 'Approved', status: 'True', reason: 'Reviewed', message: 'ok', lastTransitionTime: at },
            ],
            policy: { ...request.status?.policy, name: 'wide' },
          }),
        );
      },
      refusal:
        /^refused: .*the status of an AccessRequest is written by hourglass; .*; now AwaitingApproval$/,
    },

    // Writing a policy is itself privileged.
    {
      sentence: 'refuses, at the webhook, a policy author allowing get secrets they do not hold',
      attempt: () =>
        writePolicy(mallory, 'AccessPolicy', 'mallory-secrets', {
          allow: { permissions: [readOrdersDb] },
        }),
      refusal:
        /^refused: .*mallory cannot allow what they do not hold in namespace "hostile-[^"]+": get secrets\/orders-db$/,
    },
    {
      sentence: 'refuses, at the webhook, a policy author allowing a token audience without issue on it',
      attempt: () =>
        writePolicy(mallory, 'AccessPolicy', 'mallory-tokens', {
          allow: {
            token: {
              audiences: ['orders-api'],
              actions: ['orders:read'],
              targets: ['postgres://orders-db/*'],
            },
          },
        }),
      refusal:
        /^refused: .*mallory cannot allow what they do not hold .*: issue audiences\.hourglass\.dev\/orders-api$/,
    },
    {
      sentence: 'refuses, at the webhook, a policy author who holds one Secret allowing every Secret',
      attempt: () =>
        writePolicy(eve, 'AccessPolicy', 'eve-secrets', {
          allow: { permissions: [rule([''], ['secrets'], ['get'])] },
        }),
      refusal: /^refused: .*eve cannot allow what they do not hold in namespace "[^"]+": get secrets$/,
    },
    {
      sentence: 'refuses, at the webhook, a policy editor widening an existing policy beyond what they hold',
      attempt: async () => {
        const patch = await kubectlAs(eve, [
          '-n',
          namespace(),
          'patch',
          'accesspolicy',
          'narrow-readers',
          '--type=merge',
          '-p',
          JSON.stringify({
            spec: { allow: { permissions: [readOrdersDb, rule([''], ['secrets'], ['list'])] } },
          }),
        ]);
        return patch.code === 0 ? 'accepted' : `refused: ${patch.stderr.trim()}`;
      },
      refusal: /^refused: .*eve cannot allow what they do not hold .*: list secrets(, |$)/,
    },
    {
      sentence:
        'refuses, at the webhook, a policy whose CEL condition does not compile, naming the condition',
      attempt: () =>
        writePolicy('admin', 'AccessPolicy', 'broken-cel', {
          allow: { permissions: [readOrdersDb] },
          conditions: [{ name: 'has-ticket', expression: 'request.spec.purpose.startsWith(', message: 'x' }],
        }),
      refusal: /^refused: .*spec\.conditions: condition "has-ticket" does not compile: /,
    },
    {
      sentence: 'refuses, at the webhook, a policy whose condition reads a variable that does not exist',
      attempt: () =>
        writePolicy('admin', 'AccessPolicy', 'unknown-variable', {
          allow: { permissions: [readOrdersDb] },
          conditions: [{ name: 'uses-env', expression: 'env.ADMIN == "yes"', message: 'x' }],
        }),
      refusal: /^refused: .*condition "uses-env" does not compile: .*env/,
    },
    {
      sentence:
        'refuses, at the webhook, a ClusterAccessPolicy author allowing what they do not hold cluster-wide',
      attempt: () =>
        writePolicy({ user: clusterPolicyAuthor }, 'ClusterAccessPolicy', outside, {
          allow: { permissions: [readOrdersDb] },
        }),
      refusal: /^refused: .*cannot allow what they do not hold cluster-wide: get secrets\/orders-db$/,
    },
  ];

  cases.forEach((hostile, index) => {
    it(hostile.sentence, async () => {
      const name = `hostile-${String(index).padStart(2, '0')}`;
      const ns = hostile.namespace?.() ?? namespace();
      const seen = await hostile.attempt(name);
      // One line, as multi-line API server messages are matched by one regular expression.
      const outcome = (typeof seen === 'string' ? seen : seen.outcome).replace(/\s+/g, ' ');
      expect(outcome, `what the caller saw: ${outcome}\n`).to.match(hostile.refusal);
      const requestName = hostile.requestName?.(name) ?? name;
      const objects = await grantObjectsPresent(ns, requestName);
      if (typeof seen === 'string') {
        expect(objects.any, 'grant objects left behind').to.equal(false);
      } else {
        // A refused renewal leaves the grant it did not replace, and nothing newer.
        for (const object of [objects.secret, objects.role, objects.roleBinding])
          expect(object?.metadata?.labels?.[labels.grantId]).to.equal(seen.keeps);
      }
    });
  });

  it('has at least 40 hostile cases, each refused for a reason', () => {
    expect(cases.length).to.be.at.least(40);
    expect(new Set(cases.map((c) => c.sentence)).size).to.equal(cases.length);
  });
});
