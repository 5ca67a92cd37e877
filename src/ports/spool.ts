/**
 * The spool storage port: durable storage under edge's spool. An append-only log of messages with
 * ids that only grow, named cursors (one per sink) and a dead-letter list. The spool's policy (size
 * bound, drop-oldest, which messages every sink confirmed, the dead-letter bound) stays in edge;
 * the adapter only keeps what it is told to, atomically. Adapter: `adapters/sqlite/spool`.
 *
 * Synchronous on purpose: intake acknowledges a message only after its append committed, and all
 * appends of one event-loop turn commit as one transaction (group commit) without an await.
 *
 * Contract (checked by test/ports/spool.conformance.ts):
 * - `append` returns an id larger than every id before it, also after the log was emptied and
 *   after a reopen; a write inside `transaction` is kept only when the transaction returns.
 * - Sizes are payload bytes plus the topic's UTF-8 bytes, per message.
 * - What was written survives close and reopen (cursors, messages, dead letters).
 * - Failures (cannot open, disk full, closed) throw KAPOK_EDGE_SPOOL.
 */

export interface SpooledMessage {
  id: number;
  topic: string;
  payload: Buffer;
  receivedAt: number;
}

export type SpooledMeta = Pick<SpooledMessage, 'id' | 'receivedAt'>;

export interface DeadLetter {
  id: number;
  at: number;
  topic: string;
  reason: string;
  payload: Buffer;
}

export interface SpoolStore {
  /** Appends one message and returns its id. */
  append(topic: string, payload: Buffer, receivedAt: number): number;
  /** Up to `limit` messages with id > afterId, oldest first. */
  read(afterId: number, limit: number): SpooledMessage[];
  /**
   * What `read` answers without topic and payload: ids and receive times. For a reader that holds
   * the decoded messages already (edge's sink runners and their decoded cache): copying payloads
   * out of the engine it would not use costs as much as the rest of the read.
   */
  readMeta(afterId: number, limit: number): SpooledMeta[];
  /** How many messages have id ≤ upTo, and their bytes. */
  sizeUpTo(upTo: number): { count: number; bytes: number };
  /** Id and bytes of the (at most `limit`) oldest messages, oldest first. */
  oldest(limit: number): { id: number; bytes: number }[];
  /** Deletes every message with id ≤ upTo. */
  deleteUpTo(upTo: number): void;
  /** Highest id ever appended (0 before the first append). */
  lastId(): number;
  /** Saved cursor positions by name. */
  cursors(): Map<string, number>;
  setCursor(name: string, pos: number): void;
  /** Keeps a dead letter; returns its id (ids only grow, like message ids). */
  addDeadLetter(topic: string, payload: Buffer, reason: string, at: number): number;
  /** Up to `limit` dead letters with id > afterId, oldest first. */
  deadLetters(limit: number, afterId: number): DeadLetter[];
  deleteDeadLetter(id: number): void;
  /** Deletes every dead letter with id ≤ upTo. */
  trimDeadLetters(upTo: number): void;
  /** Runs fn in one transaction: its writes commit together, or none if it throws. Calls nest. */
  transaction<T>(fn: () => T): T;
  /** Idempotent; later calls throw KAPOK_EDGE_SPOOL. */
  close(): void;
}
