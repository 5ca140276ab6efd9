import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { describeError } from '../../../src/cli/errors.ts';
import { writeTokenFile } from '../../../src/cli/grant-token.ts';
import { describeRequest, requestTable } from '../../../src/cli/output.ts';
import { accessRequest, granted, now } from './fixtures.ts';

describe('CLI output', () => {
  it('lists requests with the printer columns, expiry relative to now', () => {
    const text = requestTable(
      [accessRequest(granted), accessRequest({ phase: 'Denied', reason: 'NoPolicyAllows' }, 'etl-denied')],
      { allNamespaces: false, wide: false, now },
    );
    expect(text.split('\n')).to.deep.equal([
      'NAME         PHASE     SUBJECT         EXPIRES   AGE',
      'etl-read     Granted   pod/etl-7xk2p   in 10m    5m',
      'etl-denied   Denied    pod/etl-7xk2p   -         5m',
      '',
    ]);
    const wide = requestTable([accessRequest(granted)], { allNamespaces: true, wide: true, now });
    expect(wide).to.match(/^NAMESPACE\s+NAME\s+PHASE\s+SUBJECT\s+EXPIRES\s+AGE\s+REASON\s+POLICY\s+GRANT\n/);
    expect(wide).to.match(
      /batch\s+etl-read\s+Granted\s+pod\/etl-7xk2p\s+in 10m\s+5m\s+Issued\s+batch-readers\s+grant-1\n$/,
    );
  });

  it('describes one request: phase, subject, asks, grant id and expiry, conditions', () => {
    const text = describeRequest(accessRequest(granted), now);
    expect(text).to.match(/^Phase:\s+Granted \(Issued\)$/m);
    expect(text).to.match(/^Subject:\s+pod\/etl-7xk2p \(service account etl\)$/m);
    expect(text).to.match(/^Permissions:\s+get secrets\/orders-db$/m);
    expect(text).to.match(
      /^Token:\s+audience orders-api, actions orders:read, target postgres:\/\/orders-db\/orders$/m,
    );
    expect(text).to.match(/^Grant:\s+grant-1$/m);
    expect(text).to.match(/^ {2}Expires:\s+2025-06-01T12:10:00Z \(in 10m\)$/m);
    expect(text).to.match(/^ {2}Granted\s+True\s+Issued\s+5m\s+Grant grant-1 issued\.$/m);
    expect(text).to.not.match(/^Revocation:/m);
  });

  it('describes the revocation of a revoked request', () => {
    const revoked = accessRequest({
      ...granted,
      phase: 'Revoked',
      reason: 'Manual',
      revocation: { reason: 'Manual', at: '2025-06-01T11:58:00Z', message: 'Revoked on request: done early' },
    });
    expect(describeRequest(revoked, now)).to.match(
      /^Revocation:\s+Manual at 2025-06-01T11:58:00Z: Revoked on request: done early$/m,
    );
  });

  it("reports an API error as the server's message with exit 4", () => {
    const body = JSON.stringify({
      kind: 'Status',
      reason: 'NotFound',
      message: 'accessrequests.hourglass.dev "x" not found',
      code: 404,
    });
    expect(describeError(new ApiException(404, 'Not Found', body, {}))).to.deep.equal({
      exitCode: 4,
      message: 'accessrequests.hourglass.dev "x" not found',
    });
    const unauthorized = describeError(
      new ApiException(401, 'Unauthorized', '{"message":"Unauthorized"}', {}),
    );
    expect(unauthorized.message).to.equal(
      'the API server refused the credentials (Unauthorized); check the kubeconfig or the token file',
    );
  });

  it('reports a connection failure with the server and the cause, exit 4', () => {
    const error = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') });
    expect(describeError(error, 'https://127.0.0.1:6443')).to.deep.equal({
      exitCode: 4,
      message: 'cannot reach the API server at https://127.0.0.1:6443: connect ECONNREFUSED 127.0.0.1:6443',
    });
  });

  describe('the token file', () => {
    let dir = '';
    beforeEach(async () => (dir = await mkdtemp(path.join(os.tmpdir(), 'hourglass-token-'))));
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('is written with mode 0600, creating its directory, and replaced whole on renewal', async () => {
      const file = path.join(dir, 'run', 'hourglass', 'token');
      await writeTokenFile(file, 'first.jwt.token');
      expect(await readFile(file, 'utf8')).to.equal('first.jwt.token');
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      await chmod(file, 0o644);
      await writeTokenFile(file, 'second.jwt.token');
      expect(await readFile(file, 'utf8')).to.equal('second.jwt.token');
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      expect(await readdir(path.dirname(file))).to.deep.equal(['token']);
    });

    it('fails with exit 4 and no leftover when the file cannot be written', async () => {
      const blocked = path.join(dir, 'file');
      await writeFile(blocked, '');
      const error = await writeTokenFile(path.join(blocked, 'token'), 't').catch((e: unknown) => e);
      expect(error).to.have.property('exitCode', 4);
      expect((error as Error).message).to.match(/^cannot write the token to .*\/file\/token: /);
    });
  });
});
