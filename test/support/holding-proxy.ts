// A TCP proxy in front of a local server (the API server) that a test can stall: the connections
// open at that moment then forward nothing, in either direction, and on resume deliver what they
// held, in order, as a connection that hung and recovered does. Connections opened while stalled
// work, unless the whole proxy is stalled (`stall({ newConnections: true })`).
import net from 'node:net';

type Held = Buffer | 'end';

export class HoldingProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #flushers = new Set<() => void>();
  /** The pipes of the connections stalled now. */
  readonly #stalledPipes = new Set<object>();
  #stallNew = false;
  readonly #pipes = new Set<object>();
  /** Bytes received while stalled and not yet delivered. */
  heldBytes = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }): Promise<HoldingProxy> {
    const server = net.createServer();
    const proxy = new HoldingProxy(server);
    server.on('connection', (client) => proxy.#connect(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Stalls the open connections; with `newConnections`, also those opened from now on. */
  stall({ newConnections = false } = {}): void {
    for (const pipe of this.#pipes) this.#stalledPipes.add(pipe);
    this.#stallNew = newConnections;
  }

  resume(): void {
    this.#stalledPipes.clear();
    this.#stallNew = false;
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
    const pipe = {};
    this.#pipes.add(pipe);
    if (this.#stallNew) this.#stalledPipes.add(pipe);
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
    to.on('close', () => {
      this.#flushers.delete(flush);
      this.#pipes.delete(pipe);
      this.#stalledPipes.delete(pipe);
    });
    const take = (item: Held) => {
      if (this.#stalledPipes.has(pipe)) {
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
