import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** MQTT control packet types (MQTT 3.1.1, section 2.2.1) the tests look for. */
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;

export interface Seen {
  type: number;
  /** PUBLISH: the DUP flag (a redelivery, MQTT 3.1.1 section 3.3.1.1). */
  dup: boolean;
  at: number;
}

/**
 * A TCP proxy between an MQTT client under test and a real broker. It records each accepted
 * connection (performance.now()) and the packet types crossing it either way, can cut every live
 * connection, and while `up` is false accepts and closes at once (so each reconnect attempt is
 * seen and counted). It reads packets only by their fixed header (type and remaining length) and
 * changes nothing.
 */
export class MqttProxy {
  readonly accepts: number[] = [];
  /** Client → broker packets. */
  readonly fromClient: Seen[] = [];
  /** Broker → client packets. */
  readonly toClient: Seen[] = [];
  up = true;
  readonly #server: Server;
  readonly #live = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(target: URL): Promise<MqttProxy> {
    const server = createServer();
    const p = new MqttProxy(server);
    server.on('connection', (c) => p.#accept(c, target));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return p;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  count(from: Seen[], type: number): number {
    return from.filter((s) => s.type === type).length;
  }

  /** Drops every live connection (both sides), as a broken network would. */
  cut(): void {
    for (const s of this.#live) s.destroy();
    this.#live.clear();
  }

  async close(): Promise<void> {
    this.up = false;
    this.cut();
    await new Promise((r) => this.#server.close(r));
  }

  #accept(c: Socket, target: URL): void {
    this.accepts.push(performance.now());
    if (!this.up) {
      c.destroy();
      return;
    }
    const b = connect(Number(target.port || 1883), target.hostname);
    this.#live.add(c);
    this.#live.add(b);
    const end = () => {
      c.destroy();
      b.destroy();
      this.#live.delete(c);
      this.#live.delete(b);
    };
    for (const s of [c, b]) {
      s.on('error', end);
      s.on('close', end);
    }
    const up = frames((type, dup) => this.fromClient.push({ type, dup, at: performance.now() }));
    const down = frames((type, dup) => this.toClient.push({ type, dup, at: performance.now() }));
    c.on('data', (d: Buffer) => {
      up(d);
      b.write(d);
    });
    b.on('data', (d: Buffer) => {
      down(d);
      c.write(d);
    });
  }
}

/** Splits a byte stream into MQTT packets by the fixed header; calls back with type and DUP flag. */
function frames(on: (type: number, dup: boolean) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        if (i >= buf.length) return;
        const d = buf[i++] as number;
        len += (d & 127) * mul;
        mul *= 128;
        if (!(d & 128)) break;
      }
      if (buf.length < i + len) return;
      const h = buf[0] as number;
      on(h >> 4, (h & 0x08) !== 0);
      buf = buf.subarray(i + len);
    }
  };
}
