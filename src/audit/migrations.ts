import type { Migration } from '../ports/store.js';

/**
 * The audit capability's tables (docs/audit.md). Hashes and keys are hex text so both dialects read
 * them back alike.
 * - audit_log: the chain, one row per entry, seq from 1 without gaps;
 * - audit_head: one row, the last seq and hash: every append locks it first, so processes sharing
 *   one PostgreSQL append to one chain without forks (and a truncated tail shows against it);
 * - audit_checkpoints: SM2-signed (seq, head hash, time);
 * - audit_keys: the checkpoint signing keys, the private key SM4-GCM sealed under audit.kek (AAD: id);
 * - audit_ship: the shipping cursor per destination: acknowledged and attempted up to which seq,
 *   and which process holds the lease to ship (one shipper per destination).
 */
export const AUDIT_MIGRATIONS: readonly Migration[] = [
  {
    id: 'audit/0001_chain',
    sql: `CREATE TABLE IF NOT EXISTS audit_log (
  seq BIGINT PRIMARY KEY,
  time BIGINT NOT NULL,
  actor TEXT NOT NULL,
  ip TEXT,
  action TEXT NOT NULL,
  target TEXT,
  outcome TEXT NOT NULL,
  request_id TEXT,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (time, seq);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, seq);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, seq);
CREATE TABLE IF NOT EXISTS audit_head (
  id INTEGER PRIMARY KEY,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
  seq BIGINT PRIMARY KEY,
  head_hash TEXT NOT NULL,
  time BIGINT NOT NULL,
  key_id TEXT NOT NULL,
  signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_keys (
  id TEXT PRIMARY KEY,
  public_key TEXT NOT NULL,
  nonce TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  tag TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_ship (
  id TEXT PRIMARY KEY,
  acked_seq BIGINT NOT NULL,
  attempted_seq BIGINT NOT NULL,
  owner TEXT,
  lease_until BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);`,
  },
];
