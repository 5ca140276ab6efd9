import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Handler } from './router.ts';

export interface Listening {
  server: Server;
  url: string;
}

/** Starts a server on host:port (port 0 picks a free one) and resolves with its URL. */
export function listen(
  handler: Handler,
  { host, port, tls }: { host: string; port: number; tls?: { cert: string | Buffer; key: string | Buffer } },
): Promise<Listening> {
  const server = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      const hostPart = host.includes(':') ? `[${host}]` : host;
      resolve({ server, url: `${tls ? 'https' : 'http'}://${hostPart}:${bound}` });
    });
  });
}

/** Stops accepting, lets requests under way finish for up to graceMs, then drops every connection. */
export function close(server: Server, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}
