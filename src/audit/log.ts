import { KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { toHex } from '../crypto/bytes.js';
import { sm2Sign } from '../crypto/sm2.js';
import type { AuditRecord } from '../ports/audit.js';
import type { Queryable, SqlValue, Store } from '../ports/store.js';
import { type AuditEntry, CHECKPOINT_SM2_ID, chainHash, checkpointMessage } from './chain.js';
import type { SigningKey } from './keys.js';

/**
 * The append side of the chain. Group commit: `record()` queues the entry in memory; one flush at a
 * time writes everything queued (up to batchMax) in one transaction and resolves those records once
 * it committed. Every flush locks the head row first (`FOR UPDATE` on PostgreSQL; SQLite's BEGIN
 * IMMEDIATE holds the write lock already) and reads the head inside the transaction, so processes
 * sharing the Store append to one chain without forks.
 */

export interface AuditLogOptions {
  store: Store;
  batchMax: number;
  /** Signing checkpoints; absent in the CLI (a running kapok, or the next start, signs). */
  checkpoint?: { key: SigningKey; every: number; intervalMs: number };
  logger?: Logger;
  now?: () => number;
}

interface Pending {
  body: Omit<AuditEntry, 'seq' | 'hash'>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+$/;
const COLUMNS = '(seq, time, actor, ip, action, target, outcome, request_id, hash)';
const ROWS_PER_INSERT = 100;

export class AuditLog {
  readonly #o: AuditLogOptions;
  readonly #now: () => number;
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;
  /** Checkpoints and flushes run one at a time. */
  #serial: Promise<unknown> = Promise.resolve();
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  /** The head seq this process last knew to be checkpointed (refreshed by each checkpoint). */
  #checkpointed = -1;
  #head = 0;

  constructor(o: AuditLogOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    if (o.checkpoint) {
      this.#timer = setInterval(() => {
        if (this.#head > this.#checkpointed) void this.#run(() => this.checkpoint()).catch(() => {});
      }, o.checkpoint.intervalMs);
      this.#timer.unref();
    }
  }

  record(r: AuditRecord): Promise<void> {
    if (this.#closed)
      return Promise.reject(
        new KapokError('KAPOK_AUDIT_CLOSED', 'the audit trail was used after it was closed'),
      );
    let body: Pending['body'];
    try {
      body = normalise(r, this.#now());
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ body, resolve, reject });
      this.#kick();
    });
  }

  /** Signs a checkpoint of the current head unless one exists for it. Returns its seq (0: empty log). */
  async checkpoint(): Promise<number> {
    const c = this.#o.checkpoint;
    if (!c) throw new KapokError('KAPOK_AUDIT_CLOSED', 'this audit log has no checkpoint key');
    const { store } = this.#o;
    const seq = await store.transaction(async (tx) => {
      const head = await lockHead(tx, store.dialect);
      this.#head = head.seq;
      if (head.seq === 0) return 0;
      const time = this.#now();
      const signature = toHex(
        sm2Sign(
          c.key.privateKey,
          checkpointMessage({ seq: head.seq, headHash: head.hash, time, keyId: c.key.id }),
          {
            id: CHECKPOINT_SM2_ID,
            publicKey: c.key.publicKey,
          },
        ),
      );
      await tx.execute(
        'INSERT INTO audit_checkpoints (seq, head_hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING',
        [head.seq, head.hash, time, c.key.id, signature],
      );
      return head.seq;
    });
    this.#checkpointed = seq;
    return seq;
  }

  /** Writes what is queued, signs a last checkpoint, and refuses records from now on. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    while (this.#flushing) await this.#flushing;
    this.#closed = true;
    if (this.#o.checkpoint && this.#head > this.#checkpointed)
      await this.#run(() => this.checkpoint()).catch((err) =>
        this.#o.logger?.error(
          { code: (err as KapokError).code, reason: messageOf(err) },
          'audit: last checkpoint failed',
        ),
      );
    await this.#serial.catch(() => {});
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#serial.then(fn, fn);
    this.#serial = p.catch(() => {});
    return p;
  }

  #kick(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      // One turn of the event loop lets concurrent callers join the first batch.
      await new Promise((r) => setImmediate(r));
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, this.#o.batchMax);
        try {
          await this.#run(() => this.#append(batch));
          for (const p of batch) p.resolve();
        } catch (err) {
          this.#o.logger?.error(
            { code: (err as KapokError).code, reason: messageOf(err) },
            'audit: append failed',
          );
          for (const p of batch) p.reject(err);
        }
        const c = this.#o.checkpoint;
        if (c && this.#head - Math.max(this.#checkpointed, 0) >= c.every)
          await this.#run(() => this.checkpoint()).catch((err) =>
            this.#o.logger?.error(
              { code: (err as KapokError).code, reason: messageOf(err) },
              'audit: checkpoint failed',
            ),
          );
      }
    })().finally(() => {
      this.#flushing = null;
      if (this.#queue.length) this.#kick();
    });
  }

  async #append(batch: Pending[]): Promise<void> {
    const { store } = this.#o;
    this.#head = await store.transaction(async (tx) => {
      const head = await lockHead(tx, store.dialect);
      let seq = head.seq;
      let prev = head.hash;
      const rows: SqlValue[][] = batch.map(({ body }) => {
        seq += 1;
        prev = chainHash(prev, { ...body, seq });
        return [
          seq,
          body.time,
          body.actor,
          body.ip,
          body.action,
          body.target,
          body.outcome,
          body.requestId,
          prev,
        ];
      });
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
        const chunk = rows.slice(i, i + ROWS_PER_INSERT);
        await tx.execute(
          `INSERT INTO audit_log ${COLUMNS} VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flat(),
        );
      }
      await tx.execute('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1', [seq, prev]);
      return seq;
    });
  }
}

/** The head row, locked until the transaction ends. */
async function lockHead(tx: Queryable, dialect: Store['dialect']): Promise<{ seq: number; hash: string }> {
  const rows = await tx.query<{ seq: number | bigint; hash: string }>(
    `SELECT seq, hash FROM audit_head WHERE id = 1${dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
  );
  const head = rows[0];
  if (!head)
    throw new KapokError('KAPOK_AUDIT_CHAIN_BROKEN', 'audit_head has no row: the table was emptied by hand');
  return { seq: Number(head.seq), hash: head.hash };
}

function normalise(r: AuditRecord, time: number): Pending['body'] {
  const text = (v: unknown, what: string, max: number, required: boolean): string | null => {
    if (v === undefined || v === null || v === '') {
      if (required) throw invalid(`${what}: required`);
      return null;
    }
    if (typeof v !== 'string') throw invalid(`${what}: expected a string`);
    return v.length > max ? `${v.slice(0, max - 1)}…` : v;
  };
  if (typeof r !== 'object' || r === null) throw invalid('expected an object {actor, action, outcome, ...}');
  if (typeof r.action !== 'string' || r.action.length > 100 || !ACTION.test(r.action))
    throw invalid('action: expected a dotted lowercase name such as gateway.key.create');
  if (r.outcome !== 'ok' && r.outcome !== 'denied' && r.outcome !== 'failed')
    throw invalid('outcome: expected ok, denied or failed');
  return {
    time,
    actor: text(r.actor, 'actor', 200, true) as string,
    ip: text(r.ip, 'ip', 100, false),
    action: r.action,
    target: text(r.target, 'target', 500, false),
    outcome: r.outcome,
    requestId: text(r.requestId, 'requestId', 200, false),
  };
}

const invalid = (msg: string) => new KapokError('KAPOK_AUDIT_INVALID_RECORD', `audit record: ${msg}`);
