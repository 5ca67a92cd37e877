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
 * Most rows in one INSERT. Batches are written as INSERTs of power-of-two row counts up to this, so a
 * store sees at most 7 statement shapes: one shape per batch length (what the timer flushes is any
 * length) filled the SQLite store's statement cache with up to 256 INSERTs of up to batchSize rows,
 * measured at ~160 KB of native memory each (+40 MB RSS); each write also blocks the event loop for
 * its whole INSERT (better-sqlite3 is synchronous), so smaller INSERTs keep that block short.
 */
export const MAX_ROWS_PER_INSERT = 64;

/**
 * Usage records queued in memory and written in batches (multi-row INSERTs, see MAX_ROWS_PER_INSERT),
 * so the request path never waits on the store; between INSERTs the writer yields to the event loop,
 * so requests go on while a batch is written. The queue is bounded: past maxQueue new records are
 * dropped, counted and logged (once per flush), never buffered without limit. stop() writes what is
 * queued.
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
      let written = 0;
      try {
        while (written < batch.length) {
          if (written > 0) await yieldToLoop();
          const rows = chunkRows(batch.length - written);
          await this.#insert(batch, written, rows);
          written += rows;
        }
      } catch (err) {
        // Put the unwritten rest back (front) unless that would overflow; the next flush retries it.
        const rest = batch.slice(written);
        const room = this.o.maxQueue - this.#queue.length;
        const kept = rest.slice(0, Math.max(room, 0));
        this.#queue.unshift(...kept);
        if (kept.length < rest.length) this.o.onDrop?.(rest.length - kept.length);
        this.o.logger.warn(
          { code: (err as { code?: string }).code, records: rest.length },
          'usage write failed; will retry',
        );
        return;
      }
    }
  }

  /** The raw rows and their per-minute sums in one transaction, so the two never disagree. */
  #insert(batch: UsageRecord[], from: number, rows: number): Promise<unknown> {
    const params: SqlValue[] = [];
    const slice = batch.slice(from, from + rows);
    for (const r of slice) {
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
    const minutes = minuteSums(slice);
    return this.o.store.transaction(async (tx) => {
      await tx.execute(insertSql(rows), params);
      for (let i = 0; i < minutes.length; ) {
        const n = chunkRows(minutes.length - i);
        await tx.execute(upsertSql(n), minutes.slice(i, i + n).flat());
        i += n;
      }
    });
  }
}

type MinuteRow = [
  minute: number,
  model: string,
  subject: string,
  target: string,
  status: number,
  requests: number,
  errors: number,
  tokens: number,
];

/**
 * Records summed per (minute, model, subject, target, status), sorted by that key: one row per key
 * in a statement (PostgreSQL refuses to upsert a row twice in one), and the same lock order in
 * every writer, so two gateways writing the same minutes cannot deadlock.
 */
export function minuteSums(records: readonly UsageRecord[]): MinuteRow[] {
  const sums = new Map<string, MinuteRow>();
  for (const r of records) {
    // Truncation, as the migration's (ts / 60000) * 60000 does in SQL.
    const minute = r.ts - (r.ts % 60_000);
    const key = JSON.stringify([minute, r.model, r.subject, r.target, r.status]);
    let row = sums.get(key);
    if (!row) {
      row = [minute, r.model, r.subject, r.target, r.status, 0, 0, 0];
      sums.set(key, row);
    }
    row[5] += 1;
    row[6] += r.status >= 400 ? 1 : 0;
    row[7] += r.promptTokens + r.completionTokens;
  }
  return [...sums.values()].sort(compareRows);
}

function compareRows(a: MinuteRow, b: MinuteRow): number {
  for (let i = 0; i < 5; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Rows for the next INSERT: MAX_ROWS_PER_INSERT, else the largest power of two within `left`. */
export function chunkRows(left: number): number {
  if (left >= MAX_ROWS_PER_INSERT) return MAX_ROWS_PER_INSERT;
  return 2 ** Math.floor(Math.log2(left));
}

const statements = new Map<number, string>();

function insertSql(rows: number): string {
  let sql = statements.get(rows);
  if (!sql) {
    const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    sql = `INSERT INTO gateway_usage ${COLS} VALUES ${values}`;
    statements.set(rows, sql);
  }
  return sql;
}

const upserts = new Map<number, string>();

function upsertSql(rows: number): string {
  let sql = upserts.get(rows);
  if (!sql) {
    const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    sql = `INSERT INTO gateway_usage_minutes (minute, model, subject, target, status, requests, errors, tokens)
      VALUES ${values} ON CONFLICT (minute, model, subject, target, status) DO UPDATE SET
      requests = gateway_usage_minutes.requests + excluded.requests,
      errors = gateway_usage_minutes.errors + excluded.errors,
      tokens = gateway_usage_minutes.tokens + excluded.tokens`;
    upserts.set(rows, sql);
  }
  return sql;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
