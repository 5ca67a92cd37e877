import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A plain TCP proxy to a real server, to cut a client off and let it back: `cut()` destroys every
 * live connection and, until `restore()`, accepts and closes new ones at once (the client sees
 * the server go away and keeps retrying). It changes no byte.
 */
export class TcpProxy {
  up = true;
  readonly #server: Server;
  readonly #live = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(host: string, port: number): Promise<TcpProxy> {
    const server = createServer();
    const p = new TcpProxy(server);
    server.on('connection', (c) => p.#accept(c, host, port));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return p;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  cut(): void {
    this.up = false;
    for (const s of this.#live) s.destroy();
    this.#live.clear();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #accept(client: Socket, host: string, port: number): void {
    if (!this.up) {
      client.destroy();
      return;
    }
    const upstream = connect(port, host);
    this.#live.add(client);
    this.#live.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#live.delete(client);
      this.#live.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
