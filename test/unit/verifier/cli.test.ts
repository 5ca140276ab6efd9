import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { runVerifyToken, type VerifyTokenIo } from '../../../src/verifier/cli.ts';
import {
  audience,
  fakeIntrospection,
  introspectionAnswer,
  issuer,
  issuerKeys,
  target,
  TestClock,
  validToken,
  type Keys,
} from './fixtures.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('hourglass verify-token', () => {
  let keys: Keys;
  let dir: string;
  let jwksFile: string;
  let token: string;
  let bearerFile: string;
  before(async () => {
    keys = await issuerKeys();
    token = await validToken(keys);
    dir = await mkdtemp(join(tmpdir(), 'hourglass-verify-token-'));
    jwksFile = join(dir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify(keys.jwks));
    bearerFile = join(dir, 'sa-token');
    await writeFile(bearerFile, 'k8s-service-account-token\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function run(args: string[], io: Partial<VerifyTokenIo> & { input?: string } = {}): Promise<Run> {
    let stdout = '';
    let stderr = '';
    const code = await runVerifyToken(args, {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      stdin: Readable.from([io.input ?? `${token}\n`]),
      now: new TestClock().now,
      ...io,
    });
    return { code, stdout, stderr };
  }
  const base = (action = 'orders:read') => [
    '--issuer',
    issuer,
    '--audience',
    audience,
    '--action',
    action,
    '--target',
    target,
    '--jwks',
    jwksFile,
  ];

  it('exits 0 and prints the grant for a valid token read from standard input', async () => {
    const result = await run(base());
    expect(result).to.deep.include({ code: 0, stderr: '' });
    expect(result.stdout).to.equal(
      'Accepted grant 6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04 for system:serviceaccount:batch:etl: ' +
        'orders:read on postgres://orders-db/orders, valid until 2025-03-01T10:15:00.000Z\n',
    );
  });

  it('reads the token from --token-file', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, token);
    const result = await run([...base(), '--token-file', tokenFile], { input: '' });
    expect(result.code).to.equal(0);
  });

  it('exits 1 and names the reason on standard error when the token is refused', async () => {
    const result = await run(base('orders:write'));
    expect(result).to.deep.include({ code: 1, stdout: '' });
    expect(result.stderr).to.equal(
      'Refused (action_not_granted): The grant allows "orders:read", not "orders:write"\n',
    );
  });

  it('prints one JSON object for an accepted and for a refused token with --json', async () => {
    const accepted = await run([...base(), '--json']);
    expect(JSON.parse(accepted.stdout)).to.deep.include({
      accepted: true,
      grantId: '6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04',
      expiresAt: '2025-03-01T10:15:00.000Z',
      introspection: 'not_configured',
    });
    const refused = await run([...base('orders:write'), '--json']);
    expect(refused.code).to.equal(1);
    expect(JSON.parse(refused.stdout)).to.deep.include({ accepted: false, reason: 'action_not_granted' });
  });

  it('never prints the token, accepted or refused', async () => {
    const signature = token.split('.')[2] ?? token;
    for (const args of [base(), base('orders:write'), [...base(), '--json']]) {
      const { stdout, stderr } = await run(args);
      expect(stdout + stderr).to.not.include(signature);
    }
  });

  it('asks introspection with the token file as bearer and refuses an inactive grant', async () => {
    const { fetch, calls } = fakeIntrospection(() => introspectionAnswer({ active: false }));
    const args = [
      ...base(),
      '--introspect',
      'https://hourglass.test/introspect',
      '--introspection-token-file',
      bearerFile,
    ];
    const result = await run(args, { fetch });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/^Refused \(inactive\)/);
    expect(calls[0]?.headers.get('authorization')).to.equal('Bearer k8s-service-account-token');
  });

  it('accepts with --fail-open when introspection is down, and says so', async () => {
    const fetch = () => Promise.reject(new TypeError('fetch failed'));
    const args = [...base(), '--introspect', 'https://hourglass.test/introspect', '--fail-open'];
    const result = await run([...args, '--introspection-token-file', bearerFile], { fetch });
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(/introspection unavailable, failed open/);
  });

  const usageErrors: { name: string; args: () => string[]; message: RegExp }[] = [
    {
      name: 'a missing --target',
      args: () => base().filter((arg) => arg !== '--target' && arg !== target),
      message: /--target is required/,
    },
    {
      name: 'an unknown flag',
      args: () => [...base(), '--insecure'],
      message: /Unknown option '--insecure'/,
    },
    {
      name: 'an HMAC algorithm',
      args: () => [...base(), '--algorithm', 'HS256'],
      message: /HS256 is not allowed/,
    },
    {
      name: 'a JWKS file that is not a key set',
      args: () => [...base(), '--jwks', join(dir, 'missing.json')],
      message: /--jwks/,
    },
    {
      name: '--fail-open without --introspect',
      args: () => [...base(), '--fail-open'],
      message: /need --introspect/,
    },
    {
      name: 'a non-numeric --clock-tolerance',
      args: () => [...base(), '--clock-tolerance', 'soon'],
      message: /--clock-tolerance/,
    },
  ];
  for (const { name, args, message } of usageErrors) {
    it(`exits 2 on ${name}`, async () => {
      const result = await run(args());
      expect(result.code).to.equal(2);
      expect(result.stderr).to.match(message);
    });
  }

  it('exits 2 when standard input holds no token', async () => {
    const result = await run(base(), { input: '  \n' });
    expect(result).to.deep.include({ code: 2 });
    expect(result.stderr).to.match(/the token is empty/);
  });

  it('prints usage and exits 0 with --help', async () => {
    const result = await run(['--help']);
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(/^Usage: hourglass verify-token/);
  });
});
