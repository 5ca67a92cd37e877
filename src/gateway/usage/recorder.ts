import type { Logger } from '../../core/log.js';
import type { SqlValue, Store } from '../../ports/store.js';

export interface UsageRecord {
  ts: number;
  subject: string;
  model: string;
  target: string;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  status: number;
  stream: boolean;
}

export interface UsageRecorderOptions {
  store: Store;
  logger: Logger;
  flushIntervalMs: number;
  batchSize: number;
  maxQueue: number;
  onDrop?: (n: number) => void;
}

const COLS = '(ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status, stream)';

/**
 * Usage records queued in memory and written in batches (one multi-row INSERT per batch), so the
 * request path never waits on the store. The queue is bounded: past maxQueue new records are dropped,
 * counted and logged (once per flush), never buffered without limit. stop() writes what is queued.
 */
export class UsageRecorder {
  #queue: UsageRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | null = null;
  #dropped = 0;

  constructor(private readonly o: UsageRecorderOptions) {}

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.o.flushIntervalMs);
    this.#timer.unref();
  }

  record(r: UsageRecord): void {
    if (this.#queue.length >= this.o.maxQueue) {
      this.#dropped++;
      this.o.onDrop?.(1);
      return;
    }
    this.#queue.push(r);
    if (this.#queue.length >= this.o.batchSize && !this.#flushing) void this.flush();
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Writes everything queued now (waits for a flush already running first). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (!this.#queue.length && !this.#dropped) return;
    this.#flushing = this.#write().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }

  async #write(): Promise<void> {
    if (this.#dropped) {
      this.o.logger.warn(
        { dropped: this.#dropped, maxQueue: this.o.maxQueue },
        'usage queue full: records dropped (raise gateway.usage.maxQueue or check the store)',
      );
      this.#dropped = 0;
    }
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.o.batchSize);
      const params: SqlValue[] = [];
      for (const r of batch) {
        params.push(
          r.ts,
          r.subject,
          r.model,
          r.target,
          r.promptTokens,
          r.completionTokens,
          r.latencyMs,
          r.status,
          r.stream ? 1 : 0,
        );
      }
      const values = batch.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      try {
        await this.o.store.execute(`INSERT INTO gateway_usage ${COLS} VALUES ${values}`, params);
      } catch (err) {
        // Put the batch back (front) unless that would overflow; the next flush retries it.
        const room = this.o.maxQueue - this.#queue.length;
        const kept = batch.slice(0, Math.max(room, 0));
        this.#queue.unshift(...kept);
        if (kept.length < batch.length) this.o.onDrop?.(batch.length - kept.length);
        this.o.logger.warn(
          { code: (err as { code?: string }).code, records: batch.length },
          'usage write failed; will retry',
        );
        return;
      }
    }
  }
}
