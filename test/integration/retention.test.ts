import { expect } from 'chai';
import { ensureCrds, eventually, useNamespace } from '../support/cluster.ts';
import { ControllerProcess } from '../support/controller.ts';
import { createRequest, getRequest, waitForPhase } from '../support/hourglass.ts';

describe('retention of final requests', function () {
  this.timeout(90_000);
  const namespace = useNamespace('retention');
  let controller: ControllerProcess | undefined;

  before(async () => {
    await ensureCrds();
    controller = await ControllerProcess.start('retention', ['--retain-for', '5s', '--await-subject', '0s']);
  });
  after(async () => {
    await controller?.stop();
  });

  it('deletes a final request once retainFor has passed, leaving the audit log as the record', async () => {
    await createRequest(namespace(), 'short-stay', { subject: { podName: 'no-such-pod' } });
    const failed = await waitForPhase(namespace(), 'short-stay', 'Failed');
    await eventually(async () => expect(await getRequest(namespace(), 'short-stay')).to.equal(undefined), {
      timeout: 30_000,
      what: 'the final request to be deleted after 5s',
    });
    const audited = controller!
      .audit('request.failed')
      .filter((l) => (l.request as { uid: string }).uid === failed.metadata.uid);
    expect(audited).to.have.length.greaterThan(0);
  });
});
