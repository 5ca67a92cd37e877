/**
 * The event outbox: events published while NATS is slow or away wait here, in the Store, until
 * JetStream acknowledges them; a relay (adapters/nats/events.ts) drains them in order. Rows belong to
 * an origin (events.instanceId): each instance drains its own, so the CLI, which shares the instance
 * id of `kapok up` on the same host and dataDir, leaves what it could not send to the running server.
 * It lives with the NATS adapter (the only adapter that needs one) and uses only the Store port.
 */
import { KapokError } from '../../core/errors.js';
import type { Migration, Store } from '../../ports/store.js';

export const OUTBOX_TABLE = 'kapok_events_outbox';

const schema = (seq: string) => `
CREATE TABLE ${OUTBOX_TABLE} (
  seq ${seq},
  origin TEXT NOT NULL,
  id TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX ${OUTBOX_TABLE}_origin ON ${OUTBOX_TABLE} (origin, seq);`;

export const EVENTS_MIGRATIONS: readonly Migration[] = [
  {
    id: 'events/0001_outbox',
    sql: { sqlite: schema('INTEGER PRIMARY KEY AUTOINCREMENT'), postgres: schema('BIGSERIAL PRIMARY KEY') },
  },
];

export interface OutboxRow {
  seq: number;
  id: string;
  subject: string;
  body: string;
}

export class Outbox {
  constructor(
    private readonly store: Store,
    private readonly origin: string,
    /** Most rows of this origin; a publish beyond it is refused (never a silent drop). */
    private readonly max: number,
  ) {}

  /**
   * Adds an event. The bound is checked before the insert, so concurrent publishes may pass it by
   * a few rows: it is a safety limit, not an exact quota.
   */
  async add(id: string, subject: string, body: string): Promise<void> {
    const n = await this.count();
    if (n >= this.max) {
      throw new KapokError(
        'KAPOK_EVENTS_OUTBOX_FULL',
        `the event outbox holds ${n} events NATS has not accepted (events.nats.outboxMax ${this.max}): check that NATS is reachable (/readyz events:nats); the change was made, but other instances learn of it only by their fallbacks`,
      );
    }
    await this.store.execute(
      `INSERT INTO ${OUTBOX_TABLE} (origin, id, subject, body, created_at) VALUES (?, ?, ?, ?, ?)`,
      [this.origin, id, subject, body, Date.now()],
    );
  }

  /** The oldest rows of this origin, in publish order. */
  async next(limit: number): Promise<OutboxRow[]> {
    const rows = await this.store.query<OutboxRow>(
      `SELECT seq, id, subject, body FROM ${OUTBOX_TABLE} WHERE origin = ? ORDER BY seq LIMIT ${Math.max(1, Math.floor(limit))}`,
      [this.origin],
    );
    return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
  }

  async remove(seq: number): Promise<void> {
    await this.store.execute(`DELETE FROM ${OUTBOX_TABLE} WHERE seq = ?`, [seq]);
  }

  async count(): Promise<number> {
    const rows = await this.store.query<{ n: number | bigint }>(
      `SELECT count(*) AS n FROM ${OUTBOX_TABLE} WHERE origin = ?`,
      [this.origin],
    );
    return Number(rows[0]?.n ?? 0);
  }
}
