import type Database from 'better-sqlite3';
import type { Agg, DeviceLatest, RangeQuery, TimeSeriesQuery } from '../../ports/timeseries.js';

const SQL_AGG: Record<Exclude<Agg, 'last'>, string> = {
  avg: 'avg(p.value)',
  min: 'min(p.value)',
  max: 'max(p.value)',
  sum: 'sum(p.value)',
  count: 'count(*)',
};

/** Range queries over the embedded sink's tables (see timeseries.ts for the layout). */
export class SqliteTimeSeriesQuery implements TimeSeriesQuery {
  readonly #db: Database.Database;
  readonly #error: (err: unknown) => Error;

  constructor(db: Database.Database, error: (err: unknown) => Error) {
    this.#db = db;
    this.#error = error;
  }

  async range(
    q: RangeQuery,
  ): Promise<{ points: { ts: number; value: number | string | null }[]; more: boolean }> {
    try {
      return this.#range(q);
    } catch (err) {
      throw this.#error(err);
    }
  }

  #range(q: RangeQuery): { points: { ts: number; value: number | string | null }[]; more: boolean } {
    const where = `p.series IN (SELECT id FROM series WHERE measurement = ? AND field = ?${q.device !== undefined ? ' AND device = ?' : ''}) AND p.ts >= ? AND p.ts < ?`;
    const args: (string | number)[] = [
      q.measurement,
      q.field,
      ...(q.device !== undefined ? [q.device] : []),
      q.from,
      q.to,
    ];
    let rows: { ts: number; value: number | string | null }[];
    if (q.everyMs === undefined) {
      rows = this.#db
        .prepare(
          `SELECT p.ts AS ts, coalesce(p.value, p.svalue) AS value FROM points p WHERE ${where} ORDER BY p.ts LIMIT ?`,
        )
        .all(...args, q.limit + 1) as { ts: number; value: number | string }[];
    } else {
      const every = Math.trunc(q.everyMs);
      if (!(every >= 1)) throw new RangeError(`everyMs must be a whole number ≥ 1 (got ${q.everyMs})`);
      // Windows aligned to the epoch, also for negative times (SQLite's % keeps the dividend's sign).
      const w = `(p.ts - (p.ts % ${every}) - (CASE WHEN p.ts % ${every} < 0 THEN ${every} ELSE 0 END))`;
      // SQLite returns the bare columns of the row that holds max(): the last value per window.
      const sel =
        q.agg === 'last'
          ? 'coalesce(p.value, p.svalue) AS value, max(p.ts) AS _t'
          : `${SQL_AGG[q.agg]} AS value`;
      rows = (
        this.#db
          .prepare(`SELECT ${w} AS ts, ${sel} FROM points p WHERE ${where} GROUP BY 1 ORDER BY 1 LIMIT ?`)
          .all(...args, q.limit + 1) as { ts: number; value: number | string | null; _t?: number }[]
      ).map((r) => ({ ts: r.ts, value: r.value }));
    }
    const more = rows.length > q.limit;
    if (more) rows.length = q.limit;
    return { points: rows, more };
  }

  async devices(limit: number): Promise<DeviceLatest[]> {
    try {
      return (
        this.#db
          .prepare(
            'SELECT device, measurement, last_seen, latest FROM devices ORDER BY device, measurement LIMIT ?',
          )
          .all(limit) as { device: string; measurement: string; last_seen: number; latest: string }[]
      ).map((r) => ({
        device: r.device,
        measurement: r.measurement,
        lastSeen: r.last_seen,
        latest: JSON.parse(r.latest),
      }));
    } catch (err) {
      throw this.#error(err);
    }
  }
}
