import { expect } from 'chai';
import { labels } from '../../src/api/types.ts';
import { ensureCrds, eventually, useNamespace } from '../support/cluster.ts';
import { ControllerProcess, issuedGrantIds } from '../support/controller.ts';
import { api, createPolicy, createServiceAccount, getRequest, requestBurst } from '../support/hourglass.ts';

describe('crash safety', function () {
  this.timeout(240_000);
  const namespace = useNamespace('crash');
  const controllers: ControllerProcess[] = [];

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers');
  });
  after(async () => {
    for (const c of controllers) await c.stop();
  });

  async function managedObjects() {
    const selector = { namespace: namespace(), labelSelector: `${labels.managedBy}=hourglass` };
    const [secrets, roles, roleBindings] = await Promise.all([
      api().core.listNamespacedSecret(selector),
      api().rbac.listNamespacedRole(selector),
      api().rbac.listNamespacedRoleBinding(selector),
    ]);
    return [...secrets.items, ...roles.items, ...roleBindings.items];
  }

  it('leaves no orphaned grant object and no stuck request after a SIGKILL during a burst', async () => {
    const first = await ControllerProcess.start('crash-first');
    controllers.push(first);
    const names = await requestBurst(namespace(), 'crash', 60, '30s');
    // Kill it in the middle of issuing: some grants done, others half-created.
    await eventually(async () => expect(first.audit('grant.issued').length).to.be.greaterThan(5), {
      interval: 20,
    });
    await first.kill();
    const issuedBeforeCrash = first.audit('grant.issued').length;
    expect(issuedBeforeCrash, 'the burst was over before the kill').to.be.lessThan(names.length);

    const second = await ControllerProcess.start('crash-second');
    controllers.push(second);
    const requests = await eventually(
      async () => {
        const all = await Promise.all(names.map((name) => getRequest(namespace(), name)));
        expect(all.filter((r) => r?.status?.phase !== 'Granted').map((r) => r?.metadata.name)).to.deep.equal(
          [],
        );
        return all.map((r) => r!);
      },
      { timeout: 60_000, interval: 500, what: 'every request to be Granted after the restart' },
    );

    // Exactly the three objects of each live grant exist, each carrying that grant's id.
    await eventually(async () => {
      const objects = await managedObjects();
      const live = new Map(requests.map((r) => [r.metadata.uid, r.status?.grant?.id]));
      const orphans = objects.filter(
        (o) =>
          live.get(o.metadata?.labels?.[labels.requestUid] ?? '') !== o.metadata?.labels?.[labels.grantId],
      );
      expect(orphans.map((o) => `${o.kind ?? ''}/${o.metadata?.name}`)).to.deep.equal([]);
      expect(objects).to.have.length(names.length * 3);
    });

    // One grant per request: every issuance either controller logged carries the id in status
    // (an issuance interrupted by the kill is logged again, with the same id, when it is completed).
    for (const request of requests) {
      expect(issuedGrantIds([first, second], request.metadata.uid), request.metadata.name).to.deep.equal([
        request.status?.grant?.id,
      ]);
    }

    // Timers are re-derived from status: every grant still expires, leaving nothing behind.
    await eventually(
      async () => {
        const all = await Promise.all(names.map((name) => getRequest(namespace(), name)));
        expect(all.filter((r) => r?.status?.phase !== 'Expired')).to.have.length(0);
        expect(await managedObjects()).to.have.length(0);
      },
      { timeout: 90_000, interval: 1000, what: 'every grant to expire after the restart' },
    );
  });
});
