import type {
  V1ValidatingAdmissionPolicy,
  V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { kinds } from '../api/schema.ts';
import { GROUP, labels, MANAGED_BY, VERSION } from '../api/types.ts';

const accessRequest = kinds.find((def) => def.kind === 'AccessRequest');
/** Status fields only the controller writes: all but the approver's condition and its record. */
const CONTROLLER_FIELDS = Object.keys(
  (accessRequest?.status as { properties?: Record<string, unknown> } | undefined)?.properties ?? {},
).filter((field) => field !== 'conditions' && field !== 'approval');

const sameField = (field: string) =>
  `has(oldObject.status.${field}) == has(object.status.${field}) && ` +
  `(!has(object.status.${field}) || oldObject.status.${field} == object.status.${field})`;

const conditions = (of: 'object' | 'oldObject') => `${of}.status.?conditions.orValue([])`;
const statuses = 'has(oldObject.status) && has(object.status)';

/**
 * The API server's own backstop for the webhook's status rule (see admission guardStatus): an
 * identity other than the controller may only add one Approved or Denied condition to a request
 * AwaitingApproval, and only as recorded by the webhook (status.approval.by is that identity).
 * Evaluated in the API server, so it holds when the webhook is missing or misconfigured.
 */
export function statusPolicy(
  name: string,
  controllerUsername: string,
): { policy: V1ValidatingAdmissionPolicy; binding: V1ValidatingAdmissionPolicyBinding } {
  const metadata = { name, labels: { [labels.managedBy]: MANAGED_BY } };
  const added = `${conditions('object')}.filter(n, !${conditions('oldObject')}.exists(c, c.type == n.type))`;
  return {
    policy: {
      metadata,
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [GROUP],
              apiVersions: [VERSION],
              resources: ['accessrequests/status'],
              operations: ['UPDATE'],
            },
          ],
        },
        matchConditions: [
          {
            name: 'not-the-controller',
            expression: `request.userInfo.username != ${JSON.stringify(controllerUsername)}`,
          },
        ],
        validations: [
          {
            expression: [
              statuses,
              `size(${conditions('object')}) == size(${conditions('oldObject')}) + 1`,
              `${conditions('oldObject')}.all(c, ${conditions('object')}.exists(n, n == c))`,
              `${added}.all(n, n.type in ['Approved', 'Denied'] && n.status == 'True')`,
              ...CONTROLLER_FIELDS.map(sameField),
            ].join(' &&\n'),
            message:
              'the status of an AccessRequest is written by hourglass; an approver may only add one Approved or Denied condition with status "True"',
            reason: 'Forbidden',
          },
          {
            expression: `${statuses} && has(oldObject.status.phase) && oldObject.status.phase == 'AwaitingApproval'`,
            message: 'only a request AwaitingApproval can be approved or denied',
            reason: 'Forbidden',
          },
          {
            expression: [
              statuses,
              '!has(oldObject.status.approval)',
              'has(object.status.approval) && has(object.status.approval.by)',
              'object.status.approval.by == request.userInfo.username',
              `${added}.all(n, has(object.status.approval.decision) && object.status.approval.decision == n.type)`,
              // The approval binds to the policy the request awaits under, never to one the approver names.
              'has(object.status.approval.policyUID) && has(oldObject.status.policy) && has(oldObject.status.policy.uid)',
              'object.status.approval.policyUID == oldObject.status.policy.uid',
            ].join(' &&\n'),
            message:
              'an approval must pass the hourglass admission webhook, which records the approver in status.approval',
            reason: 'Forbidden',
          },
        ],
      },
    },
    binding: {
      metadata,
      spec: { policyName: name, validationActions: ['Deny'] },
    },
  };
}
