/**
 * Edge's spool storage on SQLite: one database in WAL mode with `messages`, per-sink `cursors` and
 * `dead_letters`. Why SQLite rather than segment files: an append, a cursor move and the deletion
 * of confirmed messages are each one atomic transaction, crash recovery is SQLite's, and
 * better-sqlite3 commits synchronously, so "appended" means on disk before the PUBACK goes out.
 *
 * fsync: `normal` = WAL with synchronous=NORMAL: a commit survives a Kapok crash or SIGKILL (it is
 * in the OS page cache) but the last commits may be lost on power loss; `full` = synchronous=FULL:
 * every commit is fsynced, surviving power loss, slower.
 */
import Database from 'better-sqlite3';
import { KapokError, messageOf } from '../../core/errors.js';
import type { DeadLetter, SpooledMessage, SpooledMeta, SpoolStore } from '../../ports/spool.js';

export interface SqliteSpoolOptions {
  file: string;
  fsync?: 'normal' | 'full';
  /** How long a write waits for another process's lock (`kapok edge replay-dead-letters`). Default 5000. */
  busyTimeoutMs?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, received INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, pos INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB NOT NULL);
`;
const SIZE = 'length(payload) + length(CAST(topic AS BLOB))';

export function createSqliteSpoolStore(options: SqliteSpoolOptions): SpoolStore {
  const opts = checkOptions(options);
  let db: Database.Database;
  try {
    db = new Database(opts.file, { timeout: opts.busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.fsync === 'full' ? 'FULL' : 'NORMAL'}`);
    // Statement journals (the multi-row DELETE of confirmed messages) in memory, not temp files.
    db.pragma('temp_store = MEMORY');
    db.exec(SCHEMA);
  } catch (err) {
    throw new KapokError(
      'KAPOK_EDGE_SPOOL',
      `edge spool ${opts.file} cannot be opened (${messageOf(err)}): check that dataDir is writable and not full`,
      { cause: err },
    );
  }
  return new SqliteSpoolStore(db);
}

function checkOptions(o: SqliteSpoolOptions): Required<SqliteSpoolOptions> {
  const fail = (option: string, expected: string, got: unknown): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `sqlite spool option ${option} must be ${expected} (got ${JSON.stringify(got) ?? String(got)})`,
      { details: { option } },
    );
  };
  if (typeof o !== 'object' || o === null) fail('options', 'an object', o);
  const { file, fsync = 'normal', busyTimeoutMs = 5000 } = o;
  if (typeof file !== 'string' || file.trim() === '') fail('file', 'a non-empty path', file);
  if (fsync !== 'normal' && fsync !== 'full') fail('fsync', '"normal" or "full"', fsync);
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0)
    fail('busyTimeoutMs', 'an integer number of milliseconds >= 0', busyTimeoutMs);
  return { file, fsync, busyTimeoutMs };
}

function spoolError(err: unknown): KapokError {
  if (err instanceof KapokError) return err;
  return new KapokError('KAPOK_EDGE_SPOOL', `edge spool write failed: ${messageOf(err)}`, { cause: err });
}

class SqliteSpoolStore implements SpoolStore {
  readonly #db: Database.Database;
  /**
   * One transaction wrapper for every call: db.transaction() builds a new wrapper (and its
   * begin/commit/savepoint bindings) each time, 1.8 % of Kapok's self time under QoS 1 load.
   */
  readonly #tx: (fn: () => unknown) => unknown;
  readonly #s: Record<
    | 'insert'
    | 'read'
    | 'readMeta'
    | 'sizeUpTo'
    | 'oldest'
    | 'deleteUpTo'
    | 'lastId'
    | 'setCursor'
    | 'dead'
    | 'deadList'
    | 'deadDelete'
    | 'deadTrim',
    Database.Statement
  >;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#tx = db.transaction((fn: () => unknown) => fn());
    this.#s = {
      insert: db.prepare('INSERT INTO messages (topic, payload, received) VALUES (?, ?, ?)'),
      read: db.prepare(
        'SELECT id, topic, payload, received AS receivedAt FROM messages WHERE id > ? ORDER BY id LIMIT ?',
      ),
      readMeta: db.prepare(
        'SELECT id, received AS receivedAt FROM messages WHERE id > ? ORDER BY id LIMIT ?',
      ),
      sizeUpTo: db.prepare(
        `SELECT count(*) AS count, coalesce(sum(${SIZE}), 0) AS bytes FROM messages WHERE id <= ?`,
      ),
      oldest: db.prepare(`SELECT id, ${SIZE} AS bytes FROM messages ORDER BY id LIMIT ?`),
      deleteUpTo: db.prepare('DELETE FROM messages WHERE id <= ?'),
      // AUTOINCREMENT: ids never go back after the table was emptied, so cursors stay meaningful.
      lastId: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'"),
      setCursor: db.prepare(
        'INSERT INTO cursors (sink, pos) VALUES (?, ?) ON CONFLICT (sink) DO UPDATE SET pos = excluded.pos',
      ),
      dead: db.prepare('INSERT INTO dead_letters (at, topic, reason, payload) VALUES (?, ?, ?, ?)'),
      deadList: db.prepare(
        'SELECT id, at, topic, reason, payload FROM dead_letters WHERE id > ? ORDER BY id LIMIT ?',
      ),
      deadDelete: db.prepare('DELETE FROM dead_letters WHERE id = ?'),
      deadTrim: db.prepare('DELETE FROM dead_letters WHERE id <= ?'),
    };
  }

  append(topic: string, payload: Buffer, receivedAt: number): number {
    try {
      return Number(this.#s.insert.run(topic, payload, receivedAt).lastInsertRowid);
    } catch (err) {
      throw spoolError(err);
    }
  }

  read(afterId: number, limit: number): SpooledMessage[] {
    try {
      return this.#s.read.all(afterId, limit) as SpooledMessage[];
    } catch (err) {
      throw spoolError(err);
    }
  }

  readMeta(afterId: number, limit: number): SpooledMeta[] {
    try {
      return this.#s.readMeta.all(afterId, limit) as SpooledMeta[];
    } catch (err) {
      throw spoolError(err);
    }
  }

  sizeUpTo(upTo: number): { count: number; bytes: number } {
    try {
      return this.#s.sizeUpTo.get(upTo) as { count: number; bytes: number };
    } catch (err) {
      throw spoolError(err);
    }
  }

  oldest(limit: number): { id: number; bytes: number }[] {
    try {
      return this.#s.oldest.all(limit) as { id: number; bytes: number }[];
    } catch (err) {
      throw spoolError(err);
    }
  }

  deleteUpTo(upTo: number): void {
    try {
      this.#s.deleteUpTo.run(upTo);
    } catch (err) {
      throw spoolError(err);
    }
  }

  lastId(): number {
    try {
      return (this.#s.lastId.get() as { seq: number } | undefined)?.seq ?? 0;
    } catch (err) {
      throw spoolError(err);
    }
  }

  cursors(): Map<string, number> {
    try {
      const rows = this.#db.prepare('SELECT sink, pos FROM cursors').all() as { sink: string; pos: number }[];
      return new Map(rows.map((r) => [r.sink, r.pos]));
    } catch (err) {
      throw spoolError(err);
    }
  }

  setCursor(name: string, pos: number): void {
    try {
      this.#s.setCursor.run(name, pos);
    } catch (err) {
      throw spoolError(err);
    }
  }

  addDeadLetter(topic: string, payload: Buffer, reason: string, at: number): number {
    try {
      return Number(this.#s.dead.run(at, topic, reason, payload).lastInsertRowid);
    } catch (err) {
      throw spoolError(err);
    }
  }

  deadLetters(limit: number, afterId: number): DeadLetter[] {
    try {
      return this.#s.deadList.all(afterId, limit) as DeadLetter[];
    } catch (err) {
      throw spoolError(err);
    }
  }

  deleteDeadLetter(id: number): void {
    try {
      this.#s.deadDelete.run(id);
    } catch (err) {
      throw spoolError(err);
    }
  }

  trimDeadLetters(upTo: number): void {
    try {
      this.#s.deadTrim.run(upTo);
    } catch (err) {
      throw spoolError(err);
    }
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.#tx(fn) as T;
    } catch (err) {
      // Only SQLite's own failures are the spool's; an error of fn passes through as it is.
      throw err instanceof Database.SqliteError || !this.#db.open ? spoolError(err) : err;
    }
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
