import type { Migration } from '../ports/store.js';

/**
 * The console's browser sessions (sessions.ts), in the Store so that they outlive a restart
 * and every instance on one PostgreSQL sees them. A row holds no secret: the cookie's id only as its
 * SHA-256, the admin token only as a digest of its digest (token_id; NULL for a loopback session).
 * Times are epoch milliseconds; seen_ms is indexed for the purge.
 */
export const CONSOLE_MIGRATIONS: readonly Migration[] = [
  {
    id: 'console/0001_sessions',
    sql: `
CREATE TABLE console_sessions (
  id_hash TEXT PRIMARY KEY,
  csrf TEXT NOT NULL,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  token_id TEXT,
  created_ms BIGINT NOT NULL,
  seen_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_seen ON console_sessions (seen_ms);`,
  },
];
