/**
 * The embedded SQL store on better-sqlite3 (the default backend). One connection per store, WAL
 * journal (readers never block the writer), foreign keys on, a busy timeout so the `kapok` CLI and a
 * running server can share the file.
 *
 * better-sqlite3 is synchronous: a statement runs to completion before any other JavaScript does. A
 * transaction, though, spans awaits, so every statement outside it waits on a FIFO lock until it ends
 * (no interleaving into an open transaction). Transactions start with BEGIN IMMEDIATE: the write lock
 * is taken up front, where the busy timeout applies, never half-way through.
 *
 * Checkpoints: SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past
 * autocheckpointPages (1,000 by default, as SQLite's), copying them into the database file and
 * fsyncing it on the committing thread: with usage records that blocked the event loop 8–41 ms
 * every ~19,000 rows. With checkpointIntervalMs a file store instead turns
 * wal_autocheckpoint off once a worker thread (sqlite-checkpoint-worker.ts) is up that checkpoints
 * from a second connection on a timer. Durability is unchanged: a commit is durable once it is in
 * the WAL (synchronous as before), whoever copies it on; close() stops the worker first, so the
 * main connection's close is the last one and checkpoints and removes the WAL as before. If the
 * worker fails or exits, automatic checkpoints come back on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { KapokError, messageOf } from '../../core/errors.js';
import { startWorker } from '../../core/worker.js';
import {
  checkMigrations,
  checkParams,
  MIGRATIONS_TABLE,
  type Migration,
  migrationSql,
  type Queryable,
  type QueryOptions,
  type SqlValue,
  type Store,
  sqlExcerpt,
  toSafeInteger,
} from '../../ports/store.js';
import type { CheckpointMessage, CheckpointWorkerData } from './sqlite-checkpoint-worker.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:'. Its directory must exist. */
  file: string;
  /** How long a statement waits for another connection's write lock before failing. Default 5000. */
  busyTimeoutMs?: number;
  /** Prepared statements kept (least recently used dropped first). Default 256. */
  statementCacheSize?: number;
  /**
   * Milliseconds between WAL checkpoints run by a worker thread (file stores only; 250 is a good
   * value), or 0 (the default) for SQLite's automatic checkpoint on the committing thread. Opt-in:
   * on a busy 2-core machine the worker's checkpoint I/O slowed the main thread's own commit fsyncs
   * more than the stalls it removed (bench/sqlite-wal.ts, see docs/configuration.md).
   */
  checkpointIntervalMs?: number;
  /**
   * SQLite's wal_autocheckpoint: WAL pages past which a COMMIT checkpoints when no worker does.
   * Default 1000, SQLite's own. A checkpoint's cost grows with its pages (~7 µs a page measured), so
   * a larger value trades the share of commits that stall for longer stalls at about the same total
   * (jobs pick-next, 3,000 claims: 22 checkpoints of ~7 ms at 1000, 6 of ~28 ms at 4000).
   */
  autocheckpointPages?: number;
  /** Called on each checkpoint that found frames in the WAL (tests and benchmarks watch it). */
  onCheckpoint?: (c: {
    mode: 'PASSIVE' | 'RESTART';
    busy: boolean;
    log: number;
    checkpointed: number;
  }) => void;
}

/** WAL frames (pages) past which the worker's checkpoint holds off writers (RESTART): ~16 MB. */
const RESTART_PAGES = 4000;

interface TxState {
  active: boolean;
}

type Row = Record<string, unknown>;

export async function createSqliteStore(options: SqliteStoreOptions): Promise<Store> {
  const opts = checkOptions(options);
  let db: Database.Database | undefined;
  try {
    db = new Database(opts.file, { timeout: opts.busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    if (!isMemory(opts.file)) db.pragma(`wal_autocheckpoint = ${opts.autocheckpointPages}`);
  } catch (err) {
    db?.close();
    throw new KapokError(
      'KAPOK_STORE_UNAVAILABLE',
      `SQLite database file ${JSON.stringify(opts.file)} cannot be opened: ${messageOf(err)}. ` +
        'Check that its directory exists and is writable, and that the file is a SQLite database.',
      { cause: err, details: { file: opts.file } },
    );
  }
  const store = new SqliteStore(db, opts);
  if (opts.checkpointIntervalMs > 0 && !isMemory(opts.file)) store.startCheckpointer();
  return store;
}

const isMemory = (file: string) => file === ':memory:' || file.startsWith('file::memory:');

type Opts = Required<Omit<SqliteStoreOptions, 'onCheckpoint'>> & Pick<SqliteStoreOptions, 'onCheckpoint'>;

function checkOptions(options: SqliteStoreOptions): Opts {
  const fail = (option: string, expected: string, got: unknown): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `sqlite store option ${option} must be ${expected} (got ${JSON.stringify(got) ?? String(got)})`,
      { details: { option } },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  const {
    file,
    busyTimeoutMs = 5000,
    statementCacheSize = 256,
    checkpointIntervalMs = 0,
    autocheckpointPages = 1000,
    onCheckpoint,
  } = options;
  if (typeof file !== 'string' || file.trim() === '') fail('file', 'a non-empty path or ":memory:"', file);
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    fail('busyTimeoutMs', 'an integer number of milliseconds >= 0', busyTimeoutMs);
  }
  if (!Number.isSafeInteger(statementCacheSize) || statementCacheSize < 1) {
    fail('statementCacheSize', 'an integer >= 1', statementCacheSize);
  }
  if (!Number.isSafeInteger(checkpointIntervalMs) || checkpointIntervalMs < 0) {
    fail('checkpointIntervalMs', 'an integer number of milliseconds >= 0', checkpointIntervalMs);
  }
  if (!Number.isSafeInteger(autocheckpointPages) || autocheckpointPages < 1) {
    fail('autocheckpointPages', 'an integer number of pages >= 1', autocheckpointPages);
  }
  if (onCheckpoint !== undefined && typeof onCheckpoint !== 'function') {
    fail('onCheckpoint', 'a function', onCheckpoint);
  }
  return { file, busyTimeoutMs, statementCacheSize, checkpointIntervalMs, autocheckpointPages, onCheckpoint };
}

class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #opts: Opts;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #txScope = new AsyncLocalStorage<TxState>();
  /** The lock: held by a transaction (or close); waiters are resumed one at a time, in order. */
  #held = false;
  readonly #waiters: Array<() => void> = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  #checkpointer: Worker | undefined;

  constructor(db: Database.Database, opts: Opts) {
    this.#db = db;
    this.#opts = opts;
  }

  /** Starts the checkpoint worker; automatic checkpoints stay on until it says it is ready. */
  startCheckpointer(): void {
    const w = startWorker(import.meta.url, 'sqlite-checkpoint-worker', {
      // It allocates next to nothing in JavaScript: small heaps keep its isolate at ~9 MB of RSS.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, stackSizeMb: 1 },
      workerData: {
        file: this.#opts.file,
        intervalMs: this.#opts.checkpointIntervalMs,
        busyTimeoutMs: this.#opts.busyTimeoutMs,
        restartPages: RESTART_PAGES,
      } satisfies CheckpointWorkerData,
    });
    w.unref();
    const gone = () => {
      if (this.#checkpointer !== w) return;
      this.#checkpointer = undefined;
      if (!this.#closed) this.#setAutocheckpoint(this.#opts.autocheckpointPages);
    };
    w.on('message', (m: CheckpointMessage) => {
      if (m.type === 'ready') {
        if (this.#checkpointer === w) this.#setAutocheckpoint(0);
      } else {
        this.#opts.onCheckpoint?.({ mode: m.mode, busy: m.busy, log: m.log, checkpointed: m.checkpointed });
      }
    });
    w.on('error', gone);
    w.on('exit', gone);
    this.#checkpointer = w;
  }

  #setAutocheckpoint(pages: number): void {
    try {
      this.#db.pragma(`wal_autocheckpoint = ${pages}`);
    } catch {
      // The connection is closing or closed: nothing to checkpoint on it any more.
    }
  }

  /** Stops the checkpoint worker and waits until its connection is closed. */
  #stopCheckpointer(): Promise<void> {
    const w = this.#checkpointer;
    this.#checkpointer = undefined;
    if (!w) return Promise.resolve();
    return new Promise<void>((resolve) => {
      w.ref(); // else a process with nothing else to do exits before close() resolves
      w.once('exit', () => resolve());
      w.postMessage('stop');
    });
  }

  query<T = Row>(sql: string, params?: readonly SqlValue[], options?: QueryOptions): Promise<T[]> {
    return this.#outside(() => this.#all(sql, params, options?.smallIntegers === true) as T[]);
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<{ rowCount: number }> {
    return this.#outside(() => this.#run(sql, params));
  }

  ping(): Promise<void> {
    return this.#outside(() => {
      this.#all('SELECT 1', []);
    });
  }

  migrate(migrations: readonly Migration[]): Promise<string[]> {
    return this.#outside(() => {
      checkMigrations(migrations, 'sqlite');
      this.#guard(() =>
        this.#db.exec(
          `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id TEXT PRIMARY KEY, ` +
            `applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`,
        ),
      );
      const isApplied = (id: string) =>
        this.#all(`SELECT 1 AS x FROM ${MIGRATIONS_TABLE} WHERE id = ?`, [id]).length > 0;
      const applied: string[] = [];
      for (const m of migrations) {
        if (isApplied(m.id)) continue;
        this.#guard(() => this.#db.exec('BEGIN IMMEDIATE'));
        try {
          // Checked again under the write lock: another process may have applied it meanwhile.
          if (!isApplied(m.id)) {
            this.#db.exec(migrationSql(m, 'sqlite'));
            this.#run(`INSERT INTO ${MIGRATIONS_TABLE} (id) VALUES (?)`, [m.id]);
            applied.push(m.id);
          }
          this.#db.exec('COMMIT');
        } catch (err) {
          this.#rollback();
          throw new KapokError(
            'KAPOK_STORE_MIGRATION',
            `migration ${m.id} failed and was rolled back: ${messageOf(err)}. ` +
              `${applied.length} migration(s) before it stay applied; fix it and start again.`,
            { cause: err, details: { id: m.id, applied } },
          );
        }
      }
      return applied;
    });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#checkUsable();
    await this.#acquire();
    const state: TxState = { active: true };
    try {
      this.#guard(() => this.#db.exec('BEGIN IMMEDIATE'));
      const tx: Queryable = {
        query: <R = Row>(sql: string, params?: readonly SqlValue[], options?: QueryOptions) =>
          this.#inTx(state, () => this.#all(sql, params, options?.smallIntegers === true) as R[]),
        execute: (sql: string, params?: readonly SqlValue[]) =>
          this.#inTx(state, () => this.#run(sql, params)),
      };
      let result: T;
      try {
        result = await this.#txScope.run(state, () => fn(tx));
      } catch (err) {
        state.active = false;
        this.#rollback();
        throw err;
      }
      state.active = false;
      if (!this.#db.inTransaction) {
        throw new KapokError(
          'KAPOK_STORE_QUERY',
          'the transaction was ended inside its callback (a statement failed so badly that SQLite rolled ' +
            'it back, or the callback ran COMMIT/ROLLBACK itself); nothing was committed',
        );
      }
      try {
        this.#db.exec('COMMIT');
      } catch (err) {
        this.#rollback();
        throw this.#mapError(err, 'COMMIT');
      }
      return result;
    } finally {
      state.active = false;
      // On Node 20 an AsyncLocalStorage holding a store runs promise hooks on every promise of the
      // process, for good: once any transaction had run (audit, gm), the gateway served 21% fewer
      // requests/s. One transaction at a time holds the lock here, so none is open now: switch the
      // hooks off until the next one (run() switches them on again).
      this.#txScope.disable();
      this.#release();
    }
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      // Statements and transactions already queued run first (the lock is FIFO).
      this.#closing = this.#acquire().then(async () => {
        await this.#stopCheckpointer();
        try {
          this.#statements.clear();
          this.#db.close();
        } finally {
          this.#release();
        }
      });
    }
    return this.#closing;
  }

  /** Runs work for a statement issued on the store itself: now if no transaction is open, else after it. */
  #outside<T>(work: () => T): Promise<T> {
    try {
      this.#checkUsable();
      if (!this.#held) return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#acquire().then(() => {
      try {
        return work();
      } finally {
        this.#release();
      }
    });
  }

  #inTx<T>(state: TxState, work: () => T): Promise<T> {
    if (!state.active) {
      return Promise.reject(
        new KapokError(
          'KAPOK_STORE_CLOSED',
          'a transaction handle was used after its transaction ended: use tx only inside the callback',
        ),
      );
    }
    try {
      return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #checkUsable(): void {
    if (this.#closed) {
      throw new KapokError('KAPOK_STORE_CLOSED', 'the SQLite store was used after close(): open a new one');
    }
    if (this.#txScope.getStore()?.active) {
      throw new KapokError(
        'KAPOK_STORE_QUERY',
        'the store was called from inside its own transaction callback: use the tx argument instead ' +
          '(on SQLite the call would wait for the transaction it is part of)',
      );
    }
  }

  #acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#held = false;
  }

  #rollback(): void {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // SQLite already rolled back (some errors end the transaction themselves).
    }
  }

  /** A cached statement; `small`: integers read as plain numbers (QueryOptions.smallIntegers). */
  #prepare(sql: string, small = false): Database.Statement {
    // A statement's integer mode is per statement object: the small-integer one is cached apart.
    const key = small ? `\u0000${sql}` : sql;
    const cached = this.#statements.get(key);
    if (cached) {
      this.#statements.delete(key);
      this.#statements.set(key, cached);
      return cached;
    }
    const stmt = this.#db.prepare(sql);
    if (stmt.reader) stmt.safeIntegers(!small);
    this.#statements.set(key, stmt);
    if (this.#statements.size > this.#opts.statementCacheSize) {
      const oldest = this.#statements.keys().next().value;
      if (oldest !== undefined) this.#statements.delete(oldest);
    }
    return stmt;
  }

  #all(sql: string, params: readonly SqlValue[] | undefined, small = false): Row[] {
    const values = toSqlite(checkParams(params));
    try {
      const stmt = this.#prepare(sql, small);
      if (!stmt.reader) {
        stmt.run(...values);
        return [];
      }
      const rows = stmt.all(...values) as Row[];
      if (small) return rows;
      for (const row of rows) {
        for (const k in row) {
          const v = row[k];
          if (typeof v === 'bigint') row[k] = toSafeInteger(v);
        }
      }
      return rows;
    } catch (err) {
      throw this.#mapError(err, sql);
    }
  }

  #run(sql: string, params: readonly SqlValue[] | undefined): { rowCount: number } {
    const values = toSqlite(checkParams(params));
    try {
      const stmt = this.#prepare(sql);
      if (stmt.reader) return { rowCount: stmt.all(...values).length };
      return { rowCount: stmt.run(...values).changes };
    } catch (err) {
      throw this.#mapError(err, sql);
    }
  }

  #guard<T>(work: () => T): T {
    try {
      return work();
    } catch (err) {
      throw this.#mapError(err, '');
    }
  }

  #mapError(err: unknown, sql: string): KapokError {
    if (err instanceof KapokError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const msg = messageOf(err);
    const file = JSON.stringify(this.#opts.file);
    if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
      return new KapokError(
        'KAPOK_STORE_CONFLICT',
        `${msg}: the write conflicts with existing data; use another value or update the existing row`,
        { cause: err, details: { constraint: constraintKind(code) } },
      );
    }
    if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code)) {
      return new KapokError(
        'KAPOK_STORE_UNAVAILABLE',
        `SQLite database ${file} stayed locked by another connection for longer than the busy timeout ` +
          `(${this.#opts.busyTimeoutMs} ms): retry, or raise busyTimeoutMs`,
        { cause: err },
      );
    }
    if (
      typeof code === 'string' &&
      /^SQLITE_(CANTOPEN|IOERR|FULL|READONLY|CORRUPT|NOTADB|PERM|NOMEM)/.test(code)
    ) {
      return new KapokError(
        'KAPOK_STORE_UNAVAILABLE',
        `SQLite database ${file} cannot be used: ${msg} (${code}). Check the file, its permissions and free disk space.`,
        { cause: err },
      );
    }
    const statement = sql ? ` (statement: ${sqlExcerpt(sql)})` : '';
    return new KapokError(
      'KAPOK_STORE_QUERY',
      `SQL statement failed: ${msg}${statement}. Fix the statement.`,
      {
        cause: err,
      },
    );
  }
}

function constraintKind(code: string): string {
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique';
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key';
  if (code === 'SQLITE_CONSTRAINT_NOTNULL') return 'not_null';
  if (code === 'SQLITE_CONSTRAINT_CHECK') return 'check';
  return 'other';
}

/** SQLite has no boolean type: true/false are stored as 1/0. Other SqlValues bind as they are. */
function toSqlite(params: readonly SqlValue[]): unknown[] {
  const out: unknown[] = new Array(params.length);
  for (let i = 0; i < params.length; i++) {
    const v = params[i];
    out[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return out;
}
