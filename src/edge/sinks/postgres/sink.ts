import pg from 'pg';
import { KapokError, messageOf } from '../../../core/errors.js';
import type { Point } from '../../decode/index.js';
import { tagKey } from '../embedded/sink.js';
import type { Sink } from '../sink.js';

/** Rows per INSERT statement (PostgreSQL allows 65,535 parameters; 7 per row). */
const ROWS_PER_STATEMENT = 5000;

/**
 * PostgreSQL sink: one narrow row per field value, written with multi-row INSERT ... ON CONFLICT
 * DO NOTHING inside one transaction per batch (a replayed batch does not duplicate). The table is
 * made a TimescaleDB hypertable when the extension is installed.
 */
export class PostgresSink implements Sink {
  readonly name: string;
  readonly #pool: pg.Pool;
  readonly #table: string;
  #ready: Promise<void> | undefined;

  constructor(opts: { name: string; url: string; table: string }) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(opts.table))
      throw new Error('edge.sinks[].table must be a lower-case SQL identifier');
    this.name = opts.name;
    this.#table = opts.table;
    this.#pool = new pg.Pool({ connectionString: opts.url, max: 2 });
    this.#pool.on('error', () => {}); // idle-client errors surface on the next write
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

  async write(points: readonly Point[]): Promise<void> {
    try {
      await this.#init();
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
    } catch (err) {
      throw new KapokError('KAPOK_EDGE_SINK', `edge sink ${this.name} (postgres): ${messageOf(err)}`, {
        cause: err,
      });
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
