import type { AccessPolicySpec, AccessRequest, ClusterAccessPolicySpec } from '../api/types.ts';
import type { ApprovalMode } from './decision.ts';

/** A policy's limits with the CRD defaults applied, for a policy read before defaulting. */
export interface PolicyTerms {
  maxTTL: string;
  defaultTTL: string;
  maxRenewals: number;
  maxLifetime: string;
  maxActivePerSubject: number;
  approval: ApprovalMode;
  approvalTimeout: string;
}

export const POLICY_DEFAULTS: Readonly<PolicyTerms> = {
  maxTTL: '1h',
  defaultTTL: '15m',
  maxRenewals: 8,
  maxLifetime: '8h',
  maxActivePerSubject: 10,
  approval: 'Automatic',
  approvalTimeout: '1h',
};

export function policyTerms(spec: AccessPolicySpec | ClusterAccessPolicySpec): PolicyTerms {
  return {
    maxTTL: spec.maxTTL ?? POLICY_DEFAULTS.maxTTL,
    defaultTTL: spec.defaultTTL ?? POLICY_DEFAULTS.defaultTTL,
    maxRenewals: spec.maxRenewals ?? POLICY_DEFAULTS.maxRenewals,
    maxLifetime: spec.maxLifetime ?? POLICY_DEFAULTS.maxLifetime,
    maxActivePerSubject: spec.maxActivePerSubject ?? POLICY_DEFAULTS.maxActivePerSubject,
    approval: spec.approval?.mode ?? POLICY_DEFAULTS.approval,
    approvalTimeout: spec.approval?.timeout ?? POLICY_DEFAULTS.approvalTimeout,
  };
}

/** The ttl a grant gets under these terms, and which field it came from, for messages. */
export function grantTTL(request: AccessRequest, terms: PolicyTerms): { field: string; value: string } {
  return request.spec.ttl === undefined
    ? { field: 'defaultTTL', value: terms.defaultTTL }
    : { field: 'ttl', value: request.spec.ttl };
}
