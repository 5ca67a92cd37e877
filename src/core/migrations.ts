import type { Migration } from '../ports/store.js';

/** Tables the platform itself owns. Capabilities keep theirs next to their code, ids prefixed by area. */
export const CORE_MIGRATIONS: readonly Migration[] = [
  {
    id: 'core/0001_meta',
    sql: 'CREATE TABLE IF NOT EXISTS kapok_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
  },
];
