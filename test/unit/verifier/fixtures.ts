import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import { GRANT_TOKEN_TYPE } from '../../../src/tokens/contract.ts';
import { grantTokenPayload, signGrantToken, type GrantTokenClaims } from '../../../src/tokens/grant-token.ts';
import { generateSigningKey, KeySet, type SigningKey } from '../../../src/tokens/keys.ts';
import type { FetchLike } from '../../../src/verifier/introspection.ts';
import { GrantRefused } from '../../../src/verifier/refusal.ts';
import type { GrantVerifierOptions } from '../../../src/verifier/verifier.ts';

export const issuer = 'https://hourglass.hourglass-system.svc';
export const audience = 'orders-api';
export const action = 'orders:read';
export const target = 'postgres://orders-db/orders';
export const issuedAt = new Date('2025-03-01T10:00:00Z');
export const ttlSeconds = 15 * 60;
export const expiresAt = new Date(issuedAt.getTime() + ttlSeconds * 1000);
/** A minute into the grant's life: every time-independent vector is checked at this instant. */
export const oneMinuteIn = new Date(issuedAt.getTime() + 60_000);
export const use = { action, target };

export function grantClaims(overrides: Partial<GrantTokenClaims> = {}): GrantTokenClaims {
  return {
    issuer,
    namespace: 'batch',
    serviceAccountName: 'etl',
    audience,
    grantId: '6f1c2a7e-9d4b-4c1a-8f3e-2b5d7c9e1a04',
    issuedAt,
    expiresAt,
    request: { namespace: 'batch', name: 'etl-read-orders', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000001' },
    purpose: 'OPS-1234 nightly read of the orders table',
    actions: [action],
    target,
    workload: { kind: 'Pod', name: 'etl-7xk2p', uid: '0b8e5c1d-aaaa-4bbb-8ccc-000000000002' },
    renewal: 0,
    ...overrides,
  };
}

/** The payload `signGrantToken` would sign, with `changes` applied; an undefined value removes a claim. */
export function grantPayload(changes: Record<string, unknown> = {}): JWTPayload {
  const payload: Record<string, unknown> = { ...grantTokenPayload(grantClaims()) };
  for (const [claim, value] of Object.entries(changes)) {
    if (value === undefined) delete payload[claim];
    else payload[claim] = value;
  }
  return payload;
}

/** A clock the test sets by hand. */
export class TestClock {
  at: Date;
  constructor(at: Date = oneMinuteIn) {
    this.at = at;
  }
  readonly now = (): Date => this.at;
  advance(ms: number): void {
    this.at = new Date(this.at.getTime() + ms);
  }
}

export interface Keys {
  /** The issuer's current key, published in `jwks`. */
  key: SigningKey;
  /** A key of the same kind the issuer no longer publishes. */
  retired: SigningKey;
  jwks: JSONWebKeySet;
}

export async function issuerKeys(): Promise<Keys> {
  const createdAt = new Date(issuedAt.getTime() - 24 * 3_600_000);
  const key = await generateSigningKey(createdAt);
  const retired = await generateSigningKey(createdAt);
  return { key, retired, jwks: new KeySet([key]).publicJwks(issuedAt) };
}

export function validToken(keys: Keys, overrides: Partial<GrantTokenClaims> = {}): Promise<string> {
  return signGrantToken(keys.key, grantClaims(overrides));
}

/** The grant token header, with `changes` applied; an undefined value removes a parameter. */
export function grantHeader(kid: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  const header: Record<string, unknown> = { alg: 'ES256', kid, typ: GRANT_TOKEN_TYPE };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete header[name];
    else header[name] = value;
  }
  return header;
}

/** A JWT with any header and claims, properly signed by `key` with the header's alg. */
export function forge(
  key: CryptoKey | Uint8Array,
  header: Record<string, unknown>,
  payload: JWTPayload,
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

/** A compact JWS over raw payload bytes, for payloads that are not JSON claims. */
export function forgeBytes(
  key: CryptoKey,
  header: Record<string, unknown>,
  payload: Uint8Array,
  crit?: Record<string, boolean>,
): Promise<string> {
  return new CompactSign(payload)
    .setProtectedHeader(header as { alg: string })
    .sign(key, crit ? { crit } : {});
}

export function base64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function verifierOptions(keys: Keys, clock: TestClock, overrides: Partial<GrantVerifierOptions> = {}) {
  return { issuer, audience, jwks: keys.jwks, now: clock.now, ...overrides } satisfies GrantVerifierOptions;
}

/** What a fake introspection endpoint was asked. */
export interface IntrospectionCall {
  url: string;
  method: string | undefined;
  headers: Headers;
  body: URLSearchParams;
}

/** An injected fetch that answers introspection with `answer` and records each call. */
export function fakeIntrospection(answer: (token: string) => Response | Promise<Response>): {
  fetch: FetchLike;
  calls: IntrospectionCall[];
} {
  const calls: IntrospectionCall[] = [];
  const fetch: FetchLike = async (url, init) => {
    const body = new URLSearchParams(String(init.body));
    calls.push({ url, method: init.method, headers: new Headers(init.headers), body });
    return answer(body.get('token') ?? '');
  };
  return { fetch, calls };
}

export function introspectionAnswer(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** A real HTTP server on 127.0.0.1 for discovery, JWKS and introspection tests. */
export interface TestServer {
  url: string;
  requests: { method: string; path: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

export async function startServer(
  handle: (request: { method: string; path: string; body: string }, response: ServerResponse) => void,
): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry = {
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(entry);
      handle(entry, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(response: ServerResponse, body: unknown, status = 200): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** A port on 127.0.0.1 nothing listens on: a server was bound to it and closed. */
export async function closedPortUrl(): Promise<string> {
  const server = await startServer((_request, response) => response.end());
  await server.close();
  return server.url;
}

/** The reason a verification was refused with, or 'accepted'. */
export async function outcome(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'accepted',
    (error: unknown) => {
      const reason = (error as { reason?: unknown }).reason;
      if (typeof reason !== 'string') throw error;
      return reason;
    },
  );
}

/** The refusal a verification ended in; fails the test when it was accepted or failed otherwise. */
export async function refusal(promise: Promise<unknown>): Promise<GrantRefused> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GrantRefused)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error;
}
