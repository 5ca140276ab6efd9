import type { AccessRequest, AccessRequestStatus } from '../../../src/api/types.ts';

export const now = new Date('2025-06-01T12:00:00Z');

/** An AccessRequest as the API returns it, with the given status. */
export function accessRequest(status: AccessRequestStatus = {}, name = 'etl-read'): AccessRequest {
  return {
    apiVersion: 'hourglass.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: {
      name,
      namespace: 'batch',
      uid: 'uid-1',
      generation: 1,
      creationTimestamp: new Date('2025-06-01T11:55:00Z'),
    },
    spec: {
      subject: { podName: 'etl-7xk2p' },
      purpose: 'OPS-1234 nightly read',
      ttl: '15m',
      permissions: [
        { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
      ],
      token: { audience: ['orders-api'], actions: ['orders:read'], target: 'postgres://orders-db/orders' },
    },
    status,
  };
}

export const granted: AccessRequestStatus = {
  phase: 'Granted',
  reason: 'Issued',
  subject: { serviceAccountName: 'etl', podName: 'etl-7xk2p', ref: 'pod/etl-7xk2p' },
  policy: { kind: 'AccessPolicy', name: 'batch-readers', namespace: 'batch' },
  decision: 'allowed by AccessPolicy/batch-readers',
  grant: {
    id: 'grant-1',
    issuedAt: '2025-06-01T11:55:00Z',
    expiresAt: '2025-06-01T12:10:00Z',
    secretName: 'etl-read-grant',
    roleName: 'hourglass-etl-read',
  },
  renewals: 0,
  conditions: [
    {
      type: 'Approved',
      status: 'True',
      reason: 'PolicyAllowed',
      message: 'allowed by AccessPolicy/batch-readers',
      lastTransitionTime: '2025-06-01T11:55:00Z',
    },
    {
      type: 'Granted',
      status: 'True',
      reason: 'Issued',
      message: 'Grant grant-1 issued.',
      lastTransitionTime: '2025-06-01T11:55:00Z',
    },
  ],
};
