import { messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { TimeSeriesSink } from '../../ports/timeseries.js';
import type { Decoder, Point } from '../decode/index.js';
import type { DecodedCache } from './decoded-cache.js';
import type { Spool, SpooledMeta } from './spool.js';

export interface RunnerOptions {
  spool: Spool;
  sink: TimeSeriesSink;
  decode: Decoder;
  /** Points decoded at intake; a miss decodes the spooled bytes again. */
  cache?: DecodedCache;
  batchSize: number;
  intervalMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  logger: Logger;
  onStored?: (sink: string, points: number, seconds: number, oldestReceivedAt: number) => void;
  onFailure?: (sink: string) => void;
  /** The sink refused points as bad data: confirmed anyway (resending would fail the same way). */
  onRejected?: (sink: string, points: number, reason: string) => void;
}

/**
 * Moves one sink's cursor through the spool: reads up to batch.size messages (or what arrived
 * within batch.intervalMs), decodes them, writes, and confirms only after the sink resolved.
 * A failed write is retried with exponential backoff and full jitter, forever: the spool bound,
 * not the runner, decides what happens when a sink stays down.
 */
export class SinkRunner {
  readonly #o: RunnerOptions;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #failures = 0;
  lastError: string | null = null;

  constructor(o: RunnerOptions) {
    if (!(o.batchSize >= 1)) throw new Error('SinkRunner: options.batchSize must be ≥ 1');
    this.#o = o;
  }

  get failing(): boolean {
    return this.#failures > 0;
  }

  start(): void {
    this.#running = true;
    this.#loop = this.#run();
  }

  /** New messages were spooled: a waiting runner goes on once a full batch is there. */
  notify(): void {
    if (this.#wake && this.#o.spool.backlog(this.#o.sink.name) >= this.#o.batchSize) this.#wake();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { spool, sink } = this.#o;
    while (this.#running) {
      // Read per round: a live reconfiguration changes them (edge/reconfigure.ts).
      const { batchSize, intervalMs } = this.#o;
      let rows: SpooledMeta[];
      if (spool.backlog(sink.name) >= batchSize) rows = spool.readMeta(sink.name, batchSize);
      else {
        // Short of a batch: wait until the oldest waited intervalMs (or a full batch, notify()).
        // Only the oldest row is read for that; the batch is read once, after the wait.
        const oldest = spool.readMeta(sink.name, 1)[0];
        await this.#sleep(
          oldest === undefined ? intervalMs : Math.max(1, intervalMs - (Date.now() - oldest.receivedAt)),
        );
        if (!this.#running) break;
        rows = spool.readMeta(sink.name, batchSize);
        if (rows.length === 0) continue;
      }
      const points = this.#points(rows);
      const last = rows[rows.length - 1]?.id as number;
      const t0 = performance.now();
      try {
        const res = points.length > 0 ? await sink.write(points) : undefined;
        if (res) this.#o.onRejected?.(sink.name, res.rejected, res.reason);
        spool.confirm(sink.name, last);
        this.#o.cache?.trim(spool.confirmedByAll);
        if (this.#failures > 0) this.#o.logger.info({ sink: sink.name }, 'edge sink recovered');
        this.#failures = 0;
        this.lastError = null;
        this.#o.onStored?.(
          sink.name,
          points.length,
          (performance.now() - t0) / 1000,
          rows[0]?.receivedAt ?? 0,
        );
      } catch (err) {
        this.#failures++;
        this.lastError = messageOf(err);
        this.#o.onFailure?.(sink.name);
        const cap = Math.min(this.#o.retryMaxMs, this.#o.retryMinMs * 2 ** Math.min(this.#failures - 1, 30));
        const delay = Math.floor(Math.random() * cap) + 1;
        if (this.#failures === 1 || this.#failures % 20 === 0)
          this.#o.logger.warn(
            { sink: sink.name, failures: this.#failures, retryInMs: delay, reason: this.lastError },
            'edge sink write failed; retrying',
          );
        await this.#sleep(delay, true);
      }
    }
  }

  /**
   * The batch's points: from the decoded cache when it holds every message (no payload is read
   * back), else the whole batch read and decoded again from the spooled bytes (after a restart, or
   * past the cache's bound). Nothing awaits between the two reads, so they see the same rows.
   */
  #points(meta: readonly SpooledMeta[]): Point[] {
    const points: Point[] = [];
    const cache = this.#o.cache;
    if (cache) {
      let all = true;
      for (const r of meta) {
        const hit = cache.get(r.id);
        if (hit === undefined) {
          all = false;
          break;
        }
        for (const p of hit) points.push(p);
      }
      if (all) return points;
      points.length = 0;
    }
    for (const r of this.#o.spool.read(this.#o.sink.name, meta.length)) {
      try {
        const hit = cache?.get(r.id);
        for (const p of hit ?? this.#o.decode(r.topic, r.payload, r.receivedAt)) points.push(p);
      } catch {
        // Undecodable messages are dead-lettered at intake and never spooled; nothing to do here.
      }
    }
    return points;
  }

  #sleep(ms: number, ignoreWake = false): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = ignoreWake ? () => (this.#running ? undefined : done()) : done;
    });
  }
}
