import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import type { DeadLetter, SpooledMessage, SpooledMeta, SpoolStore } from '../../ports/spool.js';

/**
 * The durable spool's policy over a SpoolStore (storage: adapters/sqlite/spool): per-sink cursors,
 * deletion of what every sink confirmed, the edge.spool.maxBytes bound with onFull reject or
 * drop-oldest, and the bounded dead-letter list. Appends arriving in the same event-loop turn
 * share one transaction (group commit; see Ingest).
 */

export type { SpooledMessage, SpooledMeta } from '../../ports/spool.js';

export interface SpoolOptions {
  store: SpoolStore;
  maxBytes: number;
  onFull: 'reject' | 'drop-oldest';
  /** Names of the configured sinks: each has a cursor; messages every one confirmed are deleted. */
  sinks: string[];
  deadLetterMax: number;
  /** Called when drop-oldest removed messages (count, bytes). */
  onDrop?: (messages: number, bytes: number) => void;
}

/** Bytes one message counts against maxBytes: payload, topic and a fixed row overhead. */
export const ROW_OVERHEAD = 32;

export class Spool {
  readonly #store: SpoolStore;
  readonly #opts: SpoolOptions;
  readonly #cursors = new Map<string, number>();
  #bytes = 0;
  #lastId = 0;

  constructor(opts: SpoolOptions) {
    if (opts.sinks.length === 0) throw new Error('Spool: options.sinks must name at least one sink');
    if (!(opts.maxBytes > 0)) throw new Error('Spool: options.maxBytes must be > 0');
    this.#opts = opts;
    this.#store = opts.store;
    const saved = this.#store.cursors();
    for (const s of opts.sinks) this.#cursors.set(s, saved.get(s) ?? 0);
    this.#lastId = this.#store.lastId();
    // Confirmed by every sink but not yet deleted (a crash between commit and delete): delete now.
    this.#release();
    this.#bytes = this.#sizeUpTo(Number.MAX_SAFE_INTEGER);
  }

  #sizeUpTo(id: number): number {
    const { count, bytes } = this.#store.sizeUpTo(id);
    return bytes + count * ROW_OVERHEAD;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get lastId(): number {
    return this.#lastId;
  }

  /** Highest id every sink confirmed. */
  get confirmedByAll(): number {
    return Math.min(...this.#cursors.values());
  }

  /** Messages not yet confirmed by `sink`. */
  backlog(sink: string): number {
    return this.#lastId - (this.#cursors.get(sink) ?? 0);
  }

  /**
   * Appends messages in one transaction. Returns per message its spool id, or the error that kept
   * it out (spool full with onFull reject). Throws KAPOK_EDGE_SPOOL when the disk write fails.
   */
  append(batch: readonly { topic: string; payload: Buffer; receivedAt: number }[]): (KapokError | number)[] {
    const results: (KapokError | number)[] = [];
    const store = this.#store;
    try {
      store.transaction(() => {
        for (const m of batch) {
          const size = m.payload.length + Buffer.byteLength(m.topic) + ROW_OVERHEAD;
          if (this.#bytes + size > this.#opts.maxBytes) {
            if (
              this.#opts.onFull === 'reject' ||
              !this.#dropOldest(this.#bytes + size - this.#opts.maxBytes)
            ) {
              results.push(
                new KapokError(
                  'KAPOK_EDGE_SPOOL_FULL',
                  `edge spool is full (${this.#bytes} of edge.spool.maxBytes ${this.#opts.maxBytes} bytes): bring the sinks back, raise edge.spool.maxBytes or set edge.spool.onFull: drop-oldest`,
                ),
              );
              continue;
            }
          }
          this.#lastId = store.append(m.topic, m.payload, m.receivedAt);
          this.#bytes += size;
          results.push(this.#lastId);
        }
      });
    } catch (err) {
      // Rolled back: the counters go back to what the store holds.
      try {
        this.#lastId = store.lastId();
        this.#bytes = this.#sizeUpTo(Number.MAX_SAFE_INTEGER);
      } catch {}
      throw isKapokError(err)
        ? err
        : new KapokError('KAPOK_EDGE_SPOOL', `edge spool write failed: ${messageOf(err)}`, { cause: err });
    }
    return results;
  }

  /**
   * Appends every message or none (the HTTP write API: one request, one answer): their ids, or the
   * spool-full error when they do not fit as a whole (onFull reject, or more than maxBytes at once).
   * Throws KAPOK_EDGE_SPOOL when the disk write fails (then nothing was appended).
   */
  appendAll(batch: readonly { topic: string; payload: Buffer; receivedAt: number }[]): number[] | KapokError {
    let size = 0;
    for (const m of batch) size += m.payload.length + Buffer.byteLength(m.topic) + ROW_OVERHEAD;
    const max = this.#opts.maxBytes;
    if (size > max || (this.#opts.onFull === 'reject' && this.#bytes + size > max))
      return new KapokError(
        'KAPOK_EDGE_SPOOL_FULL',
        size > max
          ? `the batch (${size} bytes) is larger than edge.spool.maxBytes (${max}): send smaller batches`
          : `edge spool is full (${this.#bytes} of edge.spool.maxBytes ${max} bytes): bring the sinks back, raise edge.spool.maxBytes or set edge.spool.onFull: drop-oldest`,
      );
    // Fits now, and nothing runs between this check and the synchronous append: drop-oldest can
    // always free `size` ≤ maxBytes, and reject has the room. Checked again all the same.
    const results = this.append(batch);
    const ids: number[] = [];
    for (const r of results) if (typeof r === 'number') ids.push(r);
    if (ids.length !== batch.length)
      throw new KapokError('KAPOK_EDGE_SPOOL', 'edge spool appended part of a batch: report this as a bug');
    return ids;
  }

  /** Up to `limit` messages after `sink`'s cursor, oldest first. */
  read(sink: string, limit: number): SpooledMessage[] {
    const pos = this.#cursors.get(sink);
    if (pos === undefined) throw new Error(`Spool.read: unknown sink ${sink}`);
    return this.#store.read(pos, limit);
  }

  /** Ids and receive times of what `read` would answer (no payloads copied). */
  readMeta(sink: string, limit: number): SpooledMeta[] {
    const pos = this.#cursors.get(sink);
    if (pos === undefined) throw new Error(`Spool.readMeta: unknown sink ${sink}`);
    return this.#store.readMeta(pos, limit);
  }

  /** The sink confirmed every message up to `id`: move its cursor, delete what all sinks have. */
  confirm(sink: string, id: number): void {
    const pos = this.#cursors.get(sink);
    if (pos === undefined) throw new Error(`Spool.confirm: unknown sink ${sink}`);
    if (id <= pos) return;
    this.#store.transaction(() => {
      this.#store.setCursor(sink, id);
      this.#cursors.set(sink, id);
      this.#release();
    });
  }

  #release(): void {
    const min = Math.min(...this.#cursors.values());
    if (min <= 0) return;
    const bytes = this.#sizeUpTo(min);
    if (bytes === 0) return;
    this.#store.deleteUpTo(min);
    this.#bytes -= bytes;
  }

  /** Drops the oldest messages until `need` bytes are free; every sink skips them. False if impossible. */
  #dropOldest(need: number): boolean {
    let freed = 0;
    let upTo = 0;
    let n = 0;
    while (freed < need) {
      const rows = this.#store.oldest(256);
      if (rows.length === 0) return false;
      for (let i = 0; i < rows.length && freed < need; i++) {
        const r = rows[i] as { id: number; bytes: number };
        freed += r.bytes + ROW_OVERHEAD;
        upTo = r.id;
        n++;
      }
      this.#store.deleteUpTo(upTo);
    }
    for (const [sink, pos] of this.#cursors) {
      if (pos < upTo) {
        this.#store.setCursor(sink, upTo);
        this.#cursors.set(sink, upTo);
      }
    }
    this.#bytes -= freed;
    this.#opts.onDrop?.(n, freed);
    return true;
  }

  /** Keeps an undecodable message (bounded: the oldest go first). */
  deadLetter(topic: string, payload: Buffer, reason: string, at: number): void {
    if (this.#opts.deadLetterMax === 0) return;
    const id = this.#store.addDeadLetter(topic, payload, reason, at);
    if (id > this.#opts.deadLetterMax) this.#store.trimDeadLetters(id - this.#opts.deadLetterMax);
  }

  deadLetters(limit: number, afterId = 0): DeadLetter[] {
    return this.#store.deadLetters(limit, afterId);
  }

  deleteDeadLetter(id: number): void {
    this.#store.deleteDeadLetter(id);
  }

  /** Runs fn in one transaction (group commit of appends and dead letters). */
  transaction<T>(fn: () => T): T {
    return this.#store.transaction(fn);
  }

  close(): void {
    this.#store.close();
  }
}
