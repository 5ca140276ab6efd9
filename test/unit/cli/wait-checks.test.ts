import { expect } from 'chai';
import { untilRenewed } from '../../../src/cli/commands/renew.ts';
import { verdictCondition } from '../../../src/cli/commands/review.ts';
import { Refused } from '../../../src/cli/errors.ts';
import { untilPhase } from '../../../src/cli/wait-for.ts';
import { accessRequest, granted, now } from './fixtures.ts';

describe('what waiting looks for', () => {
  it('keeps waiting for Granted while the request is new, Pending or AwaitingApproval', () => {
    const check = untilPhase('Granted');
    expect(check(accessRequest())).to.equal(undefined);
    expect(check(accessRequest({ phase: 'Pending' }))).to.equal(undefined);
    expect(check(accessRequest({ phase: 'AwaitingApproval', reason: 'AwaitingApproval' }))).to.equal(
      undefined,
    );
  });

  it('is done when the request reaches the phase', () => {
    const request = accessRequest(granted);
    expect(untilPhase('Granted')(request)).to.equal(request);
    const revoked = accessRequest({ phase: 'Revoked', reason: 'Manual' });
    expect(untilPhase('Revoked')(revoked)).to.equal(revoked);
  });

  it('refuses with the policy message when the request is Denied', () => {
    const denied = accessRequest({
      phase: 'Denied',
      reason: 'NoPolicyAllows',
      decision: 'denied: AccessPolicy/batch-readers: purpose must start with a ticket id',
      conditions: [
        {
          type: 'Denied',
          status: 'True',
          reason: 'NoPolicyAllows',
          message: 'denied: AccessPolicy/batch-readers: purpose must start with a ticket id',
          lastTransitionTime: now.toISOString(),
        },
      ],
    });
    expect(() => untilPhase('Granted')(denied))
      .to.throw(
        Refused,
        'accessrequest/etl-read is Denied (NoPolicyAllows): denied: AccessPolicy/batch-readers: purpose must start with a ticket id',
      )
      .with.property('exitCode', 1);
  });

  it('refuses with the revocation when the request was Revoked, Expired or Failed', () => {
    const revoked = accessRequest({
      phase: 'Revoked',
      reason: 'Manual',
      revocation: { reason: 'Manual', message: 'Revoked on request: done early' },
    });
    expect(() => untilPhase('Granted')(revoked)).to.throw(
      'accessrequest/etl-read is Revoked (Manual): Revoked on request: done early',
    );
    const expired = accessRequest({
      phase: 'Expired',
      reason: 'Expired',
      revocation: { reason: 'Expired', message: 'The grant reached its expiry.' },
    });
    expect(() => untilPhase('Revoked')(expired)).to.throw('is Expired: The grant reached its expiry.');
    const failed = accessRequest({
      phase: 'Failed',
      reason: 'NameConflict',
      decision: 'Secret "etl-read-grant" already exists',
    });
    expect(() => untilPhase('Granted')(failed)).to.throw(
      'is Failed (NameConflict): Secret "etl-read-grant" already exists',
    );
  });

  it('refuses a phase the request has moved past: phases only move forward', () => {
    expect(() => untilPhase('AwaitingApproval')(accessRequest(granted))).to.throw(
      Refused,
      'accessrequest/etl-read is Granted (Issued); it will not be AwaitingApproval again',
    );
  });

  describe('a renewal', () => {
    const value = '2025-06-01T12:00:00Z-abc123';

    it('is awaited until the controller records the renew value', () => {
      expect(untilRenewed(value, 'grant-1')(accessRequest(granted))).to.equal(undefined);
      expect(untilRenewed(value, 'grant-1')(accessRequest({ ...granted, lastRenewal: 'older' }))).to.equal(
        undefined,
      );
    });

    it('is done when the value is recorded with a new grant id', () => {
      const renewed = accessRequest({
        ...granted,
        lastRenewal: value,
        renewals: 1,
        grant: { ...granted.grant, id: 'grant-2' },
      });
      expect(untilRenewed(value, 'grant-1')(renewed)).to.equal(renewed);
    });

    it("is refused, with the controller's message, when the value is recorded without a new grant", () => {
      const refused = accessRequest({
        ...granted,
        lastRenewal: value,
        conditions: [
          ...(granted.conditions ?? []),
          {
            type: 'Renewed',
            status: 'False',
            reason: 'RenewalRefused',
            message: 'Renewal refused: the policy allows at most 2 renewals.',
            lastTransitionTime: now.toISOString(),
          },
        ],
      });
      expect(() => untilRenewed(value, 'grant-1')(refused)).to.throw(
        Refused,
        'renewal of accessrequest/etl-read was refused: Renewal refused: the policy allows at most 2 renewals.',
      );
    });

    it('is refused when the request ends first: revocation wins over renewal', () => {
      const revoked = accessRequest({
        ...granted,
        phase: 'Revoked',
        reason: 'Manual',
        revocation: { reason: 'Manual', message: 'stop' },
      });
      expect(() => untilRenewed(value, 'grant-1')(revoked)).to.throw(Refused, 'is Revoked (Manual): stop');
    });
  });

  it('approves with one True condition of reason ApprovedByUser, and denies with DeniedByUser', () => {
    const request = accessRequest({ phase: 'AwaitingApproval' });
    expect(
      verdictCondition('Approved', 'looks right', request, new Date('2025-06-01T12:00:00.123Z')),
    ).to.deep.equal({
      type: 'Approved',
      status: 'True',
      reason: 'ApprovedByUser',
      message: 'looks right',
      lastTransitionTime: '2025-06-01T12:00:00Z',
      observedGeneration: 1,
    });
    expect(verdictCondition('Denied', 'no', request, now)).to.include({
      type: 'Denied',
      reason: 'DeniedByUser',
      status: 'True',
    });
  });
});
