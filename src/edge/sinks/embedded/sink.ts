import Database from 'better-sqlite3';
import { KapokError, messageOf } from '../../../core/errors.js';
import type { Point } from '../../decode/index.js';
import type { Sink } from '../sink.js';

/**
 * The embedded sink: SQLite in dataDir. Narrow rows keyed by (series, ts) in a WITHOUT ROWID
 * table, so a replayed point replaces itself instead of duplicating, and a range query for one
 * series is one contiguous B-tree scan. Series (measurement, device, field, tags) are interned in
 * `series`; `devices` keeps each device's last-seen time and latest values for /api/edge/devices.
 * Chosen over DuckDB: measured here, see docs/edge.md, and no binary download.
 */
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

/** Series ids kept in memory at most; past it the cache is cleared (ids are re-read from SQLite). */
const SERIES_CACHE_MAX = 500_000;
/** Rows per multi-row INSERT (4 parameters each, under SQLite's 32,766 limit). */
const ROWS_PER_INSERT = 128;

export class EmbeddedSink implements Sink {
  readonly name: string;
  readonly db: Database.Database;
  readonly #series = new Map<string, number>();
  readonly #insert: Database.Statement;
  /** One statement for ROWS_PER_INSERT rows: binding once per row costs more than the B-tree insert. */
  readonly #insertMany: Database.Statement;
  readonly #rows: (number | string | null)[] = new Array(ROWS_PER_INSERT * 4);
  readonly #findSeries: Database.Statement;
  readonly #addSeries: Database.Statement;
  readonly #device: Database.Statement;
  readonly #writeTx: (points: readonly Point[]) => void;

  constructor(opts: { name: string; file: string }) {
    if (!opts.file) throw new Error('EmbeddedSink: options.file is required');
    this.name = opts.name;
    try {
      this.db = new Database(opts.file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('cache_size = -65536');
      this.db.exec(EMBEDDED_SCHEMA);
    } catch (err) {
      throw new KapokError(
        'KAPOK_EDGE_SINK',
        `edge sink ${opts.name}: ${opts.file} cannot be opened (${messageOf(err)}): check dataDir`,
        { cause: err },
      );
    }
    this.#insert = this.db.prepare(
      'INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES (?, ?, ?, ?)',
    );
    this.#insertMany = this.db.prepare(
      `INSERT OR REPLACE INTO points (series, ts, value, svalue) VALUES ${Array(ROWS_PER_INSERT).fill('(?, ?, ?, ?)').join(', ')}`,
    );
    this.#findSeries = this.db.prepare(
      'SELECT id FROM series WHERE measurement = ? AND device = ? AND field = ? AND tags = ?',
    );
    this.#addSeries = this.db.prepare(
      'INSERT INTO series (measurement, device, field, tags, type) VALUES (?, ?, ?, ?, ?)',
    );
    this.#device = this.db.prepare(
      `INSERT INTO devices (device, measurement, last_seen, latest) VALUES (?, ?, ?, ?)
       ON CONFLICT (device, measurement) DO UPDATE SET last_seen = excluded.last_seen, latest = excluded.latest
       WHERE excluded.last_seen >= devices.last_seen`,
    );
    this.#writeTx = this.db.transaction((points: readonly Point[]) => this.#write(points));
  }

  async write(points: readonly Point[]): Promise<void> {
    try {
      this.#writeTx(points);
    } catch (err) {
      throw new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name}: write failed: ${messageOf(err)}`, {
        cause: err,
      });
    }
  }

  #write(points: readonly Point[]): void {
    const latest = new Map<string, Point>();
    const rows = this.#rows;
    let n = 0;
    for (const p of points) {
      // Cache key from the tags in arrival order (cheap); the canonical key only on a cache miss.
      let raw = `${p.measurement}\u0000${p.device}\u0000`;
      for (const k in p.tags) raw += `${k}\u0001${p.tags[k]}\u0002`;
      for (const field in p.fields) {
        const v = p.fields[field] as number | boolean | string;
        rows[n++] = this.#seriesId(`${raw}\u0000${field}`, p, field, v);
        rows[n++] = p.ts;
        rows[n++] = typeof v === 'string' ? null : typeof v === 'boolean' ? Number(v) : v;
        rows[n++] = typeof v === 'string' ? v : null;
        if (n === rows.length) {
          this.#insertMany.run(rows);
          n = 0;
        }
      }
      const dk = `${p.device}\u0000${p.measurement}`;
      const prev = latest.get(dk);
      if (!prev || prev.ts <= p.ts) latest.set(dk, p);
    }
    for (let i = 0; i < n; i += 4) this.#insert.run(rows[i], rows[i + 1], rows[i + 2], rows[i + 3]);
    for (const p of latest.values())
      this.#device.run(p.device, p.measurement, p.ts, JSON.stringify(p.fields));
  }

  #seriesId(key: string, p: Point, field: string, v: unknown): number {
    const hit = this.#series.get(key);
    if (hit !== undefined) return hit;
    const tags = tagKey(p.tags);
    const row = this.#findSeries.get(p.measurement, p.device, field, tags) as { id: number } | undefined;
    const id =
      row?.id ?? Number(this.#addSeries.run(p.measurement, p.device, field, tags, typeof v).lastInsertRowid);
    if (this.#series.size >= SERIES_CACHE_MAX) this.#series.clear();
    this.#series.set(key, id);
    return id;
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** Tags as canonical JSON (sorted keys), so the same tag set always names the same series. */
export function tagKey(tags: Record<string, string>): string {
  const keys = Object.keys(tags);
  if (keys.length === 0) return '{}';
  keys.sort();
  const o: Record<string, string> = {};
  for (const k of keys) o[k] = tags[k] as string;
  return JSON.stringify(o);
}
