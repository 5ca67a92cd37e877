/**
 * The PostgreSQL store on a `pg.Pool`. SQL arrives with `?` placeholders and is rewritten to `$1..$n`
 * (quoted strings, identifiers, dollar quotes and comments are skipped). Statements always use the
 * extended protocol, so one call is one statement on both dialects; migrations use the simple
 * protocol and may hold several. BIGINT values come back as numbers while they are safe integers.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { KapokError, messageOf } from '../../core/errors.js';
import {
  checkMigrations,
  checkParams,
  MIGRATIONS_TABLE,
  type Migration,
  migrationSql,
  type Queryable,
  type SqlValue,
  type Store,
  sqlExcerpt,
  toSafeInteger,
} from '../../ports/store.js';
import { mapPgError, type PgErrorContext } from './errors.js';
import { toPostgresPlaceholders } from './placeholders.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database?options=... */
  url: string;
  /** Most connections held at once. Default 10. */
  poolMax?: number;
  /** How long to wait for a connection (new or from the pool). Default 5000. */
  connectTimeoutMs?: number;
  /** Server-side limit per statement; 0 disables it. Default 30000. */
  statementTimeoutMs?: number;
  /** Shown in pg_stat_activity. Default 'kapok'. */
  applicationName?: string;
  /** Errors of idle connections (server restart, network cut); the pool replaces them. Default: ignored. */
  onError?: (err: KapokError) => void;
}

/** Class id of the advisory lock that serializes migrations; the second key is the schema. */
const MIGRATION_LOCK_CLASS = 0x6b61706b; // 'kapk'
const PG_INT8_OID = 20;

interface TxState {
  active: boolean;
}

type Row = Record<string, unknown>;
type Client = pg.Pool | pg.PoolClient;

export async function createPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const opts = checkOptions(options);
  const target = describePostgresUrl(opts.url);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    statement_timeout: opts.statementTimeoutMs === 0 ? undefined : opts.statementTimeoutMs,
    application_name: opts.applicationName,
    keepAlive: true,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID && format !== 'binary'
          ? parseInt8
          : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
    },
  });
  const store = new PostgresStore(pool, opts, target);
  pool.on('error', (err) => {
    try {
      opts.onError?.(store.mapError(err, '', []));
    } catch {
      // A throwing callback must not turn a recoverable pool error into a crash.
    }
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw store.mapError(err, '', []);
  }
  return store;
}

function parseInt8(text: string): number | bigint {
  // Up to 15 digits always fits a double exactly.
  return text.length < 16 ? Number(text) : toSafeInteger(BigInt(text));
}

function checkOptions(
  options: PostgresStoreOptions,
): Required<Omit<PostgresStoreOptions, 'onError'>> & Pick<PostgresStoreOptions, 'onError'> {
  const fail = (option: string, expected: string, got: string): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `postgres store option ${option} must be ${expected} (got ${got})`,
      {
        details: { option },
      },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', String(options));
  const {
    url,
    poolMax = 10,
    connectTimeoutMs = 5000,
    statementTimeoutMs = 30000,
    applicationName = 'kapok',
    onError,
  } = options;
  if (typeof url !== 'string' || url.trim() === '') {
    fail('url', 'a postgres://user@host:port/database URL', url === '' ? 'an empty string' : typeof url);
  }
  let scheme = '';
  try {
    scheme = new URL(url).protocol;
  } catch {
    fail('url', 'a postgres://user@host:port/database URL', 'a string that is not a URL');
  }
  if (scheme !== 'postgres:' && scheme !== 'postgresql:') {
    fail('url', 'a postgres:// or postgresql:// URL', `scheme ${scheme}`);
  }
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isSafeInteger(v) || v < min || v > max)
      fail(name, `an integer from ${min} to ${max}`, String(v));
  };
  int('poolMax', poolMax, 1, 10_000);
  int('connectTimeoutMs', connectTimeoutMs, 1, 3_600_000);
  int('statementTimeoutMs', statementTimeoutMs, 0, 2_147_483_647);
  if (typeof applicationName !== 'string' || applicationName.length > 63) {
    fail('applicationName', 'a string of at most 63 characters', JSON.stringify(applicationName));
  }
  if (onError !== undefined && typeof onError !== 'function') fail('onError', 'a function', typeof onError);
  return { url, poolMax, connectTimeoutMs, statementTimeoutMs, applicationName, onError };
}

/** host:port/database of a postgres URL, for messages: never the user's password. */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = decodeURIComponent(u.hostname) || u.searchParams.get('host') || 'localhost';
    const db =
      decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
    return `${host}:${u.port || '5432'}/${db}`;
  } catch {
    return '(unparsable URL)';
  }
}

class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #errors: PgErrorContext;
  readonly #txScope = new AsyncLocalStorage<TxState>();
  /** Transactions whose callback is running (the scope is disabled when none is). */
  #openTx = 0;
  readonly #rewrites = new Map<string, { text: string; count: number }>();
  #closing: Promise<void> | undefined;

  constructor(pool: pg.Pool, opts: ReturnType<typeof checkOptions>, target: string) {
    this.#pool = pool;
    let password = '';
    try {
      password = decodeURIComponent(new URL(opts.url).password);
    } catch {}
    this.#errors = { target, password, statementTimeoutMs: opts.statementTimeoutMs };
  }

  async query<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    this.#checkUsable();
    return (await this.#statement(this.#pool, sql, params)).rows as T[];
  }

  async execute(sql: string, params?: readonly SqlValue[]): Promise<{ rowCount: number }> {
    this.#checkUsable();
    return { rowCount: (await this.#statement(this.#pool, sql, params)).rowCount ?? 0 };
  }

  async ping(): Promise<void> {
    this.#checkUsable();
    await this.#statement(this.#pool, 'SELECT 1', []);
  }

  async migrate(migrations: readonly Migration[]): Promise<string[]> {
    this.#checkUsable();
    checkMigrations(migrations, 'postgres');
    const lock = `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, hashtext(coalesce(current_schema(), '')))`;
    await this.#inTransaction(async (client) => {
      await this.#statement(client, lock, []);
      await this.#statement(
        client,
        `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
        [],
      );
    });
    const exists = `SELECT 1 AS x FROM ${MIGRATIONS_TABLE} WHERE id = ?`;
    const known = new Set(
      (await this.#statement(this.#pool, `SELECT id FROM ${MIGRATIONS_TABLE}`, [])).rows.map((r) =>
        String(r.id),
      ),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (known.has(m.id)) continue;
      try {
        const done = await this.#inTransaction(async (client) => {
          await this.#statement(client, lock, []);
          // Checked again under the lock: another process may have applied it meanwhile.
          if ((await this.#statement(client, exists, [m.id])).rows.length > 0) return false;
          try {
            await client.query(migrationSql(m, 'postgres')); // simple protocol: several statements allowed
          } catch (err) {
            throw this.mapError(err, '', []);
          }
          await this.#statement(client, `INSERT INTO ${MIGRATIONS_TABLE} (id) VALUES (?)`, [m.id]);
          return true;
        });
        if (done) applied.push(m.id);
      } catch (err) {
        if (err instanceof KapokError && err.code === 'KAPOK_STORE_UNAVAILABLE') throw err;
        throw new KapokError(
          'KAPOK_STORE_MIGRATION',
          `migration ${m.id} failed and was rolled back: ${messageOf(err)} ` +
            `${applied.length} migration(s) before it stay applied; fix it and start again.`,
          { cause: err, details: { id: m.id, applied: [...applied] } },
        );
      }
    }
    return applied;
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#checkUsable();
    return this.#inTransaction(async (client) => {
      const state: TxState = { active: true };
      const inTx = async <R>(work: () => Promise<R>): Promise<R> => {
        if (!state.active) {
          throw new KapokError(
            'KAPOK_STORE_CLOSED',
            'a transaction handle was used after its transaction ended: use tx only inside the callback',
          );
        }
        return work();
      };
      const tx: Queryable = {
        query: <R = Row>(sql: string, params?: readonly SqlValue[]) =>
          inTx(async () => (await this.#statement(client, sql, params)).rows as R[]),
        execute: (sql: string, params?: readonly SqlValue[]) =>
          inTx(async () => ({ rowCount: (await this.#statement(client, sql, params)).rowCount ?? 0 })),
      };
      this.#openTx++;
      try {
        return await this.#txScope.run(state, () => fn(tx));
      } finally {
        state.active = false;
        // Promise hooks only while a transaction is open (see the SQLite store: on Node 20 they
        // cost every promise of the process about a fifth of the gateway's throughput).
        if (--this.#openTx === 0) this.#txScope.disable();
      }
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }

  /** BEGIN, work, COMMIT on one connection; ROLLBACK and rethrow what work threw. */
  #inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withClient(async (client, broke) => {
      await this.#statement(client, 'BEGIN', []);
      let result: T;
      try {
        result = await work(client);
      } catch (err) {
        // A connection whose ROLLBACK failed may still be inside the transaction: never reuse it.
        await client.query('ROLLBACK').catch(broke);
        throw err;
      }
      const commit = await this.#statement(client, 'COMMIT', []);
      if (commit.command === 'ROLLBACK') {
        throw new KapokError(
          'KAPOK_STORE_QUERY',
          'a statement failed inside the transaction and PostgreSQL rolled the whole transaction back; ' +
            'nothing was committed. Let errors inside transaction() propagate instead of catching them.',
        );
      }
      return result;
    });
  }

  /** Checks a connection out for a unit of work; a connection that broke is destroyed, not reused. */
  async #withClient<T>(
    work: (client: pg.PoolClient, broke: (err: unknown) => void) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw this.mapError(err, '', []);
    }
    let broken: Error | undefined;
    const broke = (err: unknown) => {
      broken ??= err instanceof Error ? err : new Error(messageOf(err));
    };
    // pg-pool listens for errors only on idle clients: without this, a connection dropping while
    // checked out would be an unhandled 'error' event.
    client.on('error', broke);
    try {
      return await work(client, broke);
    } catch (err) {
      if (err instanceof KapokError && err.code === 'KAPOK_STORE_UNAVAILABLE') broke(err);
      throw err;
    } finally {
      client.off('error', broke);
      client.release(broken);
    }
  }

  async #statement(
    client: Client,
    sql: string,
    params: readonly SqlValue[] | undefined,
  ): Promise<pg.QueryResult> {
    const values = toPostgres(checkParams(params));
    const { text, count } = this.#rewrite(sql);
    if (count !== values.length) {
      throw new KapokError(
        'KAPOK_STORE_QUERY',
        `the statement has ${count} ? placeholder(s) but ${values.length} parameter(s) were given: ${sqlExcerpt(sql)}`,
      );
    }
    try {
      // queryMode is a pg option missing from @types/pg: the extended protocol even without parameters.
      return await client.query({ text, values, queryMode: 'extended' } as pg.QueryConfig);
    } catch (err) {
      throw this.mapError(err, sql, values);
    }
  }

  #rewrite(sql: string): { text: string; count: number } {
    let r = this.#rewrites.get(sql);
    if (!r) {
      r = toPostgresPlaceholders(sql);
      if (this.#rewrites.size >= 256) this.#rewrites.clear();
      this.#rewrites.set(sql, r);
    }
    return r;
  }

  #checkUsable(): void {
    if (this.#closing) {
      throw new KapokError(
        'KAPOK_STORE_CLOSED',
        'the PostgreSQL store was used after close(): open a new one',
      );
    }
    if (this.#txScope.getStore()?.active) {
      throw new KapokError(
        'KAPOK_STORE_QUERY',
        'the store was called from inside its own transaction callback: use the tx argument instead',
      );
    }
  }

  mapError(err: unknown, sql: string, values: readonly unknown[]): KapokError {
    return mapPgError(err, this.#errors, sql, values);
  }
}

function toPostgres(params: readonly SqlValue[]): unknown[] {
  const out: unknown[] = new Array(params.length);
  for (let i = 0; i < params.length; i++) {
    const v = params[i];
    if (typeof v === 'bigint') out[i] = v.toString();
    else if (v instanceof Uint8Array && !Buffer.isBuffer(v))
      out[i] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    else out[i] = v;
  }
  return out;
}
