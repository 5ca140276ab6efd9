import { expect } from 'chai';
import { splitCommand } from '../../../src/cli/args.ts';
import { COMMANDS } from '../../../src/cli/program.ts';
import { runOffline } from './run-cli.ts';

const commands = ['request', 'status', 'wait', 'renew', 'revoke', 'approve', 'deny'];

describe('the hourglass CLI program', () => {
  it('lists every command in --help and exits 0', async () => {
    const run = await runOffline(['--help']);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.equal('');
    for (const command of [...commands, 'verify-token'])
      expect(run.stdout).to.match(new RegExp(`^  ${command} `, 'm'));
    expect(run.stdout).to.contain('Exit codes: 0 done; 1 the request was Denied, Failed, Revoked or Expired');
  });

  it('has exactly the commands of the issue', () => {
    expect(COMMANDS.map((c) => c.name)).to.have.members(commands);
  });

  for (const command of commands) {
    it(`prints the help of "${command}" for --help, -h and "help ${command}", without connecting`, async () => {
      for (const args of [
        [command, '--help'],
        [command, '-h'],
        ['help', command],
        ['-n', 'x', command, '--help'],
      ]) {
        const run = await runOffline(args);
        expect(run.code, args.join(' ')).to.equal(0);
        expect(run.stdout).to.match(new RegExp(`^Usage: hourglass ${command}\\b`));
        expect(run.stdout).to.contain('Global options:');
        expect(run.connected).to.equal(false);
      }
    });

    it(`refuses an unknown option to "${command}" with exit 2 and one line naming it`, async () => {
      const run = await runOffline([command, '--frobnicate']);
      expect(run.code).to.equal(2);
      expect(run.stdout).to.equal('');
      expect(run.stderr).to.equal(
        `error: unknown option '--frobnicate' (see 'hourglass ${command} --help')\n`,
      );
      expect(run.connected).to.equal(false);
    });
  }

  it('delegates verify-token, its own --token-file included, to the verifier CLI', async () => {
    const help = await runOffline(['verify-token', '--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^Usage: hourglass verify-token --issuer URL/);
    const afterGlobals = await runOffline(['-n', 'verify-token', 'verify-token', '--help']);
    expect(afterGlobals.code).to.equal(0);
    expect(afterGlobals.stdout).to.equal(help.stdout);
    const missing = await runOffline(['verify-token', '--token-file', '/nonexistent']);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.contain('--issuer is required');
  });

  it('names itself "kubectl hourglass" when run as the kubectl plugin', async () => {
    const run = await runOffline(['status', '--help'], { HOURGLASS_CLI_NAME: 'kubectl hourglass' });
    expect(run.stdout).to.match(/^Usage: kubectl hourglass status/);
    const wrong = await runOffline(['status', '--bad'], { HOURGLASS_CLI_NAME: 'kubectl hourglass' });
    expect(wrong.stderr).to.equal("error: unknown option '--bad' (see 'kubectl hourglass status --help')\n");
  });

  it('exits 2 for an unknown command, no command, a missing option value or an option that takes none', async () => {
    const cases: [string[], string][] = [
      [['frob'], 'error: unknown command "frob" (see \'hourglass --help\')\n'],
      [['wait', 'x', '--for'], "error: option '--for' needs a value (see 'hourglass wait --help')\n"],
      [['status', '-n'], "error: option '--namespace' needs a value (see 'hourglass status --help')\n"],
      [
        ['request', 'x', '--ttl', '--wait'],
        "error: option '--ttl' needs a value (see 'hourglass request --help')\n",
      ],
      [
        ['renew', 'x', '--wait=yes'],
        "error: option '--wait' takes no value (see 'hourglass renew --help')\n",
      ],
      [
        ['revoke', 'a', 'b', '--reason', 'r'],
        'error: unexpected argument "b": "revoke" takes NAME (see \'hourglass revoke --help\')\n',
      ],
    ];
    for (const [args, stderr] of cases) {
      const run = await runOffline(args);
      expect(run.code, args.join(' ')).to.equal(2);
      expect(run.stderr, args.join(' ')).to.equal(stderr);
      expect(run.connected).to.equal(false);
    }
    const none = await runOffline([]);
    expect(none.code).to.equal(2);
    expect(none.stderr.trim().split('\n').at(-1)).to.equal('error: no command given');
  });

  it('finds the command after global options and their values', () => {
    expect(splitCommand(['-n', 'status', 'status', 'x'])).to.deep.equal({
      command: 'status',
      rest: ['-n', 'status', 'x'],
      after: ['x'],
    });
    expect(splitCommand(['--kubeconfig', 'k', '--token-file', 't', 'renew', '--wait'])).to.deep.equal({
      command: 'renew',
      rest: ['--kubeconfig', 'k', '--token-file', 't', '--wait'],
      after: ['--wait'],
    });
    expect(splitCommand(['--namespace=ns', 'wait'])).to.deep.equal({
      command: 'wait',
      rest: ['--namespace=ns'],
      after: [],
    });
    expect(splitCommand(['--help'])).to.deep.equal({ command: undefined, rest: ['--help'], after: [] });
  });

  it('reports errors from the cluster side as one line with exit 4, never a stack', async () => {
    // connect() throws here: the error is reported like any failure to reach the cluster.
    const run = await runOffline(['status']);
    expect(run.connected).to.equal(true);
    expect(run.code).to.equal(4);
    expect(run.stderr).to.equal('error: offline: this test must not connect\n');
  });
});
