import type { Migration } from '../ports/store.js';

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
