import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Point } from './decode/index.js';
import { topicMatches, validFilter } from './decode/topic.js';
import type { EdgeMetrics } from './metrics.js';

/** Socket buffer above which frames wait in the client's own (bounded) queue. */
const HIGH_WATER = 64 * 1024;

interface Sub {
  ws: WebSocket;
  filter: string;
  queue: string[];
  dropped: number;
  /** Since when the queue has been full (0: not full). */
  fullSince: number;
}

/**
 * Live fan-out on /ws/telemetry?topic=<filter>. Intake never waits for a client: each frame goes
 * to the socket while its buffer is small, else into the client's queue (at most maxQueue frames);
 * beyond that frames are dropped and counted, and the client is told how many in a
 * {"type":"dropped"} message once it catches up. A client whose queue stays full longer than
 * writeDeadlineMs is closed (1013, "too slow").
 */
export class Fanout {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #subs = new Set<Sub>();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly opts: { maxQueue: number; writeDeadlineMs: number; metrics: EdgeMetrics }) {
    if (!(opts.maxQueue >= 1)) throw new Error('Fanout: options.maxQueue must be ≥ 1');
    this.#timer = setInterval(() => this.#pump(), Math.max(5, Math.min(opts.writeDeadlineMs, 50)));
    this.#timer.unref();
  }

  get clients(): number {
    return this.#subs.size;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const filter = new URL(req.url ?? '/', 'http://x').searchParams.get('topic') ?? '#';
    if (!validFilter(filter)) {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\r\n' +
          JSON.stringify({
            error: {
              code: 'KAPOK_EDGE_BAD_QUERY',
              message: 'topic must be an MQTT filter (+ one level, # last)',
            },
          }),
      );
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const sub: Sub = { ws, filter, queue: [], dropped: 0, fullSince: 0 };
      this.#subs.add(sub);
      this.opts.metrics.wsClients.set(this.#subs.size);
      ws.on('close', () => {
        this.#subs.delete(sub);
        this.opts.metrics.wsClients.set(this.#subs.size);
      });
      ws.on('error', () => ws.terminate());
    });
  }

  publish(topic: string, points: readonly Point[]): void {
    if (this.#subs.size === 0) return;
    let frame: string | undefined;
    for (const s of this.#subs) {
      if (!topicMatches(s.filter, topic)) continue;
      frame ??= JSON.stringify({ type: 'points', topic, points });
      this.#send(s, frame);
    }
  }

  #send(s: Sub, frame: string): void {
    if (s.queue.length === 0 && s.ws.bufferedAmount < HIGH_WATER && s.ws.readyState === WebSocket.OPEN) {
      s.ws.send(frame);
      return;
    }
    if (s.queue.length < this.opts.maxQueue) {
      s.queue.push(frame);
      return;
    }
    s.dropped++;
    this.opts.metrics.wsDropped.inc({ reason: 'queue_full' });
    if (s.fullSince === 0) s.fullSince = Date.now();
  }

  #pump(): void {
    const now = Date.now();
    for (const s of this.#subs) {
      if (s.ws.readyState !== WebSocket.OPEN) continue;
      while (s.queue.length > 0 && s.ws.bufferedAmount < HIGH_WATER) s.ws.send(s.queue.shift() as string);
      if (s.queue.length < this.opts.maxQueue) s.fullSince = 0;
      if (s.dropped > 0 && s.queue.length === 0 && s.ws.bufferedAmount < HIGH_WATER) {
        s.ws.send(
          JSON.stringify({ type: 'dropped', count: s.dropped, reason: 'client too slow; queue full' }),
        );
        s.dropped = 0;
      }
      if (s.fullSince > 0 && now - s.fullSince > this.opts.writeDeadlineMs) {
        this.opts.metrics.wsDropped.inc({ reason: 'slow_client' });
        s.ws.close(1013, 'too slow: queue full past edge.fanout.writeDeadlineMs');
        s.queue.length = 0;
        this.#subs.delete(s);
        this.opts.metrics.wsClients.set(this.#subs.size);
        setTimeout(() => s.ws.terminate(), 1000).unref();
      }
    }
  }

  /** Tells every client Kapok is going away (1001) and drops them. */
  closeClients(): void {
    for (const s of this.#subs) {
      s.ws.close(1001, 'kapok is shutting down');
      setTimeout(() => s.ws.terminate(), 200).unref();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const s of this.#subs) s.ws.terminate();
    this.#subs.clear();
  }
}
