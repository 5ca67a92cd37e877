import type Database from 'better-sqlite3';
import { KapokError } from '../../../core/errors.js';

export const AGGS = ['avg', 'min', 'max', 'sum', 'count', 'last'] as const;
export type Agg = (typeof AGGS)[number];

export interface QueryParams {
  measurement: string;
  field: string;
  device?: string;
  from: number;
  to: number;
  everyMs?: number;
  agg: Agg;
}

const SQL_AGG: Record<Exclude<Agg, 'last'>, string> = {
  avg: 'avg(p.value)',
  min: 'min(p.value)',
  max: 'max(p.value)',
  sum: 'sum(p.value)',
  count: 'count(*)',
};

/**
 * Range queries over the embedded sink. Raw points without `every`; windows of `every` ms (aligned
 * to the epoch) with `agg`. The answer is bounded by maxPoints: a query that could exceed it is a
 * 400 before it runs (windows) or as soon as one point too many is read (raw).
 */
export class EmbeddedQuery {
  constructor(
    readonly db: Database.Database,
    readonly maxPoints: number,
  ) {}

  query(q: QueryParams): { points: { ts: number; value: number | string | null }[] } {
    const where = `p.series IN (SELECT id FROM series WHERE measurement = ? AND field = ?${q.device ? ' AND device = ?' : ''}) AND p.ts >= ? AND p.ts < ?`;
    const args: (string | number)[] = [q.measurement, q.field, ...(q.device ? [q.device] : []), q.from, q.to];
    if (q.everyMs === undefined) {
      const rows = this.db
        .prepare(
          `SELECT p.ts AS ts, coalesce(p.value, p.svalue) AS value FROM points p WHERE ${where} ORDER BY p.ts LIMIT ?`,
        )
        .all(...args, this.maxPoints + 1) as { ts: number; value: number | string }[];
      if (rows.length > this.maxPoints)
        throw new KapokError(
          'KAPOK_EDGE_TOO_MANY_POINTS',
          `more than edge.query.maxPoints (${this.maxPoints}) raw points in range: narrow from/to or add every=`,
        );
      return { points: rows };
    }
    const windows = Math.ceil((q.to - q.from) / q.everyMs);
    if (windows > this.maxPoints)
      throw new KapokError(
        'KAPOK_EDGE_TOO_MANY_POINTS',
        `${windows} windows of ${q.everyMs} ms exceed edge.query.maxPoints (${this.maxPoints}): widen every or narrow from/to`,
      );
    const w = `(p.ts - (p.ts % ${q.everyMs}) - (CASE WHEN p.ts % ${q.everyMs} < 0 THEN ${q.everyMs} ELSE 0 END))`;
    // SQLite returns the bare columns of the row that holds max(): the last value per window.
    const sel =
      q.agg === 'last'
        ? 'coalesce(p.value, p.svalue) AS value, max(p.ts) AS _t'
        : `${SQL_AGG[q.agg]} AS value`;
    const rows = this.db
      .prepare(`SELECT ${w} AS ts, ${sel} FROM points p WHERE ${where} GROUP BY 1 ORDER BY 1`)
      .all(...args) as { ts: number; value: number | string | null; _t?: number }[];
    return { points: rows.map((r) => ({ ts: r.ts, value: r.value })) };
  }

  devices(
    limit: number,
  ): { device: string; measurement: string; lastSeen: string; latest: Record<string, unknown> }[] {
    return (
      this.db
        .prepare(
          'SELECT device, measurement, last_seen, latest FROM devices ORDER BY device, measurement LIMIT ?',
        )
        .all(limit) as { device: string; measurement: string; last_seen: number; latest: string }[]
    ).map((r) => ({
      device: r.device,
      measurement: r.measurement,
      lastSeen: new Date(r.last_seen).toISOString(),
      latest: JSON.parse(r.latest),
    }));
  }
}
