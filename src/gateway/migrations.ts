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

/**
 * Per-minute sums of gateway_usage, for usage over long ranges (usage/series.ts). Kept by the usage
 * writer in the same transaction as the raw rows; back-filled here from what is already recorded.
 * minute = ts floored to a whole minute (epoch ms); errors count status >= 400; tokens are
 * prompt + completion. SQLite keeps it WITHOUT ROWID so a minute range is read in key order.
 */
const minutesSql = (d: { int: string; big: string; tail: string }) => `
CREATE TABLE gateway_usage_minutes (
  minute ${d.big} NOT NULL,
  model TEXT NOT NULL,
  subject TEXT NOT NULL,
  target TEXT NOT NULL,
  status ${d.int} NOT NULL,
  requests ${d.big} NOT NULL,
  errors ${d.big} NOT NULL,
  tokens ${d.big} NOT NULL,
  PRIMARY KEY (minute, model, subject, target, status)
)${d.tail};
INSERT INTO gateway_usage_minutes (minute, model, subject, target, status, requests, errors, tokens)
SELECT (ts / 60000) * 60000, model, subject, target, status, COUNT(*),
  SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(prompt_tokens + completion_tokens)
FROM gateway_usage GROUP BY 1, 2, 3, 4, 5;`;

/** API keys and usage records. Never edit an applied migration: add a new one. */
export const GATEWAY_MIGRATIONS: Migration[] = [
  {
    id: 'gateway/0001_keys_usage',
    sql: {
      sqlite: schemaSql({ id: 'INTEGER PRIMARY KEY AUTOINCREMENT', ts: 'INTEGER', flag: 'INTEGER' }),
      postgres: schemaSql({ id: 'BIGSERIAL PRIMARY KEY', ts: 'BIGINT', flag: 'SMALLINT' }),
    },
  },
  {
    id: 'gateway/0002_usage_minutes',
    sql: {
      sqlite: minutesSql({ int: 'INTEGER', big: 'INTEGER', tail: ' WITHOUT ROWID' }),
      postgres: minutesSql({ int: 'INTEGER', big: 'BIGINT', tail: '' }),
    },
  },
];
