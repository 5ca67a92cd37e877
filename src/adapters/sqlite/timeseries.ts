/**
 * The embedded time-series sink: SQLite in dataDir. Narrow rows keyed by (series, ts) in a
 * WITHOUT ROWID table, so a replayed point replaces itself instead of duplicating, and a range
 * query for one series is one contiguous B-tree scan. Series (measurement, device, field, tags) are
 * interned in `series`; `devices` keeps each device's last-seen time and latest values.
 * Chosen over DuckDB: measured, see docs/edge.md, and no binary download.
 */
import Database from 'better-sqlite3';
import { KapokError, messageOf } from '../../core/errors.js';
import { type Point, type TimeSeriesSink, tagKey } from '../../ports/timeseries.js';
import { SqliteTimeSeriesQuery } from './timeseries-query.js';

export const EMBEDDED_SCHEMA = `
  CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, device TEXT NOT NULL, field TEXT NOT NULL,
    tags TEXT NOT NULL, type TEXT NOT NULL, UNIQUE (measurement, device, field, tags));
  CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, svalue TEXT,
    PRIMARY KEY (series, ts)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS devices (
    device TEXT NOT NULL, measurement TEXT NOT NULL, last_seen INTEGER NOT NULL, latest TEXT NOT NULL,
    PRIMARY KEY (device, measurement)) WITHOUT ROWID;
`;

export interface SqliteTimeSeriesOptions {
  /** Names the sink in errors (and, for edge, its spool cursor and metrics). */
  name: string;
  /** SQLite file (created when missing). */
  file: string;
}

/** Series ids kept in memory at most; past it the cache is cleared (ids are re-read from SQLite). */
const SERIES_CACHE_MAX = 500_000;
/** Rows per multi-row INSERT (4 parameters each, under SQLite's 32,766 limit). */
const ROWS_PER_INSERT = 128;

export function createSqliteTimeSeries(options: SqliteTimeSeriesOptions): TimeSeriesSink {
  const fail = (option: string, expected: string, got: unknown): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `sqlite time-series option ${option} must be ${expected} (got ${JSON.stringify(got) ?? String(got)})`,
      { details: { option } },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  if (typeof options.name !== 'string' || options.name === '')
    fail('name', 'a non-empty string', options.name);
  if (typeof options.file !== 'string' || options.file.trim() === '')
    fail('file', 'a non-empty path', options.file);
  return new SqliteTimeSeries(options.name, options.file);
}

class SqliteTimeSeries implements TimeSeriesSink {
  readonly name: string;
  readonly query: SqliteTimeSeriesQuery;
  readonly #db: Database.Database;
  /** Series ids by measurement, device and tags (arrival order), then by field. */
  readonly #series = new Map<string, Map<string, number>>();
  #seriesCount = 0;
  /** One batch's rows, column by column, before they are put in key order. */
  readonly #batch = {
    series: [] as number[],
    ts: [] as number[],
    value: [] as (number | null)[],
    svalue: [] as (string | null)[],
  };
  readonly #insert: Database.Statement;
  /** One statement for ROWS_PER_INSERT rows: binding once per row costs more than the B-tree insert. */
  readonly #insertMany: Database.Statement;
  readonly #rows: (number | string | null)[] = new Array(ROWS_PER_INSERT * 4);
  readonly #findSeries: Database.Statement;
  readonly #addSeries: Database.Statement;
  readonly #device: Database.Statement;
  readonly #ping: Database.Statement;
  readonly #writeTx: (points: readonly Point[]) => void;

  constructor(name: string, file: string) {
    this.name = name;
    try {
      this.#db = new Database(file);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('cache_size = -65536');
      // The multi-row INSERT's statement journal spilled to a temp file: ~9,700 pwrite calls per
      // 5,000-point batch (strace), more system than user CPU. In memory it is a few pages per statement.
      this.#db.pragma('temp_store = MEMORY');
      this.#db.exec(EMBEDDED_SCHEMA);
    } catch (err) {
      throw new KapokError(
        'KAPOK_EDGE_SINK',
        `edge sink ${name}: ${file} cannot be opened (${messageOf(err)}): check dataDir`,
        { cause: err },
      );
    }
    const db = this.#db;
    this.#insert = db.prepare(
      'INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES (?, ?, ?, ?)',
    );
    this.#insertMany = db.prepare(
      `INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?)').join(', ')}`,
    );
    this.#findSeries = db.prepare(
      'SELECT id FROM series WHERE measurement = ? AND device = ? AND field = ? AND tags = ?',
    );
    this.#addSeries = db.prepare(
      'INSERT INTO series (measurement, device, field, tags, type) VALUES (?, ?, ?, ?, ?)',
    );
    this.#device = db.prepare(
      `INSERT INTO devices (device, measurement, last_seen, latest) VALUES (?, ?, ?, ?)
       ON CONFLICT (device, measurement) DO UPDATE SET last_seen = excluded.last_seen, latest = excluded.latest
       WHERE excluded.last_seen >= devices.last_seen`,
    );
    this.#ping = db.prepare('SELECT 1');
    this.#writeTx = db.transaction((points: readonly Point[]) => this.#write(points));
    this.query = new SqliteTimeSeriesQuery(db, (err) => this.#error('query', err));
  }

  #error(what: string, err: unknown): KapokError {
    if (err instanceof KapokError) return err;
    return new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name}: ${what} failed: ${messageOf(err)}`, {
      cause: err,
    });
  }

  async write(points: readonly Point[]): Promise<undefined> {
    if (points.length === 0) return;
    try {
      this.#writeTx(points);
    } catch (err) {
      throw this.#error('write', err);
    }
  }

  #write(points: readonly Point[]): void {
    // Each device's latest point per measurement: nested maps, no key string built per point.
    const latest = new Map<string, Map<string, Point>>();
    const { series, ts, value, svalue } = this.#batch;
    let n = 0;
    for (const p of points) {
      // Cache key from the tags in arrival order (cheap); the canonical key only on a cache miss.
      let raw = `${p.measurement}\u0000${p.device}\u0000`;
      for (const k in p.tags) raw += `${k}\u0001${p.tags[k]}\u0002`;
      let fields = this.#series.get(raw);
      if (fields === undefined) {
        if (this.#seriesCount >= SERIES_CACHE_MAX) this.#clearSeriesCache();
        fields = new Map();
        this.#series.set(raw, fields);
      }
      for (const field in p.fields) {
        const v = p.fields[field] as number | boolean | string;
        series[n] = fields.get(field) ?? this.#seriesId(fields, p, field, v);
        ts[n] = p.ts;
        value[n] = typeof v === 'string' ? null : typeof v === 'boolean' ? Number(v) : v;
        svalue[n] = typeof v === 'string' ? v : null;
        n++;
      }
      let byMeasurement = latest.get(p.device);
      if (byMeasurement === undefined) {
        byMeasurement = new Map();
        latest.set(p.device, byMeasurement);
      }
      const prev = byMeasurement.get(p.measurement);
      if (!prev || prev.ts <= p.ts) byMeasurement.set(p.measurement, p);
    }
    // Rows in key order (series, ts): neighbouring inserts land on the same B-tree leaf, ~35 % less
    // CPU per row than arrival order, where the devices' series interleave (bench/edge.ts line
    // protocol). Ties keep arrival order, so the last of two equal keys still wins.
    const order = keyOrder(series, ts, n);
    const rows = this.#rows;
    let r = 0;
    let i = 0;
    for (; i + ROWS_PER_INSERT <= n; i += ROWS_PER_INSERT) {
      r = 0;
      for (let j = i; j < i + ROWS_PER_INSERT; j++) {
        const o = order[j] as number;
        rows[r++] = series[o] as number;
        rows[r++] = ts[o] as number;
        rows[r++] = value[o] as number | null;
        rows[r++] = svalue[o] as string | null;
      }
      this.#insertMany.run(rows);
    }
    for (; i < n; i++) {
      const o = order[i] as number;
      this.#insert.run(series[o], ts[o], value[o], svalue[o]);
    }
    // Let go of the batch's strings; the arrays keep their capacity for the next batch.
    svalue.fill(null, 0, n);
    for (const byMeasurement of latest.values())
      for (const p of byMeasurement.values())
        this.#device.run(p.device, p.measurement, p.ts, JSON.stringify(p.fields));
  }

  #seriesId(fields: Map<string, number>, p: Point, field: string, v: unknown): number {
    const tags = tagKey(p.tags);
    const row = this.#findSeries.get(p.measurement, p.device, field, tags) as { id: number } | undefined;
    const id =
      row?.id ?? Number(this.#addSeries.run(p.measurement, p.device, field, tags, typeof v).lastInsertRowid);
    fields.set(field, id);
    this.#seriesCount++;
    return id;
  }

  #clearSeriesCache(): void {
    this.#series.clear();
    this.#seriesCount = 0;
  }

  async ping(): Promise<void> {
    try {
      this.#ping.get();
    } catch (err) {
      throw this.#error('ping', err);
    }
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

/** Widest series id range a batch is counting-sorted over (else it is compared and sorted). */
const COUNT_RANGE_MIN = 4096;

/**
 * Row indexes in (series, ts) order, ties in arrival order. Series ids are small interned integers
 * and a device's points mostly arrive in time order: a counting sort by series (stable) and a check
 * that each series' run is already in ts order replace the comparison sort of every row, which cost
 * more CPU than the rest of the batch's JavaScript. Runs out of order, and wide id ranges, are sorted.
 */
export function keyOrder(series: readonly number[], ts: readonly number[], n: number): Uint32Array {
  const order = new Uint32Array(n);
  if (n === 0) return order;
  let min = series[0] as number;
  let max = min;
  for (let i = 1; i < n; i++) {
    const s = series[i] as number;
    if (s < min) min = s;
    else if (s > max) max = s;
  }
  const byKey = (a: number, b: number) =>
    (series[a] as number) - (series[b] as number) || (ts[a] as number) - (ts[b] as number) || a - b;
  if (max - min >= Math.max(COUNT_RANGE_MIN, 2 * n)) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort(byKey);
  }
  // at[s - min]: where series s's next row goes (after the prefix sum over the counts).
  const at = new Uint32Array(max - min + 2);
  for (let i = 0; i < n; i++) (at[(series[i] as number) - min + 1] as number)++;
  for (let k = 1; k < at.length; k++) (at[k] as number) += at[k - 1] as number;
  for (let i = 0; i < n; i++) order[(at[(series[i] as number) - min] as number)++] = i;
  // Each run of one series: sorted by ts only where it is not ascending already.
  let start = 0;
  for (let j = 1; j <= n; j++) {
    if (j < n && series[order[j] as number] === series[order[start] as number]) {
      if ((ts[order[j] as number] as number) >= (ts[order[j - 1] as number] as number)) continue;
      // Out of time order: sort this series' whole run.
      let end = j + 1;
      while (end < n && series[order[end] as number] === series[order[start] as number]) end++;
      order.subarray(start, end).sort(byKey);
      j = end - 1;
      continue;
    }
    start = j;
  }
  return order;
}
