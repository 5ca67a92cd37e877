import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';

const HIGH_WATER = 256 * 1024;

/**
 * /ws/jobs: one JSON frame per job event (submitted, cancelled, task failed, retried, finished) as
 * it happens on this instance. A client whose socket buffer passes 256 KiB loses frames (a
 * {"type":"dropped"} frame says how many); beyond maxClients new clients are closed with 1013.
 */
export class JobsLive {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  readonly #clients = new Map<WebSocket, { dropped: number }>();
  constructor(private readonly maxClients = 100) {}

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.#clients.size >= this.maxClients) return ws.close(1013, 'too many clients');
      this.#clients.set(ws, { dropped: 0 });
      ws.on('close', () => this.#clients.delete(ws));
      ws.on('error', () => ws.terminate());
    });
  }

  broadcast(msg: Record<string, unknown>): void {
    if (this.#clients.size === 0) return;
    const frame = JSON.stringify({ ...msg, at: new Date().toISOString() });
    for (const [ws, st] of this.#clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount > HIGH_WATER) {
        st.dropped++;
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
    for (const ws of this.#clients.keys()) ws.terminate();
    this.#clients.clear();
    this.#wss.close();
  }
}
