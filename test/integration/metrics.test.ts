import { expect } from 'chai';
import { ensureCrds, eventually, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  annotateRequest,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  waitForPhase,
} from '../support/hourglass.ts';

const CONTRACT = [
  'hourglass_grants_active',
  'hourglass_grants_issued_total',
  'hourglass_grants_revoked_total',
  'hourglass_decisions_total',
  'hourglass_grant_latency_seconds',
  'hourglass_revocation_lag_seconds',
];

describe('operating the controller', function () {
  this.timeout(60_000);
  const namespace = useNamespace('metrics');
  const controller = useController('metrics');

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createPolicy(namespace(), 'batch-readers');
  });

  const scrape = async () => (await fetch(`${controller().url('http')}/metrics`)).text();
  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  it('exposes every metric of the contract with values that follow the grants', async () => {
    await createPod(namespace(), 'p1', 'etl');
    await createRequest(namespace(), 'm1', { subject: { podName: 'p1' } });
    await waitForPhase(namespace(), 'm1', 'Granted');
    const during = await eventually(async () => {
      const text = await scrape();
      expect(value(text, 'hourglass_grants_active')).to.be.at.least(1);
      return text;
    });
    for (const name of CONTRACT) expect(during, name).to.match(new RegExp(`^# TYPE ${name} `, 'm'));
    expect(value(during, 'hourglass_grants_active')).to.be.at.least(1);
    expect(value(during, 'hourglass_grants_issued_total')).to.be.at.least(1);
    expect(value(during, 'hourglass_decisions_total{decision="allowed"}')).to.be.at.least(1);
    expect(value(during, 'hourglass_grant_latency_seconds_count')).to.be.at.least(1);

    await annotateRequest(namespace(), 'm1', { 'hourglass.dev/revoke': 'done' });
    await waitForPhase(namespace(), 'm1', 'Revoked');
    const after = await eventually(async () => {
      const text = await scrape();
      expect(value(text, 'hourglass_grants_revoked_total{reason="Manual"}')).to.be.at.least(1);
      return text;
    });
    expect(value(after, 'hourglass_reconcile_total{result="success"}')).to.be.at.least(2);
    expect(after).to.match(/^hourglass_workqueue_depth /m);
  });

  it('answers /healthz and /readyz once its caches are synced', async () => {
    expect((await fetch(`${controller().url('http')}/healthz`)).status).to.equal(200);
    expect((await fetch(`${controller().url('http')}/readyz`)).status).to.equal(200);
  });
});
