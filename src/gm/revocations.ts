import type { Logger } from '../core/log.js';
import type { DeviceRegistry } from './devices.js';

/** Look back this far each poll: clocks of processes sharing the Store may differ a little. */
const SKEW_MS = 30_000;
/** Rows per poll; a full page is followed from its last row at the next poll. */
const PAGE = 1000;

/**
 * Revocations made by any process (the CLI writes the Store directly), the fallback of the
 * gm.device.revoked event for when the bus is down: one indexed query each pollMs
 * for rows revoked in the last SKEW_MS, each serial reported once. The timer
 * runs only while there are listeners, and a poll never overlaps the previous one.
 */
export class RevocationPoll {
  readonly #listeners = new Set<(serial: string) => void>();
  /** Serials already reported, by revocation time (pruned past the look-back). */
  readonly #seen = new Map<string, number>();
  /** Where the next poll starts when the last one filled a page. */
  #page: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly registry: Pick<DeviceRegistry, 'revokedSince'>,
    private readonly logger: Logger,
    /** gm.revocationPollMs: the fallback when the event bus (gm.device.revoked) is down. */
    private readonly pollMs = 1000,
  ) {}

  add(listener: (serial: string) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.poll(), this.pollMs);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.close();
    };
  }

  /** One poll (exported for tests); reports serials revoked since the last one. */
  async poll(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const recent = Date.now() - SKEW_MS;
      const since = this.#page ?? recent;
      const rows = await this.registry.revokedSince(since, PAGE);
      this.#page = rows.length === PAGE ? rows[rows.length - 1]?.revokedAt : undefined;
      for (const [s, at] of this.#seen) if (at < Math.min(since, recent)) this.#seen.delete(s);
      for (const r of rows) {
        if (this.#seen.has(r.serial)) continue;
        this.#seen.set(r.serial, r.revokedAt);
        for (const l of this.#listeners) l(r.serial);
      }
    } catch (err) {
      this.logger.warn({ reason: (err as Error).message }, 'gm revocation poll failed; retried in a second');
    } finally {
      this.#busy = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
