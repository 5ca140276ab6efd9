import { expect } from 'chai';
import type { AccessPolicy, AccessPolicyStatus, AnyAccessPolicy } from '../../../../src/api/types.ts';
import {
  PolicyStatusReconciler,
  policyKey,
  readiness,
} from '../../../../src/controllers/accesspolicy/reconcile.ts';
import { createLogger } from '../../../../src/log.ts';

function policy(conditions: { name: string; expression: string }[], generation = 1): AccessPolicy {
  return {
    apiVersion: 'hourglass.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'readers', namespace: 'team', uid: `uid-${generation}`, generation },
    spec: {
      subjects: { serviceAccounts: ['etl'] },
      allow: {},
      conditions: conditions.map((c) => ({ ...c, message: 'no' })),
    },
  };
}

/** A reconciler over one cached policy; writes land back in the cache, as the informer's would. */
function harness(cached: AccessPolicy) {
  let current: AnyAccessPolicy = cached;
  const writes: AccessPolicyStatus[] = [];
  const events: string[] = [];
  const reconciler = new PolicyStatusReconciler({
    policies: {
      get: (namespace, name) =>
        current.metadata.namespace === namespace && current.metadata.name === name ? current : undefined,
      list: () => [current],
    },
    clusterPolicies: { get: () => undefined, list: () => [] },
    writeStatus: async (_policy, status) => {
      writes.push(status);
      current = { ...current, status } as AnyAccessPolicy;
    },
    recordEvent: (regarding, type, reason) =>
      events.push(`${type} ${reason} ${regarding.namespace}/${regarding.name}`),
    log: createLogger('error'),
    now: () => new Date('2026-11-30T00:00:00Z'),
  });
  const setSpec = (next: AccessPolicy) => (current = { ...next, status: current.status } as AnyAccessPolicy);
  return { reconciler, writes, events, setSpec, key: policyKey(cached) };
}

describe('policy status', () => {
  describe('readiness', () => {
    it('is True when there are no conditions', () => {
      expect(readiness(policy([]))).to.include({ status: 'True', reason: 'Valid' });
    });

    it('is True when every condition compiles', () => {
      const ready = readiness(
        policy([{ name: 'ticket', expression: "request.spec.purpose.matches('^OPS-')" }]),
      );
      expect(ready).to.include({ status: 'True', reason: 'Valid' });
    });

    it('is False with InvalidConditions, naming each condition that does not compile', () => {
      const ready = readiness(
        policy([
          { name: 'ok', expression: 'true' },
          { name: 'syntax', expression: 'request.spec.purpose.startsWith(' },
          { name: 'unknown', expression: 'env.ADMIN == "yes"' },
        ]),
      );
      expect(ready).to.include({ status: 'False', reason: 'InvalidConditions' });
      expect(ready.message).to.match(
        /^condition "syntax" does not compile: .*; condition "unknown" does not compile: /,
      );
      expect(ready.message).to.not.contain('"ok"');
    });
  });

  describe('reconciler', () => {
    it('writes Ready and observedGeneration once, and nothing while they hold', async () => {
      const { reconciler, writes, events, key } = harness(policy([]));
      await reconciler.reconcile(key);
      await reconciler.reconcile(key);
      expect(writes).to.have.length(1);
      expect(writes[0]?.observedGeneration).to.equal(1);
      expect(writes[0]?.conditions?.[0]).to.include({ type: 'Ready', status: 'True' });
      expect(events).to.deep.equal(['Normal Valid team/readers']);
    });

    it('turns Ready False with a Warning event when a new generation does not compile, and back', async () => {
      const { reconciler, writes, events, setSpec, key } = harness(policy([]));
      await reconciler.reconcile(key);
      setSpec(policy([{ name: 'broken', expression: '1 +' }], 2));
      await reconciler.reconcile(key);
      setSpec(policy([{ name: 'fixed', expression: 'true' }], 3));
      await reconciler.reconcile(key);
      expect(writes.map((w) => [w.observedGeneration, w.conditions?.[0]?.status])).to.deep.equal([
        [1, 'True'],
        [2, 'False'],
        [3, 'True'],
      ]);
      expect(events).to.deep.equal([
        'Normal Valid team/readers',
        'Warning InvalidConditions team/readers',
        'Normal Valid team/readers',
      ]);
    });

    it('records only a new observedGeneration, without an event, when readiness stays the same', async () => {
      const { reconciler, writes, events, setSpec, key } = harness(policy([]));
      await reconciler.reconcile(key);
      setSpec(policy([], 2));
      await reconciler.reconcile(key);
      expect(writes.map((w) => w.observedGeneration)).to.deep.equal([1, 2]);
      expect(events).to.have.length(1);
    });

    it('does nothing for a policy that is gone', async () => {
      const { reconciler, writes } = harness(policy([]));
      await reconciler.reconcile('AccessPolicy/team/missing');
      await reconciler.reconcile('ClusterAccessPolicy//readers');
      expect(writes).to.deep.equal([]);
    });
  });
});
