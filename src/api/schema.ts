/**
 * The OpenAPI v3 schemas of hourglass's kinds: the single source from which `crds/` and
 * `src/api/types.generated.ts` are generated (`npm run generate`), so the CRDs users install
 * and the types the controller compiles against cannot drift.
 */

export interface JSONSchema {
  /** Names the generated TypeScript type of a reusable fragment. */
  title?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchema>;
  additionalProperties?: JSONSchema | boolean;
  items?: JSONSchema;
  required?: string[];
  enum?: string[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-validations'?: { rule: string; message: string; reason?: string; fieldPath?: string }[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
}

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const GO_DURATION = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';
const PRINTABLE = '^[^\\p{C}]+$';
const LITERAL = '^[^*\\s\\p{Z}\\p{C}]+$';
const RULE_ITEM = '^[^\\s\\p{C}]+$';

const string = (description: string, extra: JSONSchema = {}): JSONSchema => ({
  type: 'string',
  description,
  ...extra,
});
const list = (items: JSONSchema, description: string, extra: JSONSchema = {}): JSONSchema => ({
  type: 'array',
  description,
  items,
  'x-kubernetes-list-type': 'atomic',
  ...extra,
});
const object = (
  description: string,
  properties: Record<string, JSONSchema>,
  extra: JSONSchema = {},
): JSONSchema => ({ type: 'object', description, properties, ...extra });
const timestamp = (description: string): JSONSchema => string(description, { format: 'date-time' });
const duration = (description: string, extra: JSONSchema = {}): JSONSchema =>
  string(description, { pattern: GO_DURATION, maxLength: 32, ...extra });
const names = (description: string, maxItems = 64): JSONSchema =>
  list(string('', { minLength: 1, maxLength: 253 }), description, { maxItems });

function policyRule(context: 'request' | 'policy'): JSONSchema {
  const ruleItems = (what: string, maxItems: number) =>
    list(
      string('', {
        minLength: 0,
        maxLength: 253,
        pattern: what === 'apiGroups' ? '^[^\\s\\p{C}]*$' : RULE_ITEM,
      }),
      '',
      {
        maxItems,
      },
    );
  const rule = object(
    context === 'request'
      ? 'One RBAC rule to grant in the request namespace, in the shape of an RBAC PolicyRule.'
      : 'One RBAC rule this policy allows; every requested rule must be covered by an allowed rule.',
    {
      apiGroups: {
        ...ruleItems('apiGroups', 16),
        minItems: 1,
        description: 'API groups of the resources; "" is the core group.',
      },
      resources: {
        ...ruleItems('resources', 32),
        minItems: 1,
        description:
          'Namespaced resources (and subresources, as "pods/log"). Cluster-scoped resources are never granted.',
      },
      resourceNames: {
        ...ruleItems('resourceNames', 64),
        description:
          context === 'request'
            ? 'Names of the objects; empty means every object of the resources. Wildcards are not allowed.'
            : 'Names of the objects; empty allows every object. A requested rule without resourceNames is only covered by an allowed rule without them.',
      },
      verbs: { ...ruleItems('verbs', 16), minItems: 1, description: 'Verbs, as "get", "list", "watch".' },
      nonResourceURLs: list(
        string('', { maxLength: 253 }),
        'Not supported: hourglass grants namespaced access only.',
        { maxItems: 16 },
      ),
    },
    {
      title: context === 'request' ? 'RequestedRule' : 'AllowedRule',
      required: ['apiGroups', 'resources', 'verbs'],
      'x-kubernetes-validations': [
        {
          rule: '!has(self.nonResourceURLs) || size(self.nonResourceURLs) == 0',
          message: 'nonResourceURLs cannot be granted: hourglass grants namespaced access only',
        },
        ...(context === 'request'
          ? [
              {
                rule: '!has(self.resourceNames) || self.resourceNames.all(n, !n.contains("*"))',
                message: 'resourceNames must be literal names: "*" is not allowed',
              },
            ]
          : []),
      ],
    },
  );
  return rule;
}

const labelSelector = (description: string): JSONSchema =>
  object(
    description,
    {
      matchLabels: {
        type: 'object',
        description: 'Labels that must all be present with these values.',
        additionalProperties: { type: 'string', maxLength: 63 },
        maxProperties: 64,
      },
      matchExpressions: list(
        object(
          'A label requirement.',
          {
            key: string('The label key.', { maxLength: 317 }),
            operator: string('How the key relates to the values.', {
              enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
            }),
            values: list(
              string('', { maxLength: 63 }),
              'Values for In and NotIn; empty for Exists and DoesNotExist.',
              {
                maxItems: 64,
              },
            ),
          },
          { required: ['key', 'operator'] },
        ),
        'Label requirements that must all hold.',
        { maxItems: 32 },
      ),
    },
    { title: 'LabelSelector', 'x-kubernetes-map-type': 'atomic' },
  );

const condition: JSONSchema = object(
  'A condition in the shape of metav1.Condition.',
  {
    type: string('The condition type, in CamelCase.', { maxLength: 316 }),
    status: string('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      minimum: 0,
      description: 'The generation the condition was set for.',
    },
    lastTransitionTime: timestamp('When the status last changed.'),
    reason: string('A CamelCase word saying why.', {
      maxLength: 1024,
      minLength: 1,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: string('A human-readable explanation.', { maxLength: 32768 }),
  },
  { title: 'Condition', required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
);

const conditions = (description: string): JSONSchema =>
  list(condition, description, {
    maxItems: 16,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });

// --- AccessRequest ---------------------------------------------------------------------------

const accessRequestSpec: JSONSchema = object(
  "One task's request for just-in-time access for one workload in the request's namespace. Immutable after creation: a changed task is a new AccessRequest.",
  {
    subject: object(
      "The workload that receives the grant: exactly one of podName or jobName, in the request's namespace.",
      {
        podName: string(
          'A Pod: the grant lives while this pod (its UID at admission) exists and has not finished.',
          {
            maxLength: 253,
            pattern: DNS_SUBDOMAIN,
          },
        ),
        jobName: string(
          'A Job: the grant lives while this Job (its UID at admission) exists and is not Complete or Failed.',
          {
            maxLength: 63,
            pattern: DNS_LABEL,
          },
        ),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: 'has(self.podName) != has(self.jobName)',
            message: 'exactly one of subject.podName or subject.jobName must be set',
          },
        ],
      },
    ),
    purpose: string(
      'Why the task needs access, for approvers and the audit log, as a ticket id and a sentence. 1 to 512 printable characters.',
      {
        minLength: 1,
        maxLength: 512,
        pattern: PRINTABLE,
      },
    ),
    ttl: duration(
      "Lifetime of one grant, a Go duration from 10s to 24h. Defaults to the allowing policy's defaultTTL; above its maxTTL the request is Denied.",
      {
        'x-kubernetes-validations': [
          {
            rule:
              "!self.matches('" +
              GO_DURATION.replaceAll('\\', '\\\\') +
              "') || (duration(self) >= duration('10s') && duration(self) <= duration('24h'))",
            message: 'ttl must be between 10s and 24h',
          },
        ],
      },
    ),
    permissions: list(
      policyRule('request'),
      "RBAC rules to grant in this namespace: the grant's Role holds exactly these.",
      {
        minItems: 1,
        maxItems: 32,
      },
    ),
    token: object(
      'A short-lived signed JWT for backends outside Kubernetes, stored in the grant Secret under the key "token".',
      {
        audience: list(
          string('', { minLength: 1, maxLength: 253, pattern: LITERAL }),
          'The backend the token is for: exactly one audience.',
          {
            minItems: 1,
            maxItems: 1,
          },
        ),
        actions: list(
          string('', { minLength: 1, maxLength: 128, pattern: LITERAL }),
          'Literal actions the token allows, as "orders:read"; no wildcards.',
          {
            minItems: 1,
            maxItems: 32,
          },
        ),
        target: string(
          'The literal resource the actions apply to, as "postgres://orders-db/orders"; no wildcards, "..", "%" or whitespace.',
          {
            minLength: 1,
            maxLength: 1024,
            pattern: '^[^*%\\s\\p{Z}\\p{C}]+$',
            'x-kubernetes-validations': [
              { rule: "!self.contains('..')", message: 'target must not contain ".."' },
            ],
          },
        ),
      },
      { required: ['audience', 'actions', 'target'] },
    ),
    requester: object(
      'Who asked, as the API server authenticated them. Set by the admission webhook; a value supplied by the caller is refused.',
      {
        username: string('The authenticated user name.', { maxLength: 512 }),
        uid: string('The authenticated user UID.', { maxLength: 253 }),
        groups: list(string('', { maxLength: 512 }), 'The authenticated groups.', { maxItems: 128 }),
        extra: {
          type: 'object',
          description:
            'Extra authentication attributes, including the pod name and UID of a pod-bound service-account token.',
          additionalProperties: list(string('', { maxLength: 1024 }), '', { maxItems: 16 }),
          maxProperties: 32,
        },
      },
    ),
  },
  {
    required: ['subject', 'purpose'],
    'x-kubernetes-validations': [
      {
        rule: 'has(self.permissions) || has(self.token)',
        message: 'at least one of permissions or token is required',
      },
      { rule: 'self == oldSelf', message: 'spec is immutable: a changed task is a new AccessRequest' },
    ],
  },
);

const TERMINAL_PHASES = "['Denied', 'Expired', 'Revoked', 'Failed']";

const accessRequestStatus: JSONSchema = object(
  'The observed state of the request, written by the hourglass controller only.',
  {
    phase: string('Where the request is in its lifecycle. Denied, Expired, Revoked and Failed are final.', {
      enum: ['Pending', 'AwaitingApproval', 'Granted', 'Denied', 'Expired', 'Revoked', 'Failed'],
    }),
    reason: string(
      'A CamelCase word for why the request is in its phase (Issued, Renewed, NoPolicyAllows, Expired, NameConflict, ...).',
      {
        maxLength: 64,
      },
    ),
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The generation the status was computed for.',
    },
    conditions: conditions(
      'Approved, Denied and Granted. Approved and Denied are only ever True, never both, never removed.',
    ),
    subject: object('The workload identity pinned at admission and checked at every reconcile.', {
      serviceAccountName: string("The subject's service account.", { maxLength: 253 }),
      serviceAccountUID: string('The UID of that service account when the grant was issued.', {
        maxLength: 64,
      }),
      podName: string("The subject pod's name, for a pod subject.", { maxLength: 253 }),
      podUID: string("The subject pod's UID.", { maxLength: 64 }),
      jobName: string("The subject Job's name, for a Job subject.", { maxLength: 63 }),
      jobUID: string("The subject Job's UID.", { maxLength: 64 }),
      ref: string('The subject as kind/name, for display.', { maxLength: 260 }),
    }),
    policy: object('The policy that allowed the request.', {
      kind: string('AccessPolicy or ClusterAccessPolicy.', { enum: ['AccessPolicy', 'ClusterAccessPolicy'] }),
      name: string("The policy's name.", { maxLength: 253 }),
      namespace: string("The policy's namespace, for an AccessPolicy.", { maxLength: 63 }),
      uid: string("The policy's UID.", { maxLength: 64 }),
      generation: {
        type: 'integer',
        format: 'int64',
        description: 'The policy generation the decision was taken under.',
      },
    }),
    decision: string('Why the request was allowed, or the first failing check of each policy considered.', {
      maxLength: 8192,
    }),
    approval: object('The human decision, for requests under a Manual policy.', {
      decision: string('Approved or Denied.', { enum: ['Approved', 'Denied'] }),
      by: string("The approver's user name.", { maxLength: 512 }),
      at: timestamp('When the approver decided.'),
      policy: string('The policy under which the approver was entitled, as Kind/name.', { maxLength: 320 }),
      policyUID: string('The UID of that policy: the approval allows issuing under this policy only.', {
        maxLength: 64,
      }),
      policyGeneration: {
        type: 'integer',
        format: 'int64',
        description:
          'The generation of that policy the approver saw: once the policy changes, issuing needs a new approval.',
      },
    }),
    firstIssuedAt: timestamp('When the first grant of this request was issued.'),
    lifetimeEndsAt: timestamp("firstIssuedAt plus the policy's maxLifetime: no renewal reaches beyond it."),
    grant: object('The live grant (or the last one, once the request is final).', {
      id: string("UUID unique per issuance; the token's jti.", { maxLength: 64 }),
      issuedAt: timestamp('When this grant was issued.'),
      expiresAt: timestamp('When this grant expires and is revoked.'),
      secretName: string('The grant Secret.', { maxLength: 253 }),
      roleName: string('The grant Role.', { maxLength: 253 }),
      roleBindingName: string('The grant RoleBinding.', { maxLength: 253 }),
      secretUID: string(
        "The UID of the grant Secret hourglass created: only the object with this UID is the grant's.",
        { maxLength: 64 },
      ),
      roleUID: string('The UID of the grant Role hourglass created.', { maxLength: 64 }),
      roleBindingUID: string('The UID of the grant RoleBinding hourglass created.', { maxLength: 64 }),
    }),
    renewals: {
      type: 'integer',
      format: 'int32',
      minimum: 0,
      description: 'How many times the grant was renewed.',
    },
    lastRenewal: string('The hourglass.dev/renew annotation value last honoured.', { maxLength: 253 }),
    revocation: object('Why and when access ended.', {
      reason: string(
        'Expired, PodDeleted, PodFinished, JobFinished, JobDeleted, RequestDeleted, PolicyChanged, ContextChanged, ServiceAccountChanged, NameConflict, Renewed or Manual.',
        { maxLength: 64 },
      ),
      at: timestamp('When access ended.'),
      message: string('A human-readable explanation.', { maxLength: 8192 }),
    }),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: `!has(oldSelf.phase) || !(oldSelf.phase in ${TERMINAL_PHASES}) || (has(self.phase) && self.phase == oldSelf.phase)`,
        message: 'a final phase (Denied, Expired, Revoked, Failed) cannot change',
      },
      {
        rule: "!has(oldSelf.conditions) || oldSelf.conditions.all(c, !(c.type in ['Approved', 'Denied']) || (has(self.conditions) && self.conditions.exists(n, n.type == c.type && n.status == c.status)))",
        message: 'Approved and Denied conditions are never removed or changed',
      },
      {
        rule: "!has(self.conditions) || !(self.conditions.exists(c, c.type == 'Approved') && self.conditions.exists(c, c.type == 'Denied'))",
        message: 'a request cannot be both Approved and Denied',
      },
      {
        rule: "!has(self.conditions) || self.conditions.all(c, !(c.type in ['Approved', 'Denied']) || c.status == 'True')",
        message: 'Approved and Denied conditions are only ever True',
      },
    ],
  },
);

// --- AccessPolicy / ClusterAccessPolicy ----------------------------------------------------

function accessPolicySpec(scope: 'Namespaced' | 'Cluster'): JSONSchema {
  const properties: Record<string, JSONSchema> = {
    suspend: {
      type: 'boolean',
      default: false,
      description: 'true: the policy allows nothing, and the live grants it allowed are revoked.',
    },
    ...(scope === 'Cluster'
      ? {
          namespaceSelector: labelSelector(
            "The namespaces whose requests this policy decides; empty selects every namespace (the controller's own is never granted).",
          ),
        }
      : {}),
    subjects: object(
      'Which workloads may receive access.',
      {
        serviceAccounts: list(
          string('', { minLength: 1, maxLength: 253 }),
          'Service account names in the request namespace; "*" for any.',
          {
            minItems: 1,
            maxItems: 64,
          },
        ),
        podSelector: labelSelector(
          "Optional: the subject pod (or the Job's pod template) must carry these labels.",
        ),
      },
      { required: ['serviceAccounts'] },
    ),
    requesters: object("Who may ask for access on the subjects' behalf. Nobody, when empty.", {
      self: {
        type: 'boolean',
        description: 'A pod-bound service-account token of the subject pod (or of a pod of the subject Job).',
      },
      users: names('User names.'),
      groups: names('Group names.'),
      serviceAccounts: list(
        string('', {
          maxLength: 317,
          pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
        }),
        'Service accounts as "namespace:name".',
        {
          maxItems: 64,
        },
      ),
    }),
    allow: object('The upper bound of what a request may ask for.', {
      permissions: list(policyRule('policy'), 'Every requested rule must be covered by one of these.', {
        maxItems: 64,
      }),
      token: object(
        'The token scope a request may ask for.',
        {
          audiences: list(
            string('', { minLength: 1, maxLength: 253, pattern: LITERAL }),
            'Audiences, literal.',
            { minItems: 1, maxItems: 32 },
          ),
          actions: list(
            string('', { minLength: 1, maxLength: 128, pattern: RULE_ITEM }),
            'Actions; "*" allows any action.',
            { minItems: 1, maxItems: 64 },
          ),
          targets: list(
            string('', { minLength: 1, maxLength: 1024, pattern: '^[^%\\s\\p{Z}\\p{C}]+$' }),
            'Target globs: "*" matches within one "/"-separated segment and never crosses "/".',
            {
              minItems: 1,
              maxItems: 64,
            },
          ),
        },
        { required: ['audiences', 'actions', 'targets'] },
      ),
    }),
    maxTTL: duration('The longest ttl a request may ask for; longer is Denied.', { default: '1h' }),
    defaultTTL: duration('The ttl of a request that names none.', { default: '15m' }),
    maxRenewals: {
      type: 'integer',
      format: 'int32',
      minimum: 0,
      maximum: 10000,
      default: 8,
      description: 'How many renewals one request may get.',
    },
    maxLifetime: duration('From the first issue to the last expiry, across renewals.', { default: '8h' }),
    renewBefore: duration(
      "For a workload that declared its access by annotation (hourglass.dev/inject): hourglass renews its grant this long before it expires, within maxRenewals and maxLifetime. When absent, at a third of the grant's ttl before expiry.",
    ),
    maxActivePerSubject: {
      type: 'integer',
      format: 'int32',
      minimum: 1,
      maximum: 100000,
      default: 10,
      description: 'Live grants per service account.',
    },
    approval: object(
      'Whether a human must approve.',
      {
        mode: string('Automatic grants on policy alone; Manual waits for an approver.', {
          enum: ['Automatic', 'Manual'],
          default: 'Automatic',
        }),
        approvers: object("Who may approve; never the requester or the subject's service account.", {
          users: names('User names.'),
          groups: names('Group names.'),
        }),
        timeout: duration('A request AwaitingApproval longer than this ends Denied (ApprovalTimeout).', {
          default: '1h',
        }),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: "!has(self.mode) || self.mode != 'Manual' || (has(self.approvers) && ((has(self.approvers.users) && size(self.approvers.users) > 0) || (has(self.approvers.groups) && size(self.approvers.groups) > 0)))",
            message: 'a Manual approval needs at least one approver user or group',
          },
        ],
      },
    ),
    conditions: list(
      object(
        'A CEL expression that must be true for the policy to allow a request.',
        {
          name: string('A short name, reported when the condition fails.', {
            minLength: 1,
            maxLength: 63,
            pattern: DNS_LABEL,
          }),
          expression: string('CEL over request, subject, requester and now; must return a bool.', {
            minLength: 1,
            maxLength: 4096,
          }),
          message: string('Said to the requester when the condition is false.', { maxLength: 1024 }),
        },
        { required: ['name', 'expression'] },
      ),
      'Policy as code: all must be true. An evaluation error is a deny.',
      { maxItems: 32, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
    ),
  };
  return object(
    scope === 'Cluster'
      ? 'Which workloads in the selected namespaces may receive what access, asked for by whom.'
      : 'Which workloads in this namespace may receive what access, asked for by whom.',
    properties,
    {
      required: ['subjects', 'allow'],
      'x-kubernetes-validations': [
        {
          rule: 'has(self.allow.permissions) || has(self.allow.token)',
          message: 'allow needs permissions or token',
        },
        {
          rule: 'duration(self.defaultTTL) <= duration(self.maxTTL)',
          message: 'defaultTTL must not exceed maxTTL',
        },
        {
          rule: 'duration(self.maxTTL) <= duration(self.maxLifetime)',
          message: 'maxTTL must not exceed maxLifetime',
        },
      ],
    },
  );
}

const policyStatus: JSONSchema = object('The observed state of the policy, written by the controller.', {
  observedGeneration: {
    type: 'integer',
    format: 'int64',
    description: 'The generation the status was computed for.',
  },
  conditions: conditions('Ready is False when a CEL condition does not compile.'),
});

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: JSONSchema;
  status: JSONSchema;
  rootValidations?: { rule: string; message: string }[];
  printerColumns: { name: string; type: string; jsonPath: string; priority?: number; description: string }[];
}

export const GROUP = 'hourglass.dev';
export const VERSION = 'v1alpha1';

export const kinds: KindDefinition[] = [
  {
    kind: 'AccessRequest',
    plural: 'accessrequests',
    singular: 'accessrequest',
    shortNames: ['ar'],
    scope: 'Namespaced',
    description:
      "One task's request for just-in-time access for one workload. hourglass decides it by policy and issues a grant (Secret, Role, RoleBinding) that ends with the TTL, the workload or the policy.",
    spec: accessRequestSpec,
    status: accessRequestStatus,
    rootValidations: [
      {
        rule: 'self.metadata.name.size() <= 63',
        message: 'metadata.name must be at most 63 characters (it becomes a label value)',
      },
    ],
    printerColumns: [
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'Where the request is in its lifecycle.',
      },
      {
        name: 'Subject',
        type: 'string',
        jsonPath: '.status.subject.ref',
        description: 'The workload that receives access.',
      },
      {
        name: 'Expires',
        type: 'string',
        jsonPath: '.status.grant.expiresAt',
        description: 'When the live grant expires.',
      },
      {
        name: 'Age',
        type: 'date',
        jsonPath: '.metadata.creationTimestamp',
        description: 'How old the request is.',
      },
      {
        name: 'Reason',
        type: 'string',
        jsonPath: '.status.reason',
        priority: 1,
        description: 'Why the request is in its phase.',
      },
      {
        name: 'Policy',
        type: 'string',
        jsonPath: '.status.policy.name',
        priority: 1,
        description: 'The policy that allowed it.',
      },
    ],
  },
  ...(['Namespaced', 'Cluster'] as const).map((scope): KindDefinition => ({
    kind: scope === 'Cluster' ? 'ClusterAccessPolicy' : 'AccessPolicy',
    plural: scope === 'Cluster' ? 'clusteraccesspolicies' : 'accesspolicies',
    singular: scope === 'Cluster' ? 'clusteraccesspolicy' : 'accesspolicy',
    shortNames: scope === 'Cluster' ? ['cap'] : ['ap'],
    scope,
    description:
      'Policy as code for hourglass: deny by default; a request is allowed when at least one matching policy allows it.',
    spec: accessPolicySpec(scope),
    status: policyStatus,
    printerColumns: [
      {
        name: 'Approval',
        type: 'string',
        jsonPath: '.spec.approval.mode',
        description: 'Automatic or Manual.',
      },
      { name: 'Max TTL', type: 'string', jsonPath: '.spec.maxTTL', description: 'The longest ttl allowed.' },
      {
        name: 'Suspended',
        type: 'boolean',
        jsonPath: '.spec.suspend',
        description: 'Whether the policy allows nothing.',
      },
      {
        name: 'Ready',
        type: 'string',
        jsonPath: ".status.conditions[?(@.type=='Ready')].status",
        description: 'Whether its CEL compiled.',
      },
      {
        name: 'Age',
        type: 'date',
        jsonPath: '.metadata.creationTimestamp',
        description: 'How old the policy is.',
      },
    ],
  })),
];

/** The schema of a whole object of one kind, as the CRD declares it. */
export function objectSchema(def: KindDefinition): JSONSchema {
  return {
    type: 'object',
    description: def.description,
    required: ['spec'],
    properties: {
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      },
      metadata: { type: 'object' },
      spec: def.spec,
      status: def.status,
    },
    ...(def.rootValidations ? { 'x-kubernetes-validations': def.rootValidations } : {}),
  };
}

/** Builds the CustomResourceDefinition of one kind. */
export function customResourceDefinition(def: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}`, labels: { 'app.kubernetes.io/name': 'hourglass' } },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ['hourglass'],
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: objectSchema(def) },
        },
      ],
    },
  };
}
