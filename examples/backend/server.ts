// An example backend outside Kubernetes, protected by hourglass grant tokens: it serves the
// orders table only to a caller whose token grants the action on the target, and asks the
// issuer (RFC 7662) whether the grant is still live, so a revoked token is refused before its exp.
//
//   HOURGLASS_ISSUER=https://127.0.0.1:8443        the controller's issuer URL
//   HOURGLASS_CA_FILE=.cluster/pki/ca.crt          trust for the issuer's TLS (optional)
//   INTROSPECTION_TOKEN_FILE=/var/run/.../token    this backend's own Kubernetes token
//   PORT=0                                         0 picks a free port
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { createGrantVerifier, GrantRefused, type FetchLike } from '../../src/verifier/index.ts';

const issuer = process.env.HOURGLASS_ISSUER ?? '';
const tokenFile = process.env.INTROSPECTION_TOKEN_FILE ?? '';
const caFile = process.env.HOURGLASS_CA_FILE;
const dispatcher = caFile ? new Agent({ connect: { ca: readFileSync(caFile) } }) : undefined;
const fetch = ((url, init) =>
  undiciFetch(url, { ...init, ...(dispatcher ? { dispatcher } : {}) } as never)) as FetchLike;

const verifier = createGrantVerifier({
  issuer,
  audience: 'orders-api',
  fetch,
  introspection: {
    url: `${issuer}/introspect`,
    bearerToken: () => readFileSync(tokenFile, 'utf8').trim(),
    fetch,
  },
});

/** What each route does, in the terms of a grant: an action on a target. */
const routes: Record<string, { action: string; target: string; respond: () => unknown }> = {
  'GET /orders': {
    action: 'orders:read',
    target: 'postgres://orders-db/orders',
    respond: () => ({ orders: [{ id: 1, total: 42 }] }),
  },
  'POST /orders': {
    action: 'orders:write',
    target: 'postgres://orders-db/orders',
    respond: () => ({ created: true }),
  },
  'GET /customers': {
    action: 'orders:read',
    target: 'postgres://orders-db/customers',
    respond: () => ({ customers: [] }),
  },
};

const server = createServer(async (req, res) => {
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const route = routes[`${req.method} ${req.url}`];
  if (!route) return send(404, { error: 'not_found' });
  const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return send(401, { error: 'missing_token' });
  try {
    const grant = await verifier.verify(token, { action: route.action, target: route.target });
    console.log(
      JSON.stringify({
        message: 'Allowed',
        route: `${req.method} ${req.url}`,
        grant: grant.grantId,
        subject: grant.subject,
      }),
    );
    send(200, route.respond());
  } catch (error) {
    if (!(error instanceof GrantRefused)) throw error;
    console.log(
      JSON.stringify({ message: 'Refused', route: `${req.method} ${req.url}`, reason: error.reason }),
    );
    send(403, { error: error.reason, message: error.message });
  }
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`Listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
