// A TCP proxy in front of a local server (the API server) that a test can stall: while stalled it
// accepts connections and data but forwards nothing, in either direction, and on resume delivers
// what it held, in order, as a network that stalled and recovered does.
import net from 'node:net';

type Held = Buffer | 'end';

export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #flushers = new Set<() => void>();
  #stalled = false;
  /** Bytes received while stalled and not yet delivered. */
  heldBytes = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server);
    server.on('connection', (client) => proxy.#connect(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  stall(): void {
    this.#stalled = true;
  }

  resume(): void {
    this.#stalled = false;
    for (const flush of this.#flushers) flush();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #connect(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    this.#pipe(client, upstream);
    this.#pipe(upstream, client);
  }

  /** Forwards from one socket to the other, holding what arrives while stalled. */
  #pipe(from: net.Socket, to: net.Socket): void {
    const held: Held[] = [];
    const deliver = (item: Held) => {
      if (to.destroyed) return;
      if (item === 'end') to.end();
      else to.write(item);
    };
    const flush = () => {
      for (const item of held.splice(0)) {
        if (item !== 'end') this.heldBytes -= item.length;
        deliver(item);
      }
    };
    this.#flushers.add(flush);
    to.on('close', () => this.#flushers.delete(flush));
    const take = (item: Held) => {
      if (this.#stalled) {
        held.push(item);
        if (item !== 'end') this.heldBytes += item.length;
      } else {
        flush();
        deliver(item);
      }
    };
    from.on('data', (chunk: Buffer) => take(chunk));
    from.on('end', () => take('end'));
  }
}
