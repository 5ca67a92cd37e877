/**
 * The SQL Store port: what capabilities use to keep durable, relational state (API keys, devices,
 * model registry, ...). Adapters: `adapters/sqlite` (embedded, the default) and `adapters/postgres`.
 *
 * Contract every adapter keeps (checked by test/ports/store.conformance.ts):
 * - SQL given to the port uses `?` placeholders on both dialects. One statement per call
 *   (migrations may hold many). On postgres a literal `?` operator (jsonb) cannot be written: use the
 *   function form (`jsonb_exists(a, b)`) instead.
 * - Values read back: integers as `number` while they are safe integers, as `bigint` beyond that
 *   (postgres `count(*)`/BIGINT included); blobs as `Buffer` (a Uint8Array); booleans as `true/false`
 *   on postgres and `1/0` on sqlite (sqlite has no boolean type).
 * - Errors are KapokErrors: constraint violations `KAPOK_STORE_CONFLICT`, a backend that cannot be
 *   reached or is locked too long `KAPOK_STORE_UNAVAILABLE`, a bad statement `KAPOK_STORE_QUERY` (the
 *   message never contains parameter values), use after `close()` `KAPOK_STORE_CLOSED`.
 * - `transaction(fn)` commits when `fn` resolves and rolls back and rethrows what `fn` threw.
 *   Inside `fn` use only the `tx` handle: calling the store itself from inside the callback throws
 *   (on sqlite it would otherwise wait for the very transaction it is part of). Postgres runs
 *   transactions at READ COMMITTED: to read-modify-write a row, write first
 *   (`UPDATE ... SET n = n + 1 ... RETURNING n`), which locks the row until commit on both dialects.
 */
import { KapokError } from '../core/errors.js';

export type Dialect = 'sqlite' | 'postgres';

export type SqlValue = string | number | bigint | boolean | null | Uint8Array;

export interface Migration {
  /** Stable, unique id, e.g. 'core/0001_init'. Never rename or edit an applied migration. */
  id: string;
  /**
   * One SQL text for both dialects, or one per dialect. May hold several statements, but no
   * transaction control (each migration already runs in its own transaction) and nothing that cannot
   * run in a transaction (CREATE INDEX CONCURRENTLY).
   */
  sql: string | { sqlite: string; postgres: string };
}

export interface QueryOptions {
  /**
   * The caller vouches that every integer this statement reads is a safe integer (|n| ≤ 2^53 − 1:
   * counts, small ids, ms timestamps): adapters may then skip the 64-bit path (on SQLite a BigInt per
   * integer value, then converted back). A larger value would come back rounded, so never set it
   * for a column that can hold one.
   */
  smallIntegers?: boolean;
}

export interface Queryable {
  /** Runs one statement and returns its rows (an empty array for statements that return none). */
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlValue[],
    options?: QueryOptions,
  ): Promise<T[]>;
  /** Runs one statement; rowCount is the rows changed (or returned, for a SELECT/RETURNING). */
  execute(sql: string, params?: readonly SqlValue[]): Promise<{ rowCount: number }>;
}

export interface Store extends Queryable {
  readonly dialect: Dialect;
  /**
   * Applies the migrations not yet recorded in `kapok_migrations`, in the given order, each in its
   * own transaction. Safe when several processes migrate the same database at once. Returns the
   * ids newly applied, in order.
   */
  migrate(migrations: readonly Migration[]): Promise<string[]>;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  /** Waits for work in flight, then releases the backend. Idempotent. */
  close(): Promise<void>;
}

/** The name of the table recording applied migrations. */
export const MIGRATIONS_TABLE = 'kapok_migrations';

/** The SQL text of a migration for a dialect. */
export function migrationSql(migration: Migration, dialect: Dialect): string {
  return typeof migration.sql === 'string' ? migration.sql : migration.sql[dialect];
}

/** Checks a migration list before anything is applied: ids present and unique, SQL present. */
export function checkMigrations(migrations: readonly Migration[], dialect: Dialect): void {
  if (!Array.isArray(migrations)) {
    throw new KapokError('KAPOK_STORE_MIGRATION', 'migrate() takes an array of migrations');
  }
  const seen = new Set<string>();
  for (const [i, m] of migrations.entries()) {
    if (typeof m?.id !== 'string' || m.id.trim() === '') {
      throw new KapokError('KAPOK_STORE_MIGRATION', `migration #${i} has no id: give each one a stable id`);
    }
    if (seen.has(m.id)) {
      throw new KapokError('KAPOK_STORE_MIGRATION', `migration id ${m.id} appears twice: ids must be unique`);
    }
    seen.add(m.id);
    const sql = typeof m.sql === 'string' ? m.sql : m.sql?.[dialect];
    if (typeof sql !== 'string' || sql.trim() === '') {
      throw new KapokError('KAPOK_STORE_MIGRATION', `migration ${m.id} has no SQL for ${dialect}`);
    }
  }
}

/**
 * Checks statement parameters against SqlValue at run time (JavaScript callers and `as` casts get
 * past the type checker). Throws KAPOK_STORE_QUERY naming the position, never the value.
 */
export function checkParams(params: readonly SqlValue[] | undefined): readonly SqlValue[] {
  if (params === undefined) return [];
  if (!Array.isArray(params)) {
    throw new KapokError('KAPOK_STORE_QUERY', 'statement parameters must be an array of values');
  }
  for (let i = 0; i < params.length; i++) {
    const v: unknown = params[i];
    const t = typeof v;
    if (v === null || t === 'string' || t === 'number' || t === 'bigint' || t === 'boolean') continue;
    if (v instanceof Uint8Array) continue;
    const what = v === undefined ? 'undefined (pass null for SQL NULL)' : `of type ${describeType(v)}`;
    throw new KapokError(
      'KAPOK_STORE_QUERY',
      `statement parameter ${i + 1} is ${what}: use string, number, bigint, boolean, null or Uint8Array`,
    );
  }
  return params;
}

function describeType(v: unknown): string {
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'object';
}

/** The start of a statement, whitespace collapsed, for error messages (never parameters). */
export function sqlExcerpt(sql: string, max = 80): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** An integer read back from SQL: a number while it is a safe integer, else the bigint itself. */
export function toSafeInteger(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

// Made once: BigInt(...) on every call showed in the pick-next profile (docs/jobs.md#performance).
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
