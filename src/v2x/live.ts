import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';

/** Socket buffer above which frames are dropped for that client (the intake never waits). */
const HIGH_WATER = 256 * 1024;

/**
 * /ws/v2x: warnings and zone events as they happen, vehicle positions every positionsEveryMs.
 * A client too slow to keep its socket buffer under 256 KiB loses frames (counted, and told in a
 * {"type":"dropped"} frame once it catches up); beyond maxClients new clients are refused (1013).
 */
export class Live {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  readonly #clients = new Map<WebSocket, { dropped: number }>();
  readonly #timer: NodeJS.Timeout;
  dropped = 0;

  constructor(readonly opts: { maxClients: number; positionsEveryMs: number; positions: () => unknown[] }) {
    this.#timer = setInterval(() => {
      if (this.#clients.size === 0) return;
      this.broadcast({ type: 'positions', at: Date.now(), vehicles: opts.positions() });
    }, opts.positionsEveryMs);
    this.#timer.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.#clients.size >= this.opts.maxClients) {
        ws.close(1013, 'too many clients');
        return;
      }
      this.#clients.set(ws, { dropped: 0 });
      ws.on('close', () => this.#clients.delete(ws));
      ws.on('error', () => ws.terminate());
    });
  }

  broadcast(msg: unknown): void {
    if (this.#clients.size === 0) return;
    const frame = JSON.stringify(msg);
    for (const [ws, st] of this.#clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount > HIGH_WATER) {
        st.dropped++;
        this.dropped++;
        continue;
      }
      if (st.dropped > 0) {
        ws.send(JSON.stringify({ type: 'dropped', frames: st.dropped }));
        st.dropped = 0;
      }
      ws.send(frame);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const ws of this.#clients.keys()) ws.terminate();
    this.#clients.clear();
  }
}
