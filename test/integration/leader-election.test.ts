import { expect } from 'chai';
import { ensureCrds, eventually, useNamespace } from '../support/cluster.ts';
import { ControllerProcess, issuedGrantIds } from '../support/controller.ts';
import { createPolicy, createServiceAccount, getRequest, requestBurst } from '../support/hourglass.ts';

const LEASE_DURATION_MS = 15_000;

describe('high availability', function () {
  this.timeout(240_000);
  const namespace = useNamespace('ha');
  const replicas: ControllerProcess[] = [];

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers');
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed')
      for (const r of replicas) console.log(`--- ${r.logFile}\n${r.tail(20)}`);
  });
  after(async () => {
    for (const replica of replicas) await replica.stop();
  });

  const isLeader = (replica: ControllerProcess) => replica.lines.some((l) => l.message === 'Became leader');

  it('fails over to the other replica when the leader is killed, issuing no grant twice and missing no expiry', async () => {
    replicas.push(await ControllerProcess.start('ha-a', ['--leader-election']));
    replicas.push(await ControllerProcess.start('ha-b', ['--leader-election']));
    const [leader, follower] = await eventually(
      async () => {
        const leaders = replicas.filter(isLeader);
        expect(leaders).to.have.length(1);
        return [leaders[0]!, replicas.find((r) => !isLeader(r))!];
      },
      { what: 'one leader' },
    );

    const names = await requestBurst(namespace(), 'ha', 40, '20s');
    await eventually(async () => expect(leader.audit('grant.issued').length).to.be.greaterThan(3), {
      interval: 20,
    });
    await leader.kill();
    const killedAt = Date.now();
    expect(follower.audit('grant.issued'), 'the follower reconciled while not leading').to.have.length(0);

    await eventually(() => Promise.resolve(expect(isLeader(follower)).to.equal(true)), {
      timeout: LEASE_DURATION_MS + 10_000,
      what: 'the follower to take over',
    });
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).to.be.at.most(LEASE_DURATION_MS + 5_000);

    const requests = await eventually(
      async () => {
        const all = await Promise.all(names.map((name) => getRequest(namespace(), name)));
        expect(all.filter((r) => r?.status?.phase !== 'Expired').map((r) => r?.metadata.name)).to.deep.equal(
          [],
        );
        return all.map((r) => r!);
      },
      { timeout: 120_000, interval: 1000, what: 'every grant to be issued and to expire' },
    );
    for (const request of requests) {
      expect(issuedGrantIds([leader, follower], request.metadata.uid), request.metadata.name).to.deep.equal([
        request.status?.grant?.id,
      ]);
      const lateMs =
        Date.parse(request.status!.revocation!.at!) - Date.parse(request.status!.grant!.expiresAt!);
      expect(lateMs, `${request.metadata.name} revoked late`).to.be.at.most(LEASE_DURATION_MS + 1000);
    }
  });
});
