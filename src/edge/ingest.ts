import type { KapokError } from '../core/errors.js';
import { messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { DecodeError, type Decoder, type Point } from './decode/index.js';
import type { EdgeMetrics } from './metrics.js';
import type { DecodedCache } from './spool/decoded-cache.js';
import type { Spool } from './spool/spool.js';

export type Ack = (err: KapokError | Error | null) => void;

interface Pending {
  topic: string;
  payload: Buffer;
  receivedAt: number;
  ack: Ack;
  /** A device identity's serial: every point must be that device's (the topic's). */
  owner: string | undefined;
}

export interface IngestOptions {
  spool: Spool;
  cache: DecodedCache;
  decode: Decoder;
  maxPayloadBytes: number;
  metrics: EdgeMetrics;
  logger: Logger;
  /** Decoded points of a spooled message (live fan-out). */
  onPoints?: (topic: string, points: Point[]) => void;
  /** After each group commit (sink runners wake up). */
  onSpooled?: () => void;
}

/** Bytes of an undecodable payload kept in the dead-letter table at most. */
const DEAD_LETTER_BYTES = 65_536;

/**
 * Intake for both MQTT modes: a message is decoded, then appended to the spool (or, undecodable,
 * to the dead-letter table), and only then acknowledged. Messages arriving in one event-loop turn
 * share one transaction; the queue holds at most what the sockets delivered in that turn, because
 * a publisher's next QoS 1 message waits for the ack of the previous window.
 */
export class Ingest {
  readonly #o: IngestOptions;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;

  constructor(o: IngestOptions) {
    this.#o = o;
  }

  /** Larger payloads are dead-lettered, not decoded (nor decrypted before that). */
  get maxPayloadBytes(): number {
    return this.#o.maxPayloadBytes;
  }

  /** `owner`: the publisher is this device; points naming another device dead-letter the message. */
  submit(topic: string, payload: Buffer, ack: Ack, owner?: string): void {
    if (this.#closed) {
      ack(new Error('edge intake is stopping'));
      return;
    }
    this.#o.metrics.received.inc();
    this.#queue.push({ topic, payload, receivedAt: Date.now(), ack, owner });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    const { spool, decode, metrics } = this.#o;
    const good: Pending[] = [];
    const decoded: Point[][] = [];
    let results: (KapokError | number)[] = [];
    try {
      spool.transaction(() => {
        for (const m of batch) {
          try {
            if (m.payload.length > this.#o.maxPayloadBytes)
              throw new DecodeError(`payload of ${m.payload.length} bytes is over edge.mqtt.maxPayloadBytes`);
            const points = decode(m.topic, m.payload, m.receivedAt);
            if (m.owner !== undefined) checkOwner(points, m.owner);
            decoded.push(points);
            good.push(m);
          } catch (err) {
            const reason = err instanceof DecodeError ? err.message : `decoder error: ${messageOf(err)}`;
            metrics.failed.inc();
            spool.deadLetter(m.topic, m.payload.subarray(0, DEAD_LETTER_BYTES), reason, m.receivedAt);
          }
        }
        results = spool.append(good);
      });
    } catch (err) {
      // The disk write failed: nothing in this batch is acknowledged; publishers will resend.
      this.#o.logger.error({ reason: messageOf(err), messages: batch.length }, 'edge spool write failed');
      for (const m of batch) m.ack(err as Error);
      return;
    }
    let spooled = 0;
    for (let i = 0; i < good.length; i++) {
      const m = good[i] as Pending;
      const r = results[i];
      if (typeof r !== 'number') metrics.dropped.inc({ reason: 'spool_full' });
      else {
        spooled++;
        this.#o.cache.set(r, decoded[i] as Point[]);
        metrics.decoded.inc((decoded[i] as Point[]).length);
        this.#o.onPoints?.(m.topic, decoded[i] as Point[]);
      }
    }
    metrics.spooled.inc(spooled);
    metrics.spoolBytes.set(spool.bytes);
    // Dead-lettered messages are acknowledged too: they are stored, and resending would not help.
    let g = 0;
    for (const m of batch) {
      if (good[g] === m) {
        const r = results[g++];
        m.ack(typeof r === 'number' ? null : (r ?? null));
      } else m.ack(null);
    }
    if (spooled > 0) this.#o.onSpooled?.();
  }

  /** Flushes what is queued and refuses new messages. */
  close(): void {
    this.#closed = true;
    this.#flush();
  }
}

/** A device identity may not write points as another device (`device` in JSON or a line-protocol tag). */
function checkOwner(points: Point[], owner: string): void {
  for (const p of points)
    if (p.device !== owner)
      throw new DecodeError(
        `payload names device ${p.device.slice(0, 64)} but the publisher is device ${owner}: a device writes only its own points`,
      );
}
