import { KapokError } from '../../core/errors.js';
import type { Migration, Store } from '../../ports/store.js';

/** The gateway's tables; only the auto-increment id and integer widths differ by dialect. */
const schemaSql = (d: { id: string; ts: string; flag: string }) => `
CREATE TABLE gateway_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash TEXT NOT NULL,
  rpm INTEGER,
  tpm INTEGER,
  models TEXT,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE UNIQUE INDEX gateway_keys_active_name ON gateway_keys (name) WHERE revoked_at IS NULL;
CREATE TABLE gateway_usage (
  id ${d.id},
  ts ${d.ts} NOT NULL,
  subject TEXT NOT NULL,
  model TEXT NOT NULL,
  target TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  status INTEGER NOT NULL,
  stream ${d.flag} NOT NULL
);
CREATE INDEX gateway_usage_ts ON gateway_usage (ts);
CREATE INDEX gateway_usage_subject_ts ON gateway_usage (subject, ts);`;

/** API keys and usage records. Never edit an applied migration: add a new one. */
export const GATEWAY_MIGRATIONS: Migration[] = [
  {
    id: 'gateway/0001_keys_usage',
    sql: {
      sqlite: schemaSql({ id: 'INTEGER PRIMARY KEY AUTOINCREMENT', ts: 'INTEGER', flag: 'INTEGER' }),
      postgres: schemaSql({ id: 'BIGSERIAL PRIMARY KEY', ts: 'BIGINT', flag: 'SMALLINT' }),
    },
  },
];

export interface KeyRecord {
  id: string;
  name: string;
  hash: string;
  rpm: number | null;
  tpm: number | null;
  /** Client-facing models this key may use; null = all. */
  models: string[] | null;
  createdAt: string;
  revokedAt: string | null;
}

/** A key as listed to operators: never the hash. */
export type KeyInfo = Omit<KeyRecord, 'hash'>;

interface Row {
  id: string;
  name: string;
  hash: string;
  rpm: number | null;
  tpm: number | null;
  models: string | null;
  created_at: string;
  revoked_at: string | null;
}

const COLS = 'id, name, hash, rpm, tpm, models, created_at, revoked_at';

export class KeyStore {
  constructor(private readonly store: Store) {}

  async insert(k: Omit<KeyRecord, 'revokedAt'>): Promise<void> {
    try {
      await this.store.execute(`INSERT INTO gateway_keys (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`, [
        k.id,
        k.name,
        k.hash,
        k.rpm,
        k.tpm,
        k.models ? JSON.stringify(k.models) : null,
        k.createdAt,
      ]);
    } catch (err) {
      if (err instanceof KapokError && err.code === 'KAPOK_STORE_CONFLICT') {
        throw new KapokError(
          'KAPOK_STORE_CONFLICT',
          `an active key named "${k.name}" exists: pick another --name or revoke it first`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async byId(id: string): Promise<KeyRecord | null> {
    const rows = await this.store.query<Row>(`SELECT ${COLS} FROM gateway_keys WHERE id = ?`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async list(includeRevoked = false): Promise<KeyInfo[]> {
    const rows = await this.store.query<Row>(
      `SELECT ${COLS} FROM gateway_keys${includeRevoked ? '' : ' WHERE revoked_at IS NULL'} ORDER BY created_at, id`,
    );
    return rows.map((r) => {
      const { hash: _hash, ...info } = fromRow(r);
      return info;
    });
  }

  /** Revokes by id or by active name; returns the id revoked, or null when none matched. */
  async revoke(idOrName: string, at = new Date().toISOString()): Promise<string | null> {
    const rows = await this.store.query<{ id: string }>(
      'UPDATE gateway_keys SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR name = ?) RETURNING id',
      [at, idOrName, idOrName],
    );
    return rows[0]?.id ?? null;
  }
}

function fromRow(r: Row): KeyRecord {
  return {
    id: r.id,
    name: r.name,
    hash: r.hash,
    rpm: r.rpm === null ? null : Number(r.rpm),
    tpm: r.tpm === null ? null : Number(r.tpm),
    models: r.models ? (JSON.parse(r.models) as string[]) : null,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}
