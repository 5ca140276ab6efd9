import { expect } from 'chai';
import { parseCommandArgs } from '../../../src/cli/args.ts';
import { parseRequest, request, type RequestOptions } from '../../../src/cli/commands/request.ts';
import { renew } from '../../../src/cli/commands/renew.ts';
import { runOffline } from './run-cli.ts';

const read = ['--rule', 'get secrets/orders-db'];
const token = [
  '--token-audience',
  'orders-api',
  '--token-action',
  'orders:read',
  '--token-target',
  'postgres://orders-db/orders',
];

/** The options `request` would run with. */
function requestOptions(args: string[], env: Record<string, string> = {}): RequestOptions {
  return parseRequest(parseCommandArgs('request', args, request.options), env);
}

describe('hourglass request: arguments', () => {
  it('asks for a named pod with rules, a token, a TTL and --wait', () => {
    const options = requestOptions([
      'etl-read',
      '--pod',
      'etl-7xk2p',
      '--purpose',
      'OPS-1234 nightly read',
      '--ttl',
      '15m',
      ...read,
      '--rule',
      'list configmaps',
      ...token,
      '--token-action',
      'orders:list',
      '--wait',
      '--timeout',
      '2m',
      '--token-out',
      '/var/run/hourglass/token',
    ]);
    expect(options).to.deep.equal({
      name: 'etl-read',
      spec: {
        subject: { podName: 'etl-7xk2p' },
        purpose: 'OPS-1234 nightly read',
        ttl: '15m',
        permissions: [
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['orders-db'], verbs: ['get'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['list'] },
        ],
        token: {
          audience: ['orders-api'],
          actions: ['orders:read', 'orders:list'],
          target: 'postgres://orders-db/orders',
        },
      },
      wait: true,
      timeoutMs: 120_000,
      tokenOut: '/var/run/hourglass/token',
    });
  });

  it('inside a pod, asks for the pod itself under the name <pod>-<random>', () => {
    const env = { POD_NAME: 'etl-28934-x7k2p', POD_NAMESPACE: 'batch' };
    const first = requestOptions(['--purpose', 'OPS-1 x', ...read], env);
    const second = requestOptions(['--purpose', 'OPS-1 x', ...read], env);
    expect(first.spec.subject).to.deep.equal({ podName: 'etl-28934-x7k2p' });
    expect(first.name).to.match(/^etl-28934-x7k2p-[a-z0-9]{5}$/);
    expect(first.name).to.not.equal(second.name);
    expect(first.wait).to.equal(false);
    expect(first.timeoutMs).to.equal(300_000);
  });

  it('cuts a long pod name so that the generated name fits 63 characters', () => {
    const pod = `${'a'.repeat(56)}-${'b'.repeat(40)}`;
    const { name } = requestOptions(['--purpose', 'OPS-1 x', ...read], { POD_NAME: pod });
    expect(name.length).to.be.at.most(63);
    expect(name).to.match(/^a{56}-[a-z0-9]{5}$/);
  });

  it('lets --pod or --job override the pod of the environment', () => {
    const env = { POD_NAME: 'me' };
    expect(
      requestOptions(['r', '--pod', 'other', '--purpose', 'OPS-1 x', ...read], env).spec.subject,
    ).to.deep.equal({
      podName: 'other',
    });
    expect(
      requestOptions(['r', '--job', 'etl', '--purpose', 'OPS-1 x', ...read], env).spec.subject,
    ).to.deep.equal({
      jobName: 'etl',
    });
  });

  const refusals: [string, string[], Record<string, string>, string][] = [
    [
      'no subject',
      ['r', '--purpose', 'OPS-1 x', ...read],
      {},
      'the subject is missing: give --pod or --job (inside a pod, set POD_NAME)',
    ],
    [
      'both --pod and --job',
      ['r', '--pod', 'p', '--job', 'j', '--purpose', 'OPS-1 x', ...read],
      {},
      'give --pod or --job, not both',
    ],
    [
      'a Job without NAME',
      ['--job', 'j', '--purpose', 'OPS-1 x', ...read],
      {},
      'NAME is required for a Job subject',
    ],
    ['no --purpose', ['r', '--pod', 'p', ...read], {}, '--purpose is required'],
    [
      'a purpose with a control character',
      ['r', '--pod', 'p', '--purpose', 'OPS-1\nx', ...read],
      {},
      '--purpose must be 1 to 512 printable characters',
    ],
    [
      'a purpose over 512 characters',
      ['r', '--pod', 'p', '--purpose', 'x'.repeat(513), ...read],
      {},
      '--purpose must be 1 to 512 printable characters',
    ],
    [
      'nothing asked for',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x'],
      {},
      'ask for something: give --rule, or --token-audience/--token-action/--token-target',
    ],
    [
      'a token without a target',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', '--token-audience', 'a', '--token-action', 'x'],
      {},
      'a token needs all of --token-audience, --token-action and --token-target',
    ],
    [
      '--token-out without --wait',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', ...token, '--token-out', 'f'],
      {},
      '--token-out needs --wait',
    ],
    [
      '--token-out without a token',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', ...read, '--wait', '--token-out', 'f'],
      {},
      '--token-out needs a token',
    ],
    [
      '--timeout without --wait',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', ...read, '--timeout', '1m'],
      {},
      '--timeout needs --wait',
    ],
    [
      'an invalid name',
      ['Etl_Read', '--pod', 'p', '--purpose', 'OPS-1 x', ...read],
      {},
      'NAME "Etl_Read" is not a valid AccessRequest name',
    ],
    [
      'a name over 63 characters',
      ['a'.repeat(64), '--pod', 'p', '--purpose', 'OPS-1 x', ...read],
      {},
      `NAME "${'a'.repeat(64)}" is not a valid AccessRequest name`,
    ],
    [
      'a TTL that is not a duration',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', ...read, '--ttl', '15'],
      {},
      '--ttl "15" is not a duration',
    ],
    [
      'a TTL above 24h',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', ...read, '--ttl', '48h'],
      {},
      '--ttl "48h" must be between 10s and 24h',
    ],
    [
      'a bad rule',
      ['r', '--pod', 'p', '--purpose', 'OPS-1 x', '--rule', 'get'],
      {},
      '--rule "get" must be VERBS RESOURCE',
    ],
    [
      'a second NAME',
      ['r', 's', '--pod', 'p', '--purpose', 'OPS-1 x', ...read],
      {},
      'unexpected argument "s"',
    ],
  ];
  for (const [what, args, env, message] of refusals) {
    it(`exits 2 without connecting for ${what}`, async () => {
      const run = await runOffline(['request', ...args], env);
      expect(run.code).to.equal(2);
      expect(run.connected).to.equal(false);
      expect(run.stderr).to.contain(`error: ${message}`);
      expect(run.stderr).to.match(/\(see 'hourglass request --help'\)\n$/);
      expect(run.stderr.split('\n')).to.have.length(2);
    });
  }
});

describe('hourglass renew, wait, revoke, status, approve: arguments', () => {
  const refusals: [string, string[], Record<string, string>, string][] = [
    [
      'renew without NAME outside a pod',
      ['renew'],
      {},
      "NAME is required (inside a pod, POD_NAME finds the pod's request)",
    ],
    ['renew --token-out without --wait', ['renew', 'r', '--token-out', 'f'], {}, '--token-out needs --wait'],
    [
      'wait without --for',
      ['wait', 'r'],
      {},
      '--for is required (one of Pending, AwaitingApproval, Granted, Denied, Expired, Revoked, Failed)',
    ],
    [
      'wait for a phase that does not exist',
      ['wait', 'r', '--for', 'Ready'],
      {},
      '--for must be one of Pending, AwaitingApproval, Granted',
    ],
    [
      'wait with a bad timeout',
      ['wait', 'r', '--for', 'Granted', '--timeout', 'soon'],
      {},
      '--timeout "soon" is not a duration',
    ],
    ['wait without NAME', ['wait', '--for', 'Granted'], {}, 'NAME is required'],
    ['revoke without --reason', ['revoke', 'r'], {}, '--reason is required'],
    ['status with NAME and -A', ['status', 'r', '-A'], {}, 'give NAME or --all-namespaces, not both'],
    [
      'status with an unknown output format',
      ['status', '-o', 'xml'],
      {},
      '--output must be one of table, wide, json, yaml, not "xml"',
    ],
    ['approve without NAME', ['approve'], {}, 'NAME is required'],
    ['deny with two names', ['deny', 'a', 'b'], {}, 'unexpected argument "b": "deny" takes NAME'],
  ];
  for (const [what, args, env, message] of refusals) {
    it(`exits 2 without connecting for ${what}`, async () => {
      const run = await runOffline(args, env);
      expect(run.code).to.equal(2);
      expect(run.connected).to.equal(false);
      expect(run.stderr).to.contain(`error: ${message}`);
    });
  }

  it("renew needs no NAME inside a pod: it finds the pod's request", () => {
    const parsed = parseCommandArgs('renew', ['--wait'], renew.options);
    expect(() => renew.prepare(parsed, { POD_NAME: 'etl-x' })).to.not.throw();
  });

  it('wait accepts a phase in any letter case', async () => {
    const { parsePhase } = await import('../../../src/cli/commands/wait.ts');
    expect(parsePhase('granted')).to.equal('Granted');
    expect(parsePhase('AWAITINGAPPROVAL')).to.equal('AwaitingApproval');
  });
});
