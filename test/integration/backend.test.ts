import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt } from 'jose';
import { ensureCrds, eventually, kubectlOk, repoRoot, useNamespace } from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  annotateRequest,
  api,
  createPod,
  createPolicy,
  createRequest,
  createServiceAccount,
  getRequest,
  grantObjectsPresent,
  waitForPhase,
} from '../support/hourglass.ts';

describe('a backend outside Kubernetes, protected by grant tokens (examples/backend)', function () {
  this.timeout(120_000);
  const namespace = useNamespace('backend');
  const controller = useController('backend');
  let backend: ChildProcess | undefined;
  let backendUrl = '';

  before(async () => {
    await ensureCrds();
    await createServiceAccount(namespace(), 'etl');
    await createServiceAccount(namespace(), 'orders-api');
    await createPolicy(namespace(), 'batch-readers');
    // The backend authenticates to introspection with a token of its own service account.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hourglass-backend-'));
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, (await kubectlOk(['-n', namespace(), 'create', 'token', 'orders-api'])).trim());
    backend = spawn(process.execPath, [path.join(repoRoot, 'examples', 'backend', 'server.ts')], {
      env: {
        ...process.env,
        HOURGLASS_ISSUER: controller().url('https'),
        HOURGLASS_CA_FILE: path.join(repoRoot, '.cluster', 'pki', 'ca.crt'),
        INTROSPECTION_TOKEN_FILE: tokenFile,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    backendUrl = await new Promise<string>((resolve, reject) => {
      backend!.once('exit', (code) => reject(new Error(`backend exited ${code}`)));
      backend!.stdout!.on('data', (chunk: Buffer) => {
        const match = /Listening on (\S+)/.exec(chunk.toString());
        if (match) resolve(match[1]!);
      });
    });
  });
  after(() => backend?.kill());

  async function call(method: string, route: string, token: string) {
    const response = await fetch(`${backendUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: response.status, body: (await response.json()) as { error?: string } };
  }

  async function grantedToken(requestName: string, podName: string) {
    await createPod(namespace(), podName, 'etl');
    await createRequest(namespace(), requestName, { subject: { podName } });
    await waitForPhase(namespace(), requestName, 'Granted');
    return eventually(async () => {
      const { secret } = await grantObjectsPresent(namespace(), requestName);
      const request = await getRequest(namespace(), requestName);
      const token = Buffer.from(secret?.data?.token ?? '', 'base64').toString();
      expect(decodeJwt(token).jti).to.equal(request?.status?.grant?.id);
      return token;
    });
  }

  it('allows the granted action on the granted target, and refuses another action or target', async () => {
    const token = await grantedToken('read-orders', 'reader');
    expect(await call('GET', '/orders', token)).to.deep.include({ status: 200 });
    expect((await call('POST', '/orders', token)).body.error).to.equal('action_not_granted');
    expect((await call('GET', '/customers', token)).body.error).to.equal('target_not_granted');
  });

  it('refuses the same token through introspection once the grant is revoked, before its exp', async () => {
    const token = await grantedToken('revoked-read', 'short-lived');
    expect((await call('GET', '/orders', token)).status).to.equal(200);
    await api().core.deleteNamespacedPod({
      namespace: namespace(),
      name: 'short-lived',
      gracePeriodSeconds: 0,
    });
    await waitForPhase(namespace(), 'revoked-read', 'Revoked');
    await eventually(
      async () => expect((await call('GET', '/orders', token)).body.error).to.equal('inactive'),
      {
        timeout: 5_000,
        what: 'the backend to refuse the revoked token',
      },
    );
    expect(decodeJwt(token).exp! * 1000).to.be.greaterThan(Date.now());
  });

  it('refuses the old token after a renewal and accepts the new one', async () => {
    const oldToken = await grantedToken('renewed-read', 'renewer');
    await annotateRequest(namespace(), 'renewed-read', { 'hourglass.dev/renew': 'once' });
    const newToken = await eventually(async () => {
      const { secret } = await grantObjectsPresent(namespace(), 'renewed-read');
      const token = Buffer.from(secret?.data?.token ?? '', 'base64').toString();
      expect(token).to.not.equal(oldToken);
      return token;
    });
    await eventually(
      async () => expect((await call('GET', '/orders', oldToken)).body.error).to.equal('inactive'),
      {
        timeout: 5_000,
      },
    );
    expect((await call('GET', '/orders', newToken)).status).to.equal(200);
  });

  it('refuses introspection to callers without a valid Kubernetes token', async () => {
    const { Agent, fetch: undiciFetch } = await import('undici');
    // The issuer's certificate is signed by the local cluster CA.
    const dispatcher = new Agent({
      connect: { ca: readFileSync(path.join(repoRoot, '.cluster', 'pki', 'ca.crt')) },
    });
    const introspect = (authorization?: string) =>
      undiciFetch(`${controller().url('https')}/introspect`, {
        method: 'POST',
        body: new URLSearchParams({ token: 'x' }),
        headers: authorization ? { authorization } : {},
        dispatcher,
      });
    expect((await introspect()).status).to.equal(401);
    const response = await introspect('Bearer not-a-kubernetes-token');
    expect(response.status).to.equal(401);
  });
});
