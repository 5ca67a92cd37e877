/**
 * PostgreSQL time-series sink: one narrow row per field value, written with multi-row INSERT ...
 * ON CONFLICT DO NOTHING inside one transaction per batch (a replayed batch does not duplicate).
 * The table is created on the first write (so Kapok starts while PostgreSQL is down) and made a
 * TimescaleDB hypertable when the extension is installed.
 */
import pg from 'pg';
import { KapokError } from '../../core/errors.js';
import { type Point, type TimeSeriesSink, tagKey, type WriteResult } from '../../ports/timeseries.js';
import { isPgConnectionError, pgCode, pgMessage } from './errors.js';
import { describePostgresUrl } from './store.js';

export interface PostgresTimeSeriesOptions {
  /** Names the sink in errors (and, for edge, its spool cursor and metrics). */
  name: string;
  /** postgres://user:password@host:port/database */
  url: string;
  /** Table, created when missing: a lower-case SQL identifier. */
  table: string;
  /** Connections held at most. Default 2. */
  poolMax?: number;
  /** How long to wait for a connection. Default 10000. */
  connectTimeoutMs?: number;
}

/** Rows per INSERT statement (PostgreSQL allows 65,535 parameters; 7 per row). */
const ROWS_PER_STATEMENT = 5000;
const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

export function createPostgresTimeSeries(options: PostgresTimeSeriesOptions): TimeSeriesSink {
  const fail = (option: string, expected: string, got: string): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `postgres time-series option ${option} must be ${expected} (got ${got})`,
      { details: { option } },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', String(options));
  const { name, url, table, poolMax = 2, connectTimeoutMs = 10_000 } = options;
  if (typeof name !== 'string' || name === '') fail('name', 'a non-empty string', JSON.stringify(name));
  let scheme = '';
  try {
    scheme = new URL(url).protocol;
  } catch {
    fail(
      'url',
      'a postgres://user@host:port/database URL',
      typeof url === 'string' ? 'not a URL' : typeof url,
    );
  }
  if (scheme !== 'postgres:' && scheme !== 'postgresql:')
    fail('url', 'a postgres:// URL', `scheme ${scheme}`);
  if (typeof table !== 'string' || !TABLE.test(table))
    fail('table', 'a lower-case SQL identifier', JSON.stringify(table));
  if (!Number.isSafeInteger(poolMax) || poolMax < 1 || poolMax > 1000)
    fail('poolMax', 'an integer from 1 to 1000', String(poolMax));
  if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1)
    fail('connectTimeoutMs', 'an integer >= 1', String(connectTimeoutMs));
  return new PostgresTimeSeries({ name, url, table, poolMax, connectTimeoutMs });
}

/** SQLSTATEs that mean "this data cannot be stored" (not "the server is unwell"): not retried. */
function isBadData(err: unknown): boolean {
  const code = pgCode(err);
  // 22: data exception (NUL in text, bad JSON escape); 54000: a key too large for the index.
  return code.startsWith('22') || code === '54000';
}

class PostgresTimeSeries implements TimeSeriesSink {
  readonly name: string;
  readonly #pool: pg.Pool;
  readonly #table: string;
  readonly #target: string;
  readonly #password: string;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(o: Required<PostgresTimeSeriesOptions>) {
    this.name = o.name;
    this.#table = o.table;
    this.#target = describePostgresUrl(o.url);
    let password = '';
    try {
      password = decodeURIComponent(new URL(o.url).password);
    } catch {}
    this.#password = password;
    this.#pool = new pg.Pool({
      connectionString: o.url,
      max: o.poolMax,
      connectionTimeoutMillis: o.connectTimeoutMs,
    });
    this.#pool.on('error', () => {}); // idle-client errors surface on the next write
  }

  #error(err: unknown): KapokError {
    if (err instanceof KapokError) return err;
    const msg = pgMessage(err, this.#password, []);
    return new KapokError(
      'KAPOK_EDGE_SINK',
      isPgConnectionError(err)
        ? `edge sink ${this.name} (postgres): PostgreSQL at ${this.#target} is not reachable: ${msg}`
        : `edge sink ${this.name} (postgres): ${msg}`,
      { cause: err },
    );
  }

  #checkOpen(): void {
    if (this.#closed) throw new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name} (postgres) is closed`);
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      const t = this.#table;
      await this.#pool.query(`CREATE TABLE IF NOT EXISTS ${t} (
        ts TIMESTAMPTZ NOT NULL, measurement TEXT NOT NULL, device TEXT NOT NULL, field TEXT NOT NULL,
        tags JSONB NOT NULL DEFAULT '{}', value DOUBLE PRECISION, svalue TEXT,
        PRIMARY KEY (measurement, device, field, tags, ts))`);
      const ext = await this.#pool.query("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'");
      if (ext.rowCount)
        await this.#pool.query(
          `SELECT create_hypertable('${t}', 'ts', if_not_exists => TRUE, migrate_data => TRUE)`,
        );
    })().catch((err) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }

  async write(points: readonly Point[]): Promise<WriteResult | undefined> {
    this.#checkOpen();
    if (points.length === 0) return;
    try {
      await this.#init();
      return await this.#insert(points);
    } catch (err) {
      throw this.#error(err);
    }
  }

  /**
   * One transaction for the batch. When PostgreSQL refuses the data itself, the batch is split in
   * halves until the points it refuses are found: those are reported, the rest is stored.
   */
  async #insert(points: readonly Point[]): Promise<WriteResult | undefined> {
    try {
      await this.#transaction(rowsOf(points));
      return;
    } catch (err) {
      if (!isBadData(err)) throw err;
      if (points.length === 1) return { rejected: 1, reason: pgMessage(err, this.#password, []) };
    }
    const half = points.length >>> 1;
    const a = await this.#insert(points.slice(0, half));
    const b = await this.#insert(points.slice(half));
    if (!a) return b;
    if (!b) return a;
    return { rejected: a.rejected + b.rejected, reason: a.reason };
  }

  async #transaction(rows: unknown[][]): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
        const values = chunk.map(
          (_, r) =>
            `($${r * 7 + 1},$${r * 7 + 2},$${r * 7 + 3},$${r * 7 + 4},$${r * 7 + 5}::jsonb,$${r * 7 + 6},$${r * 7 + 7})`,
        );
        await client.query(
          `INSERT INTO ${this.#table} (ts, measurement, device, field, tags, value, svalue) VALUES ${values.join(',')} ON CONFLICT DO NOTHING`,
          chunk.flat(),
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    this.#checkOpen();
    try {
      await this.#pool.query('SELECT 1');
    } catch (err) {
      throw this.#error(err);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

function rowsOf(points: readonly Point[]): unknown[][] {
  const rows: unknown[][] = [];
  for (const p of points) {
    const tags = tagKey(p.tags);
    const ts = new Date(p.ts).toISOString();
    for (const f in p.fields) {
      const v = p.fields[f];
      rows.push([
        ts,
        p.measurement,
        p.device,
        f,
        tags,
        typeof v === 'string' ? null : Number(v),
        typeof v === 'string' ? v : null,
      ]);
    }
  }
  return rows;
}
