import { expect } from 'chai';
import { loadConfig } from '../../src/config.ts';

describe('controller flags', () => {
  const env = { KUBECONFIG: '/dev/null' };

  it('turns a boolean flag off with its --no- form, and on with the plain one', () => {
    expect(loadConfig(['--no-register-webhooks'], env).registerWebhooks).to.equal(false);
    expect(loadConfig(['--register-webhooks'], env).registerWebhooks).to.equal(true);
    expect(loadConfig(['--no-leader-election'], env).leaderElection).to.equal(false);
    expect(loadConfig(['--leader-election'], env).leaderElection).to.equal(true);
  });

  it('takes a boolean from its environment variable when no flag is given', () => {
    expect(loadConfig([], { ...env, HOURGLASS_LEADER_ELECTION: 'true' }).leaderElection).to.equal(true);
    expect(
      loadConfig(['--no-leader-election'], { ...env, HOURGLASS_LEADER_ELECTION: 'true' }).leaderElection,
    ).to.equal(false);
  });

  it('refuses a value given to a boolean flag, and names the flag', () => {
    expect(() => loadConfig(['--leader-election=false'], env)).to.throw(
      /'--leader-election' does not take an argument/,
    );
  });

  it('refuses a concurrency that is not a positive integer', () => {
    expect(() => loadConfig(['--concurrency', '0'], env)).to.throw(
      '--concurrency must be an integer >= 1, got "0"',
    );
  });

  it('waits 2 minutes for a subject created after its request, unless the flag or environment says otherwise', () => {
    expect(loadConfig([], env).awaitSubjectMs).to.equal(120_000);
    expect(loadConfig(['--await-subject', '30s'], env).awaitSubjectMs).to.equal(30_000);
    expect(loadConfig([], { ...env, HOURGLASS_AWAIT_SUBJECT: '0s' }).awaitSubjectMs).to.equal(0);
    expect(() => loadConfig(['--await-subject=-1m'], env)).to.throw('--await-subject must not be negative');
  });

  it('refuses a key publish lead that is not shorter than the rotation period', () => {
    expect(() => loadConfig(['--key-rotation-period', '1h', '--key-publish-lead', '1h'], env)).to.throw(
      '--key-publish-lead must be shorter than --key-rotation-period',
    );
  });

  it('serves admission on a port of its own, from the flag or the environment, free by default locally', () => {
    expect(loadConfig([], env).admissionPort).to.equal(0);
    expect(loadConfig(['--admission-port', '9443'], env).admissionPort).to.equal(9443);
    expect(loadConfig([], { ...env, HOURGLASS_ADMISSION_PORT: '9444' }).admissionPort).to.equal(9444);
    expect(() => loadConfig(['--admission-port=-1'], env)).to.throw(
      '--admission-port must be an integer >= 0, got "-1"',
    );
  });
});
