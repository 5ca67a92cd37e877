import { randomBytes, randomUUID } from 'node:crypto';
import { KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { toHex } from '../crypto/bytes.js';
import { sm4GcmEncrypt } from '../crypto/sm4.js';
import type { Store } from '../ports/store.js';
import type { AuditEntry } from './chain.js';
import { entryPages } from './reader.js';

/**
 * Sealed shipping to an external audit centre (docs/audit.md#shipping). Batches of entries, in seq
 * order, are POSTed as SM4-GCM envelopes. The cursor is in the Store (audit_ship): `acked_seq` moves
 * when the centre answered 2xx; `attempted_seq` is written before each POST, so a batch that may have
 * arrived already (a retry, or the first batch after a restart) carries `resend: true` and the
 * receiver dedupes by seq. An outage only delays: the entries stay in the Store and go out in order.
 * Processes sharing a Store take a lease per destination, so one of them ships.
 */

export interface Envelope {
  version: 1;
  keyId: string;
  /** 12 bytes, hex. */
  nonce: string;
  /** SM4-GCM ciphertext of the UTF-8 JSON array of entries, base64. */
  ciphertext: string;
  /** 16 bytes, hex. */
  tag: string;
  firstSeq: number;
  lastSeq: number;
  /** True when this range (or part of it) may have been sent before: dedupe by seq. */
  resend: boolean;
}

/** The AAD binding an envelope to its range: firstSeq ‖ lastSeq, each an unsigned 64-bit big-endian integer. */
export function envelopeAad(firstSeq: number, lastSeq: number): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(BigInt(firstSeq), 0);
  b.writeBigUInt64BE(BigInt(lastSeq), 8);
  return b;
}

export function sealBatch(key: Uint8Array, keyId: string, entries: AuditEntry[], resend: boolean): Envelope {
  const firstSeq = (entries[0] as AuditEntry).seq;
  const lastSeq = (entries.at(-1) as AuditEntry).seq;
  const nonce = randomBytes(12);
  const sealed = sm4GcmEncrypt(
    key,
    nonce,
    Buffer.from(JSON.stringify(entries), 'utf8'),
    envelopeAad(firstSeq, lastSeq),
  );
  return {
    version: 1,
    keyId,
    nonce: toHex(nonce),
    ciphertext: Buffer.from(sealed.ciphertext).toString('base64'),
    tag: toHex(sealed.tag),
    firstSeq,
    lastSeq,
    resend,
  };
}

export interface ShipperOptions {
  store: Store;
  url: string;
  keyId: string;
  key: Uint8Array;
  batch: number;
  intervalMs: number;
  maxBackoffMs: number;
  timeoutMs: number;
  logger?: Logger;
  /** Called after each acknowledged batch (tests, metrics). */
  onShipped?: (e: Envelope) => void;
}

export class Shipper {
  readonly #o: ShipperOptions;
  readonly #owner = randomUUID();
  #stopped = false;
  #wake: (() => void) | null = null;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;

  constructor(o: ShipperOptions) {
    this.#o = o;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Lets a POST in flight finish (at most timeoutMs), so its answer moves the cursor: no resend after a restart. */
  async close(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    // Hand the lease back, so another process need not wait for it to expire.
    await this.#o.store
      .execute('UPDATE audit_ship SET owner = NULL WHERE id = ? AND owner = ?', [this.#o.url, this.#owner])
      .catch(() => {});
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #run(): Promise<void> {
    const { store, url, intervalMs, maxBackoffMs } = this.#o;
    let backoff = intervalMs;
    await store
      .execute(
        'INSERT INTO audit_ship (id, acked_seq, attempted_seq, owner, lease_until, updated_at) VALUES (?, 0, 0, NULL, 0, ?) ON CONFLICT (id) DO NOTHING',
        [url, Date.now()],
      )
      .catch(() => {});
    while (!this.#stopped) {
      let wait = intervalMs;
      try {
        const sent = await this.#once();
        backoff = intervalMs;
        if (sent) wait = 0;
      } catch (err) {
        this.#o.logger?.warn(
          {
            code: (err as KapokError).code ?? 'KAPOK_AUDIT_SHIP_FAILED',
            reason: messageOf(err),
            retryInMs: backoff,
          },
          'audit: shipping failed; retrying',
        );
        wait = backoff;
        backoff = Math.min(backoff * 2, maxBackoffMs);
      }
      if (wait > 0 && !this.#stopped) await this.#sleep(wait);
    }
  }

  /** One batch: true when one was acknowledged, false when there was nothing to send (or no lease). */
  async #once(): Promise<boolean> {
    const { store, url } = this.#o;
    const now = Date.now();
    const lease = Math.max(30_000, 3 * this.#o.intervalMs + this.#o.timeoutMs);
    const got = await store.execute(
      'UPDATE audit_ship SET owner = ?, lease_until = ? WHERE id = ? AND (owner IS NULL OR owner = ? OR lease_until < ?)',
      [this.#owner, now + lease, url, this.#owner, now],
    );
    if (got.rowCount === 0) return false;
    const [cur] = await store.query<{ acked_seq: number | bigint; attempted_seq: number | bigint }>(
      'SELECT acked_seq, attempted_seq FROM audit_ship WHERE id = ?',
      [url],
    );
    const acked = Number(cur?.acked_seq ?? 0);
    const attempted = Number(cur?.attempted_seq ?? 0);
    const page = await entryPages(store, acked + 1, this.#o.batch).next();
    const entries = page.done ? [] : page.value;
    if (entries.length === 0) return false;
    const env = sealBatch(this.#o.key, this.#o.keyId, entries, (entries[0] as AuditEntry).seq <= attempted);
    if (env.lastSeq > attempted)
      await store.execute('UPDATE audit_ship SET attempted_seq = ?, updated_at = ? WHERE id = ?', [
        env.lastSeq,
        now,
        url,
      ]);
    await this.#post(env);
    await store.execute(
      'UPDATE audit_ship SET acked_seq = ?, updated_at = ? WHERE id = ? AND acked_seq < ?',
      [env.lastSeq, Date.now(), url, env.lastSeq],
    );
    this.#o.onShipped?.(env);
    return true;
  }

  async #post(env: Envelope): Promise<void> {
    this.#abort = new AbortController();
    const timer = setTimeout(() => this.#abort?.abort(), this.#o.timeoutMs);
    try {
      const res = await fetch(this.#o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(env),
        signal: this.#abort.signal,
      });
      await res.arrayBuffer().catch(() => {});
      if (!res.ok)
        throw new KapokError(
          'KAPOK_AUDIT_SHIP_FAILED',
          `audit centre answered ${res.status} to batch ${env.firstSeq}..${env.lastSeq}`,
        );
    } catch (err) {
      if (err instanceof KapokError) throw err;
      throw new KapokError(
        'KAPOK_AUDIT_SHIP_FAILED',
        `audit centre unreachable for batch ${env.firstSeq}..${env.lastSeq}: ${messageOf(err)}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      this.#abort = null;
    }
  }
}
