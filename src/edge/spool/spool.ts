import Database from 'better-sqlite3';
import { KapokError, messageOf } from '../../core/errors.js';

/**
 * The durable spool: one SQLite database in WAL mode (table `messages`, per-sink `cursors`,
 * bounded `dead_letters`). Why SQLite rather than segment files: an append, a cursor move and the
 * deletion of confirmed messages are each one atomic transaction, crash recovery is SQLite's, and
 * better-sqlite3 commits synchronously, so "appended" means on disk before the PUBACK goes out.
 * Appends arriving in the same event-loop turn share one transaction (group commit).
 *
 * fsync policy (edge.spool.fsync): `normal` = WAL with synchronous=NORMAL: a commit survives a
 * Kapok crash or SIGKILL (it is in the OS page cache) but the last commits may be lost on power
 * loss; `full` = synchronous=FULL: every commit is fsynced, surviving power loss, slower.
 */

export interface SpooledMessage {
  id: number;
  topic: string;
  payload: Buffer;
  receivedAt: number;
}

export interface SpoolOptions {
  file: string;
  maxBytes: number;
  onFull: 'reject' | 'drop-oldest';
  fsync: 'normal' | 'full';
  /** Names of the configured sinks: each has a cursor; messages every one confirmed are deleted. */
  sinks: string[];
  deadLetterMax: number;
  /** Called when drop-oldest removed messages (count, bytes). */
  onDrop?: (messages: number, bytes: number) => void;
}

/** Bytes one message counts against maxBytes: payload, topic and a fixed row overhead. */
export const ROW_OVERHEAD = 32;

export class Spool {
  readonly #db: Database.Database;
  readonly #opts: SpoolOptions;
  readonly #cursors = new Map<string, number>();
  #bytes = 0;
  #lastId = 0;
  readonly #stmt: {
    insert: Database.Statement;
    read: Database.Statement;
    setCursor: Database.Statement;
    sizeUpTo: Database.Statement;
    deleteUpTo: Database.Statement;
    oldest: Database.Statement;
    dead: Database.Statement;
    trimDead: Database.Statement;
  };

  constructor(opts: SpoolOptions) {
    if (opts.sinks.length === 0) throw new Error('Spool: options.sinks must name at least one sink');
    if (!(opts.maxBytes > 0)) throw new Error('Spool: options.maxBytes must be > 0');
    this.#opts = opts;
    try {
      this.#db = new Database(opts.file);
      this.#db.pragma('journal_mode = WAL');
      // `kapok edge replay-dead-letters` may write while `kapok up` runs: wait for the lock.
      this.#db.pragma('busy_timeout = 5000');
      this.#db.pragma(`synchronous = ${opts.fsync === 'full' ? 'FULL' : 'NORMAL'}`);
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, received INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, pos INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB NOT NULL);
      `);
    } catch (err) {
      throw new KapokError(
        'KAPOK_EDGE_SPOOL',
        `edge spool ${opts.file} cannot be opened (${messageOf(err)}): check that dataDir is writable and not full`,
        { cause: err },
      );
    }
    const db = this.#db;
    this.#stmt = {
      insert: db.prepare('INSERT INTO messages (topic, payload, received) VALUES (?, ?, ?)'),
      read: db.prepare(
        'SELECT id, topic, payload, received AS receivedAt FROM messages WHERE id > ? ORDER BY id LIMIT ?',
      ),
      setCursor: db.prepare(
        'INSERT INTO cursors (sink, pos) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET pos = excluded.pos',
      ),
      sizeUpTo: db.prepare(
        `SELECT count(*) AS n, coalesce(sum(length(payload) + length(CAST(topic AS BLOB)) + ${ROW_OVERHEAD}), 0) AS bytes FROM messages WHERE id <= ?`,
      ),
      deleteUpTo: db.prepare('DELETE FROM messages WHERE id <= ?'),
      oldest: db.prepare(
        `SELECT id, length(payload) + length(CAST(topic AS BLOB)) + ${ROW_OVERHEAD} AS n FROM messages ORDER BY id LIMIT 256`,
      ),
      dead: db.prepare('INSERT INTO dead_letters (at, topic, reason, payload) VALUES (?, ?, ?, ?)'),
      trimDead: db.prepare('DELETE FROM dead_letters WHERE id <= ?'),
    };
    const saved = new Map(
      (db.prepare('SELECT sink, pos FROM cursors').all() as { sink: string; pos: number }[]).map((r) => [
        r.sink,
        r.pos,
      ]),
    );
    for (const s of opts.sinks) this.#cursors.set(s, saved.get(s) ?? 0);
    // AUTOINCREMENT: ids never go back after the table was emptied, so cursors stay meaningful.
    this.#lastId = this.#maxId();
    // Confirmed by every sink but not yet deleted (a crash between commit and delete): delete now.
    this.#release();
    this.#bytes = (this.#stmt.sizeUpTo.get(Number.MAX_SAFE_INTEGER) as { bytes: number }).bytes;
  }

  #maxId(): number {
    const row = this.#db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as
      | { seq: number }
      | undefined;
    return row?.seq ?? 0;
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
    try {
      this.#db.transaction(() => {
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
          this.#lastId = Number(this.#stmt.insert.run(m.topic, m.payload, m.receivedAt).lastInsertRowid);
          this.#bytes += size;
          results.push(this.#lastId);
        }
      })();
    } catch (err) {
      this.#lastId = (
        this.#db.prepare('SELECT coalesce(max(id), 0) AS m FROM messages').get() as { m: number }
      ).m;
      this.#bytes = (this.#stmt.sizeUpTo.get(Number.MAX_SAFE_INTEGER) as { bytes: number }).bytes;
      throw new KapokError('KAPOK_EDGE_SPOOL', `edge spool write failed: ${messageOf(err)}`, { cause: err });
    }
    return results;
  }

  /** Up to `limit` messages after `sink`'s cursor, oldest first. */
  read(sink: string, limit: number): SpooledMessage[] {
    const pos = this.#cursors.get(sink);
    if (pos === undefined) throw new Error(`Spool.read: unknown sink ${sink}`);
    return this.#stmt.read.all(pos, limit) as SpooledMessage[];
  }

  /** The sink confirmed every message up to `id`: move its cursor, delete what all sinks have. */
  confirm(sink: string, id: number): void {
    const pos = this.#cursors.get(sink);
    if (pos === undefined) throw new Error(`Spool.confirm: unknown sink ${sink}`);
    if (id <= pos) return;
    this.#db.transaction(() => {
      this.#stmt.setCursor.run(sink, id);
      this.#cursors.set(sink, id);
      this.#release();
    })();
  }

  #release(): void {
    const min = Math.min(...this.#cursors.values());
    if (min <= 0) return;
    const { bytes } = this.#stmt.sizeUpTo.get(min) as { bytes: number };
    if (bytes === 0) return;
    this.#stmt.deleteUpTo.run(min);
    this.#bytes -= bytes;
  }

  /** Drops the oldest messages until `need` bytes are free; every sink skips them. False if impossible. */
  #dropOldest(need: number): boolean {
    let freed = 0;
    let upTo = 0;
    let n = 0;
    while (freed < need) {
      const rows = this.#stmt.oldest.all() as { id: number; n: number }[];
      if (rows.length === 0) return false;
      let i = 0;
      for (; i < rows.length && freed < need; i++) {
        freed += (rows[i] as { n: number }).n;
        upTo = (rows[i] as { id: number }).id;
        n++;
      }
      this.#stmt.deleteUpTo.run(upTo);
    }
    for (const [sink, pos] of this.#cursors) {
      if (pos < upTo) {
        this.#stmt.setCursor.run(sink, upTo);
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
    const id = Number(this.#stmt.dead.run(at, topic, reason, payload).lastInsertRowid);
    if (id > this.#opts.deadLetterMax) this.#stmt.trimDead.run(id - this.#opts.deadLetterMax);
  }

  deadLetters(
    limit: number,
    afterId = 0,
  ): { id: number; at: number; topic: string; reason: string; payload: Buffer }[] {
    return this.#db
      .prepare('SELECT id, at, topic, reason, payload FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?')
      .all(afterId, limit) as { id: number; at: number; topic: string; reason: string; payload: Buffer }[];
  }

  deleteDeadLetter(id: number): void {
    this.#db.prepare('DELETE FROM dead_letters WHERE id = ?').run(id);
  }

  /** Runs fn in one transaction (group commit of appends and dead letters). */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
