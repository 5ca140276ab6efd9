import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CliError } from '../../../src/cli/errors.ts';
import { connect } from '../../../src/cli/session.ts';

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: admin-token}
contexts:
- name: admin
  context: {cluster: local, user: admin, namespace: team-a}
- name: bare
  context: {cluster: local, user: admin}
current-context: admin
`;

describe('connecting the CLI', () => {
  let dir = '';
  let config = '';
  let tokenFile = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hourglass-session-'));
    config = path.join(dir, 'kubeconfig');
    tokenFile = path.join(dir, 'token');
    await writeFile(config, kubeconfig);
    await writeFile(tokenFile, 'pod-bound-token\n');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const empty = { HOME: '/nonexistent' };

  it('takes the namespace from -n, else $POD_NAMESPACE, else the context, else "default"', () => {
    expect(
      connect({ kubeconfig: config, namespace: 'flag' }, { ...empty, POD_NAMESPACE: 'pod' }, dir).namespace,
    ).to.equal('flag');
    expect(connect({ kubeconfig: config }, { ...empty, POD_NAMESPACE: 'pod' }, dir).namespace).to.equal(
      'pod',
    );
    expect(connect({ kubeconfig: config }, empty, dir).namespace).to.equal('team-a');
    expect(connect({ kubeconfig: config, context: 'bare' }, empty, dir).namespace).to.equal('default');
  });

  it('reads $KUBECONFIG, the first file of the list that exists', () => {
    const session = connect({}, { ...empty, KUBECONFIG: `${path.join(dir, 'missing')}:${config}` }, dir);
    expect(session.server).to.equal('https://127.0.0.1:6443');
    expect(session.kubeConfig.getCurrentUser()?.token).to.equal('admin-token');
  });

  it("authenticates with the token file instead of the kubeconfig's user, against the same cluster", () => {
    const session = connect({ kubeconfig: config }, { ...empty, HOURGLASS_TOKEN_FILE: tokenFile }, dir);
    expect(session.kubeConfig.getCurrentUser()?.token).to.equal('pod-bound-token');
    expect(session.kubeConfig.getCurrentCluster()).to.include({
      server: 'https://127.0.0.1:6443',
      skipTLSVerify: true,
    });
    expect(session.namespace).to.equal('team-a');
    const flagged = connect({ kubeconfig: config, tokenFile }, empty, dir);
    expect(flagged.kubeConfig.getCurrentUser()?.token).to.equal('pod-bound-token');
  });

  it('reads the token file again once it was rotated on disk', async () => {
    const session = connect({ kubeconfig: config, tokenFile }, empty, dir);
    await writeFile(tokenFile, 'rotated-token');
    const later = new Date(Date.now() + 60_000);
    await utimes(tokenFile, later, later);
    session.refreshCredentials();
    expect(session.kubeConfig.getCurrentUser()?.token).to.equal('rotated-token');
  });

  it('fails with exit 4 and one clear line without a kubeconfig, a readable token file or a non-empty token', async () => {
    const noConfig = () => connect({}, empty, dir);
    expect(noConfig)
      .to.throw(CliError, 'no kubeconfig: set $KUBECONFIG or --kubeconfig, or run inside a pod')
      .with.property('exitCode', 4);
    expect(() => connect({ kubeconfig: path.join(dir, 'nope') }, empty, dir)).to.throw(
      CliError,
      /^cannot load the kubeconfig .*nope: ENOENT/,
    );
    expect(() => connect({ kubeconfig: config, tokenFile: path.join(dir, 'nope') }, empty, dir)).to.throw(
      CliError,
      /^cannot read the token file /,
    );
    await writeFile(tokenFile, '\n');
    expect(() => connect({ kubeconfig: config, tokenFile }, empty, dir)).to.throw(
      CliError,
      /the token file .* is empty/,
    );
  });

  it('refuses an unknown --context as a usage error', () => {
    expect(() => connect({ kubeconfig: config, context: 'prod' }, empty, dir))
      .to.throw(CliError, 'context "prod" is not in the kubeconfig')
      .with.property('exitCode', 2);
  });
});
