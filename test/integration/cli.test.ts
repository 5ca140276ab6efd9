import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt } from 'jose';
import {
  ensureCrds,
  kubectl,
  kubeconfigPath,
  kubectlOk,
  repoRoot,
  useNamespace,
  type Result,
} from '../support/cluster.ts';
import { useController } from '../support/controller.ts';
import {
  createPod,
  createPolicy,
  createServiceAccount,
  getRequest,
  waitForPhase,
} from '../support/hourglass.ts';
import { webhookRegistered } from '../support/identities.ts';

const mainTs = path.join(repoRoot, 'src', 'cli', 'main.ts');
const plugin = path.join(repoRoot, 'bin', 'kubectl-hourglass');

/** Runs `file args` with the local cluster's kubeconfig and `env`, and none of the in-pod variables unless given. */
function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Result> {
  const base: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: kubeconfigPath };
  for (const name of ['POD_NAME', 'POD_NAMESPACE', 'HOURGLASS_TOKEN_FILE', 'HOURGLASS_CLI_NAME'])
    delete base[name];
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...base, ...env }, timeout: 100_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI as the workload runs it: `node src/cli/main.ts ...`. */
const hourglass = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [mainTs, ...args], env);
/** The CLI through its kubectl plugin executable. */
const kubectlHourglass = (args: string[], env: Record<string, string> = {}) => run(plugin, args, env);

function expectExit(result: Result, code: number) {
  expect(result.code, `exit code; stdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(code);
}

const orders = [
  '--rule',
  'get secrets/orders-db',
  '--token-audience',
  'orders-api',
  '--token-action',
  'orders:read',
  '--token-target',
  'postgres://orders-db/orders',
];

describe('the hourglass CLI', function () {
  this.timeout(120_000);
  const namespace = useNamespace('cli');
  useController('cli');
  let dir = '';
  let podCount = 0;
  /** The admin user of the kubeconfig: the approver. */
  let admin = '';

  before(async () => {
    await ensureCrds();
    dir = await mkdtemp(path.join(os.tmpdir(), 'hourglass-cli-'));
    for (const sa of ['etl', 'reviewed', 'stranger']) await createServiceAccount(namespace(), sa);
    // What a workload's service account needs to ask for itself, as docs/cli.md tells.
    await kubectlOk([
      '-n',
      namespace(),
      'create',
      'role',
      'hourglass-requester',
      '--verb=create,get,list,watch,patch',
      '--resource=accessrequests.hourglass.dev',
    ]);
    await kubectlOk([
      '-n',
      namespace(),
      'create',
      'rolebinding',
      'hourglass-requester',
      '--role=hourglass-requester',
      `--serviceaccount=${namespace()}:etl`,
      `--serviceaccount=${namespace()}:reviewed`,
    ]);
    admin = await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    // Workloads ask for themselves: requesters.self accepts a token bound to the subject pod.
    await createPolicy(namespace(), 'batch-readers', {
      requesters: { self: true },
      conditions: [
        {
          name: 'has-ticket',
          expression: "request.spec.purpose.matches('^[A-Z]+-[0-9]+ ')",
          message: 'purpose must start with a ticket id',
        },
      ],
    });
    await createPolicy(namespace(), 'reviewed', {
      subjects: { serviceAccounts: ['reviewed'] },
      requesters: { self: true },
      approval: { mode: 'Manual', approvers: { users: [admin] } },
    });
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // The webhook stamps spec.requester, which requesters.self checks. Local controllers register
  // it at start and remove it at stop, so on a shared cluster wait until one serves it.
  beforeEach(webhookRegistered);

  /**
   * A pod of `serviceAccount` and the environment the CLI sees inside it: its name and namespace
   * from the downward API, and a service-account token bound to it. kwok pods run no processes,
   * so the test runs the CLI here, acting as the pod.
   */
  async function actAsPod(serviceAccount = 'etl') {
    const podName = `${serviceAccount}-pod-${podCount++}`;
    await createPod(namespace(), podName, serviceAccount);
    const token = await kubectlOk([
      '-n',
      namespace(),
      'create',
      'token',
      serviceAccount,
      '--bound-object-kind',
      'Pod',
      '--bound-object-name',
      podName,
    ]);
    const tokenFile = path.join(dir, `${podName}.sa-token`);
    await writeFile(tokenFile, token);
    return {
      podName,
      env: { POD_NAME: podName, POD_NAMESPACE: namespace(), HOURGLASS_TOKEN_FILE: tokenFile },
    };
  }

  function createdName(result: Result): string {
    const name = /accessrequest\/(\S+) created/.exec(result.stdout)?.[1];
    expect(name, `no "created" line in ${result.stdout}`).to.be.a('string');
    return name!;
  }

  const jtiOf = async (file: string) => decodeJwt((await readFile(file, 'utf8')).trim()).jti;

  /**
   * Runs a step that creates a request. On a shared cluster another suite's controller may remove
   * the webhook registration as it stops; a request created in that moment is not stamped with
   * spec.requester (so every policy denies it) or is refused by a webhook nobody serves. Such a run
   * says nothing about the CLI: it is run again, at most twice, once a webhook is registered.
   */
  async function creating(step: () => Promise<Result>): Promise<Result> {
    for (let attempt = 1; ; attempt++) {
      const result = await step();
      const unadmitted = /the request has no spec\.requester|failed calling webhook/.test(result.stderr);
      if (!unadmitted || attempt === 3) return result;
      await webhookRegistered();
    }
  }

  it('answers --help through bin/kubectl-hourglass, and refuses an unknown option with exit 2', async () => {
    const top = await kubectlHourglass(['--help']);
    expectExit(top, 0);
    expect(top.stdout).to.contain('Usage: kubectl hourglass COMMAND');
    for (const command of [
      'request',
      'approve',
      'deny',
      'revoke',
      'renew',
      'status',
      'wait',
      'verify-token',
    ]) {
      expect(top.stdout).to.match(new RegExp(`^  ${command} `, 'm'));
    }
    // Every command's help is unit-tested in-process; here the wrapper runs two, one of them delegated.
    const request = await kubectlHourglass(['request', '--help']);
    expectExit(request, 0);
    expect(request.stdout).to.match(/^Usage: kubectl hourglass request \[NAME\] \(--pod POD \| --job JOB\)/);
    const verify = await kubectlHourglass(['verify-token', '--help']);
    expectExit(verify, 0);
    expect(verify.stdout).to.match(/^Usage: hourglass verify-token --issuer URL/);
    const wrong = await kubectlHourglass(['status', '--colour']);
    expectExit(wrong, 2);
    expect(wrong.stderr.trim()).to.equal(
      "error: unknown option '--colour' (see 'kubectl hourglass status --help')",
    );
  });

  it('lets a pod request access for itself, wait until Granted and receive the token in a 0600 file', async () => {
    const { podName, env } = await actAsPod();
    const tokenOut = path.join(dir, 'granted', 'token');
    const result = await creating(() =>
      hourglass(
        [
          'request',
          '--wait',
          '--timeout',
          '60s',
          '--purpose',
          'OPS-1 nightly read',
          '--ttl',
          '5m',
          ...orders,
          '--token-out',
          tokenOut,
        ],
        env,
      ),
    );
    expectExit(result, 0);
    const name = createdName(result);
    expect(name.startsWith(`${podName}-`)).to.equal(true);
    expect(result.stdout).to.match(new RegExp(`accessrequest/${name} granted: grant \\S+ expires at `));

    const request = await getRequest(namespace(), name);
    expect(request?.spec.subject).to.deep.equal({ podName });
    expect(request?.status?.phase).to.equal('Granted');
    expect(await jtiOf(tokenOut)).to.equal(request?.status?.grant?.id);
    expect((await stat(tokenOut)).mode & 0o777).to.equal(0o600);
    expect(result.stdout + result.stderr).to.not.contain((await readFile(tokenOut, 'utf8')).trim());
  });

  it('renews from inside the pod: renew --wait rewrites the token file with the new grant id', async () => {
    const { env } = await actAsPod();
    const tokenOut = path.join(dir, 'renewed-token');
    const requested = await creating(() =>
      hourglass(
        ['request', '--wait', '--purpose', 'OPS-2 renew me', ...orders, '--token-out', tokenOut],
        env,
      ),
    );
    expectExit(requested, 0);
    const name = createdName(requested);
    const firstJti = await jtiOf(tokenOut);

    // No NAME: inside the pod, renew finds the pod's Granted request.
    const renewed = await hourglass(['renew', '--wait', '--timeout', '60s', '--token-out', tokenOut], env);
    expectExit(renewed, 0);
    const request = await getRequest(namespace(), name);
    expect(request?.status?.renewals).to.equal(1);
    const secondJti = await jtiOf(tokenOut);
    expect(secondJti).to.not.equal(firstJti);
    expect(secondJti).to.equal(request?.status?.grant?.id);
    expect(request?.metadata.annotations?.['hourglass.dev/renew']).to.equal(request?.status?.lastRenewal);
    expect((await stat(tokenOut)).mode & 0o777).to.equal(0o600);
  });

  it('revokes on request: status shows Revoked with reason Manual, and wait --for Granted exits 1', async () => {
    const { env } = await actAsPod();
    const requested = await creating(() =>
      hourglass(['request', '--wait', '--purpose', 'OPS-3 revoke me', ...orders], env),
    );
    expectExit(requested, 0);
    const name = createdName(requested);

    const revoked = await hourglass(['-n', namespace(), 'revoke', name, '--reason', 'done early', '--wait']);
    expectExit(revoked, 0);
    const status = await kubectlHourglass(['status', name, '-n', namespace()]);
    expectExit(status, 0);
    expect(status.stdout).to.match(/^Phase:\s+Revoked \(Manual\)$/m);
    expect(status.stdout).to.match(/^Revocation:\s+Manual at \S+: Revoked on request: done early$/m);
    expect(status.stdout).to.match(/^\s+Granted\s+False\s+Manual\b/m);

    const list = await hourglass(['status', '-n', namespace()]);
    expectExit(list, 0);
    expect(list.stdout).to.match(new RegExp(`^${name}\\s+Revoked\\s+pod/`, 'm'));

    const waited = await hourglass(['wait', name, '--for', 'Granted', '--timeout', '10s', '-n', namespace()]);
    expectExit(waited, 1);
    expect(waited.stderr).to.contain(
      `error: accessrequest/${name} is Revoked (Manual): Revoked on request: done early`,
    );
  });

  it("exits 1 with the policy's reason when the request is denied", async () => {
    const { env } = await actAsPod();
    const result = await creating(() =>
      hourglass(['request', '--wait', '--purpose', 'nightly read without a ticket', ...orders], env),
    );
    expectExit(result, 1);
    const lastLine = result.stderr.trim().split('\n').at(-1);
    expect(lastLine).to.match(
      /^error: accessrequest\/\S+ is Denied \(NoPolicyAllows\): .*purpose must start with a ticket id/,
    );
  });

  it("shows the server's message and exits 4 when the pod's service account may not create requests", async () => {
    const { env } = await actAsPod('stranger');
    const result = await hourglass(['request', '--purpose', 'OPS-4 not mine to ask', ...orders], env);
    expectExit(result, 4);
    expect(result.stderr.trim()).to.match(
      new RegExp(
        `^error: .*"system:serviceaccount:${namespace()}:stranger" cannot create resource "accessrequests"`,
      ),
    );
  });

  it('approves and denies requests awaiting approval, and times out with exit 3 while one waits', async () => {
    // The pod asks; the admin approves (admission refuses an approval by the requester).
    const { env } = await actAsPod('reviewed');
    const ns = ['-n', namespace()];
    for (const name of ['to-approve', 'to-deny']) {
      const awaiting = await creating(async () => {
        await kubectl([...ns, 'delete', 'accessrequest', name, '--ignore-not-found', '--timeout=30s']);
        const created = await hourglass(
          ['request', name, '--purpose', 'OPS-5 review me', '--rule', 'get secrets/orders-db'],
          env,
        );
        if (created.code !== 0) return created;
        return hourglass([...ns, 'wait', name, '--for', 'awaitingapproval', '--timeout', '30s']);
      });
      expectExit(awaiting, 0);
    }

    const timedOut = await hourglass([...ns, 'wait', 'to-approve', '--for', 'Granted', '--timeout', '2s']);
    expectExit(timedOut, 3);
    expect(timedOut.stderr).to.contain(
      'error: timed out after 2s waiting for accessrequest/to-approve to be Granted; it is AwaitingApproval',
    );

    expectExit(await hourglass([...ns, 'approve', 'to-approve', '--message', 'looks right']), 0);
    const approved = await waitForPhase(namespace(), 'to-approve', 'Granted');
    expect(approved.status?.conditions?.find((c) => c.type === 'Approved')).to.include({
      status: 'True',
      reason: 'ApprovedByUser',
      message: 'looks right',
    });

    expectExit(await hourglass([...ns, 'deny', 'to-deny', '--message', 'not this week']), 0);
    const denied = await waitForPhase(namespace(), 'to-deny', 'Denied');
    expect(denied.status?.reason).to.equal('DeniedByUser');
    const waited = await hourglass([...ns, 'wait', 'to-deny', '--for', 'Granted']);
    expectExit(waited, 1);
    expect(waited.stderr).to.contain('is Denied (DeniedByUser): not this week');

    const again = await hourglass([...ns, 'approve', 'to-approve']);
    expectExit(again, 1);
    expect(again.stderr).to.contain('does not await approval: it is Granted (Issued) (already Approved)');
  });
});
