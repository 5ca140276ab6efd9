import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { JSONWebKeySet } from 'jose';
import type { FetchLike } from './introspection.ts';
import { GrantRefused } from './refusal.ts';
import { createGrantVerifier, type GrantVerifierOptions, type VerifiedGrant } from './verifier.ts';

/** Where `runVerifyToken` reads and writes; `process` streams in production, fakes in tests. */
export interface VerifyTokenIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The token is read from here unless `--token-file` is given. */
  stdin?: AsyncIterable<string | Uint8Array>;
  fetch?: FetchLike;
  now?: () => Date;
}

/** The projected service account token a pod uses for introspection by default. */
export const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export const EXIT_ACCEPTED = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: hourglass verify-token --issuer URL --audience AUDIENCE --action ACTION --target TARGET [options]

Verifies a grant token read from standard input (or --token-file) for one action on one target.
Exits 0 when accepted, 1 when refused (the reason is printed), 2 on a usage or configuration error.

Options:
  --issuer URL                    issuer URL, exactly the tokens' iss (required)
  --audience AUDIENCE             this backend's audience (required)
  --action ACTION                 the action about to be done (required)
  --target TARGET                 the literal target about to be touched (required)
  --token-file PATH               read the token from PATH instead of standard input
  --jwks URL|PATH                 the issuer's JWKS; default: jwks_uri from issuer discovery
  --algorithm ALG                 an accepted alg, repeatable; default: from discovery, else ES256
  --clock-tolerance SECONDS       leeway for exp and nbf (default 5)
  --introspect URL                also ask this RFC 7662 endpoint whether the grant is active
  --introspection-token-file PATH bearer token for introspection (default ${SERVICE_ACCOUNT_TOKEN_PATH})
  --fail-open                     accept when introspection cannot answer (default: refuse)
  --json                          print the outcome as one JSON object on standard output
  -h, --help                      print this help
`;

class UsageError extends Error {}

/**
 * `hourglass verify-token`: `argv` holds the arguments after the command name. Resolves the exit
 * code; never prints the token.
 */
export async function runVerifyToken(argv: readonly string[], io: VerifyTokenIo): Promise<number> {
  let json = false;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        issuer: { type: 'string' },
        audience: { type: 'string' },
        action: { type: 'string' },
        target: { type: 'string' },
        'token-file': { type: 'string' },
        jwks: { type: 'string' },
        algorithm: { type: 'string', multiple: true },
        'clock-tolerance': { type: 'string' },
        introspect: { type: 'string' },
        'introspection-token-file': { type: 'string' },
        'fail-open': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    json = values.json;
    if (values.help) {
      io.stdout.write(USAGE);
      return EXIT_ACCEPTED;
    }
    const issuer = required(values.issuer, '--issuer');
    const audience = required(values.audience, '--audience');
    const action = required(values.action, '--action');
    const target = required(values.target, '--target');

    const options: GrantVerifierOptions = { issuer, audience, fetch: io.fetch, now: io.now };
    if (values.jwks !== undefined) options.jwks = await jwksFrom(values.jwks);
    if (values.algorithm !== undefined) options.algorithms = values.algorithm;
    if (values['clock-tolerance'] !== undefined) {
      options.clockToleranceSeconds = seconds(values['clock-tolerance'], '--clock-tolerance');
    }
    if (values.introspect !== undefined) {
      const tokenFile = values['introspection-token-file'] ?? SERVICE_ACCOUNT_TOKEN_PATH;
      options.introspection = {
        url: values.introspect,
        bearerToken: async () => (await readFile(tokenFile, 'utf8')).trim(),
        failOpen: values['fail-open'],
        fetch: io.fetch,
      };
    } else if (values['fail-open'] || values['introspection-token-file'] !== undefined) {
      throw new UsageError('--fail-open and --introspection-token-file need --introspect');
    }

    const verifier = createGrantVerifier(options);
    const token = await readToken(values['token-file'], io);
    const grant = await verifier.verify(token, { action, target });
    io.stdout.write(
      json ? `${JSON.stringify(acceptedJson(grant))}\n` : `${acceptedLine(grant, action, target)}\n`,
    );
    return EXIT_ACCEPTED;
  } catch (error) {
    if (error instanceof GrantRefused) {
      if (json) {
        io.stdout.write(
          `${JSON.stringify({ accepted: false, reason: error.reason, message: error.message })}\n`,
        );
      } else {
        io.stderr.write(`Refused (${error.reason}): ${error.message}\n`);
      }
      return EXIT_REFUSED;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`Error: ${message}\n`);
    if (error instanceof UsageError || isParseArgsError(error)) io.stderr.write(`\n${USAGE}`);
    return EXIT_USAGE;
  }
}

function acceptedLine(grant: VerifiedGrant, action: string, target: string): string {
  const introspection =
    grant.introspection === 'unavailable' ? ' (introspection unavailable, failed open)' : '';
  return (
    `Accepted grant ${grant.grantId} for ${grant.subject}: ${action} on ${target}, ` +
    `valid until ${grant.expiresAt.toISOString()}${introspection}`
  );
}

function acceptedJson(grant: VerifiedGrant) {
  return {
    accepted: true,
    grantId: grant.grantId,
    subject: grant.subject,
    audience: grant.audience,
    actions: grant.actions,
    target: grant.target,
    expiresAt: grant.expiresAt.toISOString(),
    kid: grant.kid,
    introspection: grant.introspection,
  };
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

function seconds(value: string, flag: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed))
    throw new UsageError(`${flag} must be a number of seconds`);
  return parsed;
}

async function jwksFrom(value: string): Promise<string | JSONWebKeySet> {
  if (/^https?:\/\//i.test(value)) return value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(value, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `--jwks ${value} is neither an http(s) URL nor a readable JSON file: ${(error as Error).message}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as JSONWebKeySet).keys)) {
    throw new UsageError(`--jwks ${value} does not hold a JSON Web Key Set`);
  }
  return parsed as JSONWebKeySet;
}

async function readToken(tokenFile: string | undefined, io: VerifyTokenIo): Promise<string> {
  let text: string;
  if (tokenFile !== undefined) {
    text = await readFile(tokenFile, 'utf8');
  } else {
    if (!io.stdin) throw new UsageError('no token: give --token-file or pipe the token to standard input');
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin)
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
    text = Buffer.concat(chunks).toString('utf8');
  }
  const token = text.trim();
  if (token === '') throw new UsageError('the token is empty');
  return token;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
