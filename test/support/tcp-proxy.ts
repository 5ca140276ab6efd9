// A TCP proxy for fault tests: it forwards to a target until told to stall.
import net from 'node:net';

interface Connection {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes from the client while the upstream connection is not open yet. */
  pending: Buffer[];
  /** Forwards nothing any more, in either direction, but stays open: a connection lost silently. */
  silent: boolean;
}

export class TcpProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #connections = new Set<Connection>();
  #stalled = false;

  private constructor(server: net.Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Listens on a free port of 127.0.0.1 and forwards every connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /**
   * Every open connection goes silent for good, as when a network path loses it without a reset;
   * new connections are accepted but wait, forwarding nothing, until resume().
   */
  stall(): void {
    this.#stalled = true;
    for (const connection of this.#connections) connection.silent = true;
  }

  /** New connections, and those that waited, are forwarded again; the silent ones stay silent. */
  resume(): void {
    this.#stalled = false;
    for (const connection of this.#connections) {
      if (!connection.silent && !connection.upstream) this.#connectUpstream(connection);
    }
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#connections) {
      client.destroy();
      upstream?.destroy();
    }
    this.#connections.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    const connection: Connection = { client, upstream: undefined, pending: [], silent: false };
    this.#connections.add(connection);
    client.on('data', (data) => {
      if (connection.silent) return;
      if (connection.upstream?.readyState === 'open') connection.upstream.write(data);
      else connection.pending.push(data);
    });
    const forget = () => {
      connection.upstream?.destroy();
      client.destroy();
      this.#connections.delete(connection);
    };
    client.on('close', forget);
    client.on('error', forget);
    if (!this.#stalled) this.#connectUpstream(connection);
  }

  #connectUpstream(connection: Connection): void {
    const upstream = net.connect(this.#target.port, this.#target.host, () => {
      for (const data of connection.pending.splice(0)) upstream.write(data);
    });
    connection.upstream = upstream;
    upstream.on('data', (data) => {
      if (!connection.silent) connection.client.write(data);
    });
    const end = () => {
      // A silent connection hears nothing, not even that the server went away.
      if (!connection.silent) connection.client.destroy();
    };
    upstream.on('close', end);
    upstream.on('error', end);
  }
}
