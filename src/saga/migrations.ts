import type { Migration } from '../ports/store.js';

/**
 * The saga coordinator's tables (docs/saga.md#storage). Every state change is written here before
 * the call it leads to, so a coordinator killed at any point resumes from these rows.
 * - saga_tx: one row per transaction (gid chosen by the client), its state, the hash of the body it
 *   was created with (same gid, other body: 409), its lease (which coordinator drives it, until when)
 *   and when it is next due;
 * - saga_op: one row per branch operation (action, compensate, try, confirm, cancel, prepare, commit,
 *   rollback, query): state, attempts, when next due, the last error;
 * - saga_dead: operations given up on, for people (kapok saga retry|skip|compensate).
 */
export const SAGA_MIGRATIONS: readonly Migration[] = [
  {
    id: 'saga/0001_coordinator',
    sql: `CREATE TABLE IF NOT EXISTS saga_tx (
  gid TEXT PRIMARY KEY,
  mode TEXT NOT NULL,
  state TEXT NOT NULL,
  body_hash TEXT NOT NULL,
  spec TEXT NOT NULL,
  pass_headers TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deadline BIGINT NOT NULL,
  next_at BIGINT NOT NULL,
  lease_owner TEXT,
  lease_until BIGINT NOT NULL,
  reason TEXT
);
CREATE INDEX IF NOT EXISTS saga_tx_due ON saga_tx (state, next_at);
CREATE INDEX IF NOT EXISTS saga_tx_created ON saga_tx (created_at, gid);
CREATE TABLE IF NOT EXISTS saga_op (
  gid TEXT NOT NULL,
  branch TEXT NOT NULL,
  op TEXT NOT NULL,
  phase TEXT NOT NULL,
  stage INTEGER NOT NULL,
  target TEXT NOT NULL,
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  timeout_ms INTEGER NOT NULL,
  late_confirm TEXT,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_at BIGINT NOT NULL,
  last_error TEXT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (gid, branch, op)
);
CREATE TABLE IF NOT EXISTS saga_dead (
  id TEXT PRIMARY KEY,
  gid TEXT NOT NULL,
  branch TEXT NOT NULL,
  op TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  published INTEGER NOT NULL,
  resolved_at BIGINT,
  resolution TEXT
);
CREATE INDEX IF NOT EXISTS saga_dead_open ON saga_dead (resolved_at, created_at);`,
  },
];
