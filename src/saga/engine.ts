import { randomUUID } from 'node:crypto';
import { isKapokError, KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AuditTrail } from '../ports/audit.js';
import type { EventBus } from '../ports/events.js';
import type { Store } from '../ports/store.js';
import type { SagaConfig } from './config.js';
import { ACTIVE_SQL, type OpRow, type TxRow, type TxState } from './rows.js';
import type { TxPlan, TxSpec } from './spec.js';
import type { CallOutcome, Transport } from './transport.js';

/**
 * The coordinator. Each transaction is a small state machine over its rows; a step reads the rows,
 * writes what it is about to do, then does it, so a coordinator killed anywhere leaves rows another
 * (or the restarted one) continues from once the lease (saga.leaseMs) runs out. Calls of a branch
 * may therefore repeat: branch services make them idempotent with the barrier (src/saga/barrier.ts).
 */

export interface CoordinatorDeps {
  store: Store;
  config: SagaConfig;
  transport: Transport;
  events: EventBus | null;
  logger: Logger;
  audit?: () => AuditTrail | undefined;
  /** Counts what happened, for metrics. */
  onCall?: (o: CallOutcome['kind'], ms: number) => void;
  onFinal?: (state: TxState) => void;
  onDeadLetter?: () => void;
}

type Step = { again: true } | { wait: number } | { done: true };
const AGAIN: Step = { again: true };
const DONE: Step = { done: true };

export class Coordinator {
  readonly owner = `saga-${randomUUID().slice(0, 8)}`;
  readonly #d: CoordinatorDeps;
  readonly #active = new Map<string, Promise<void>>();
  #poller: NodeJS.Timeout | undefined;
  #renewer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped = false;

  constructor(d: CoordinatorDeps) {
    this.#d = d;
  }

  /** Stores a new transaction (or finds the same one) and starts driving it. */
  async submit(plan: TxPlan, passHeaders: Record<string, string>): Promise<{ created: boolean; tx: TxRow }> {
    const { store, config } = this.#d;
    const now = Date.now();
    const spec = plan.spec;
    const msg = spec.mode === 'msg';
    // Driven here at once while under saga.concurrency; otherwise left to the poller (no lease).
    const kick = !msg && this.#active.size < config.concurrency && !this.#stopped;
    const tx: TxRow = {
      gid: spec.gid,
      mode: spec.mode,
      state: msg ? 'prepared' : 'running',
      body_hash: plan.bodyHash,
      spec: JSON.stringify(spec),
      pass_headers: JSON.stringify(passHeaders),
      created_at: now,
      updated_at: now,
      deadline: now + plan.timeoutMs,
      // A prepared message is asked about (queryPrepared) if nobody submits it in time.
      next_at: msg ? now + config.coordinatorTimeoutMs : now,
      lease_owner: kick ? this.owner : null,
      lease_until: kick ? now + config.leaseMs : 0,
      reason: null,
    };
    try {
      await store.transaction(async (q) => {
        await q.execute(
          `INSERT INTO saga_tx (gid, mode, state, body_hash, spec, pass_headers, created_at, updated_at, deadline, next_at, lease_owner, lease_until, reason)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
          [
            tx.gid,
            tx.mode,
            tx.state,
            tx.body_hash,
            tx.spec,
            tx.pass_headers,
            now,
            now,
            tx.deadline,
            tx.next_at,
            tx.lease_owner,
            tx.lease_until,
          ],
        );
        // One statement for every operation: a submit is two round trips, not one per operation.
        const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, NULL, ?)";
        await q.execute(
          `INSERT INTO saga_op (gid, branch, op, phase, stage, target, url, payload, timeout_ms, late_confirm, state, attempts, next_at, last_error, updated_at)
           VALUES ${plan.ops.map(() => row).join(', ')}`,
          plan.ops.flatMap((o) => [
            tx.gid,
            o.branch,
            o.op,
            o.phase,
            o.stage,
            o.target.name,
            o.url,
            JSON.stringify(o.payload),
            o.timeoutMs,
            o.lateConfirm,
            now,
            now,
          ]),
        );
      });
    } catch (err) {
      if (!isKapokError(err, 'KAPOK_STORE_CONFLICT')) throw err;
      const existing = await this.get(spec.gid);
      if (!existing) throw err;
      if (existing.body_hash !== plan.bodyHash)
        throw new KapokError(
          'KAPOK_SAGA_GID_CONFLICT',
          `gid ${spec.gid} already names a transaction with another body: choose a new gid, or resend the same body to read it`,
        );
      return { created: false, tx: existing };
    }
    if (kick) this.#kick(tx.gid);
    return { created: true, tx };
  }

  async get(gid: string): Promise<TxRow | undefined> {
    const [row] = await this.#d.store.query<TxRow>('SELECT * FROM saga_tx WHERE gid = ?', [gid]);
    return row;
  }

  /** msg: the prepared message is to be sent; its actions run now. */
  async submitPrepared(gid: string): Promise<TxRow> {
    const now = Date.now();
    const r = await this.#d.store.execute(
      `UPDATE saga_tx SET state = 'running', next_at = ?, updated_at = ? WHERE gid = ? AND state = 'prepared'`,
      [now, now, gid],
    );
    const tx = await this.get(gid);
    if (!tx) throw new KapokError('KAPOK_SAGA_NOT_FOUND', `no transaction ${gid}: check the gid`);
    if (r.rowCount === 0 && !(tx.mode === 'msg' && tx.state !== 'aborted'))
      throw new KapokError(
        'KAPOK_SAGA_STATE',
        `transaction ${gid} is ${tx.state} (mode ${tx.mode}): only a prepared msg can be submitted`,
      );
    this.#kick(gid);
    return tx;
  }

  start(): void {
    const { config } = this.#d;
    this.#poller = setInterval(() => void this.#poll(), config.pollMs);
    this.#renewer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(config.leaseMs / 3)));
    void this.#poll();
  }

  /** Stops taking work, waits (bounded) for steps in flight, and hands leases back. */
  async stop(waitMs = 5000): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#poller);
    clearInterval(this.#renewer);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#active.values()]),
      new Promise((r) => (t = setTimeout(r, waitMs))),
    ]);
    clearTimeout(t);
    await this.#d.store
      .execute('UPDATE saga_tx SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?', [this.owner])
      .catch(() => {});
  }

  /** Resolves once the transaction is in a final state (tests, `?wait=`); false on timeout. */
  async settled(gid: string, timeoutMs: number): Promise<TxRow | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const tx = await this.get(gid);
      if (!tx || !ACTIVE_SQL.includes(`'${tx.state}'`) || Date.now() > end) return tx;
      await (this.#active.get(gid) ?? new Promise((r) => setTimeout(r, 20)));
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  get activeCount(): number {
    return this.#active.size;
  }

  #kick(gid: string): void {
    if (this.#stopped || this.#active.has(gid)) return;
    const p = this.#drive(gid).finally(() => this.#active.delete(gid));
    this.#active.set(gid, p);
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    const { store, config } = this.#d;
    try {
      const room = config.concurrency - this.#active.size;
      if (room > 0) {
        const now = Date.now();
        const due = await store.query<{ gid: string }>(
          `SELECT gid FROM saga_tx WHERE state IN ${ACTIVE_SQL} AND next_at <= ? AND lease_until < ? ORDER BY next_at LIMIT ?`,
          [now, now, room],
        );
        for (const { gid } of due) {
          if (this.#active.has(gid) || this.#stopped) continue;
          const r = await store.execute(
            `UPDATE saga_tx SET lease_owner = ?, lease_until = ? WHERE gid = ? AND lease_until < ? AND state IN ${ACTIVE_SQL}`,
            [this.owner, Date.now() + config.leaseMs, gid, Date.now()],
          );
          if (r.rowCount === 1) this.#kick(gid);
        }
      }
      await this.#republish();
    } catch (err) {
      if (!this.#stopped) this.#d.logger.warn({ reason: messageOf(err) }, 'saga: poll failed');
    } finally {
      this.#polling = false;
    }
  }

  async #renew(): Promise<void> {
    if (this.#active.size === 0) return;
    await this.#d.store
      .execute(`UPDATE saga_tx SET lease_until = ? WHERE lease_owner = ? AND state IN ${ACTIVE_SQL}`, [
        Date.now() + this.#d.config.leaseMs,
        this.owner,
      ])
      .catch((err) => this.#d.logger.warn({ reason: messageOf(err) }, 'saga: lease renewal failed'));
  }

  async #drive(gid: string): Promise<void> {
    let nextAt = Date.now();
    try {
      for (let i = 0; i < 10_000 && !this.#stopped; i++) {
        const s = await this.#step(gid);
        if ('again' in s) continue;
        if ('wait' in s) nextAt = s.wait;
        break;
      }
    } catch (err) {
      // Left to the poller: the rows say where it stopped.
      nextAt = Date.now() + this.#d.config.retry.baseMs;
      if (!this.#stopped)
        this.#d.logger.warn({ gid, reason: messageOf(err) }, 'saga: step failed; retried later');
    }
    await this.#d.store
      .execute(
        'UPDATE saga_tx SET lease_owner = NULL, lease_until = 0, next_at = ? WHERE gid = ? AND lease_owner = ?',
        [nextAt, gid, this.owner],
      )
      .catch(() => {});
  }

  async #step(gid: string): Promise<Step> {
    const { store } = this.#d;
    const tx = await this.get(gid);
    if (!tx || !ACTIVE_SQL.includes(`'${tx.state}'`)) return DONE;
    const ops = await store.query<OpRow>('SELECT * FROM saga_op WHERE gid = ? ORDER BY stage, branch, op', [
      gid,
    ]);
    const now = Date.now();
    const spec = JSON.parse(tx.spec) as TxSpec;
    const of = (phase: string) => ops.filter((o) => o.phase === phase);
    const open = (o: OpRow) => o.state === 'pending' || o.state === 'calling';
    switch (tx.state) {
      case 'prepared': {
        const q = of('query')[0];
        if (!q || Number(tx.next_at) > now) return { wait: Number(tx.next_at) };
        if (q.state === 'succeeded') return this.#move(tx, 'running', null);
        if (q.state === 'failed')
          return this.#final(tx, 'aborted', `queryPrepared: ${q.last_error ?? 'not sent'}`);
        if (q.state === 'dead') return this.#final(tx, 'dead', q.last_error);
        return this.#callDue(tx, spec, [q]);
      }
      case 'running': {
        if (tx.mode !== 'msg' && now >= Number(tx.deadline))
          return this.#toBackward(
            tx,
            ops,
            `global timeout: not done within ${Number(tx.deadline) - Number(tx.created_at)} ms`,
          );
        const forward = of('forward');
        const stage = forward.find((o) => o.state !== 'succeeded' && o.state !== 'skipped')?.stage;
        if (stage === undefined)
          return this.#move(tx, tx.mode === 'tcc' || tx.mode === 'eos' ? 'confirming' : 'succeeded', null);
        const group = forward.filter((o) => o.stage === stage);
        const failed = group.find((o) => o.state === 'failed');
        if (failed)
          return this.#toBackward(tx, ops, `${failed.branch}.${failed.op}: ${failed.last_error ?? 'failed'}`);
        const dead = group.find((o) => o.state === 'dead');
        if (dead && !group.some(open))
          return this.#final(tx, 'dead', `${dead.branch}.${dead.op}: ${dead.last_error}`);
        return this.#callDue(tx, spec, group.filter(open));
      }
      case 'confirming': {
        const left = of('confirm').filter(open);
        if (left.length === 0) {
          const dead = of('confirm').find((o) => o.state === 'dead');
          return dead
            ? this.#final(tx, 'dead', `${dead.branch}.${dead.op}: ${dead.last_error}`)
            : this.#final(tx, 'succeeded', null);
        }
        return this.#callDue(tx, spec, left);
      }
      case 'compensating': {
        const backward = of('backward');
        const left = backward.filter(open);
        if (left.length === 0) {
          const dead = backward.find((o) => o.state === 'dead');
          return dead
            ? this.#final(tx, 'dead', `${dead.branch}.${dead.op}: ${dead.last_error}`)
            : this.#final(tx, 'aborted', tx.reason);
        }
        // Saga: undo in reverse order, a stage at a time; tcc and eos cancel every tried branch at once.
        const top = Math.max(...left.map((o) => Number(o.stage)));
        return this.#callDue(
          tx,
          spec,
          tx.mode === 'saga' ? left.filter((o) => Number(o.stage) === top) : left,
        );
      }
      default:
        return DONE;
    }
  }

  async #callDue(tx: TxRow, spec: TxSpec, ops: OpRow[]): Promise<Step> {
    const now = Date.now();
    const due = ops.filter((o) => Number(o.next_at) <= now);
    // The global deadline matters only to a forward phase (past it, the saga turns to compensation).
    const deadline =
      tx.state === 'running' && tx.mode !== 'msg' ? Number(tx.deadline) : Number.POSITIVE_INFINITY;
    if (due.length === 0) return { wait: Math.min(...ops.map((o) => Number(o.next_at)), deadline) };
    await Promise.all(due.map((o) => this.#call(tx, spec, o)));
    return AGAIN;
  }

  async #call(tx: TxRow, spec: TxSpec, o: OpRow): Promise<void> {
    const { store, config, transport } = this.#d;
    const attempts = Number(o.attempts) + 1;
    const key = [tx.gid, o.branch, o.op] as const;
    // Written before the call: a crash during it leaves an attempt counted and the op due again.
    await store.execute(
      `UPDATE saga_op SET state = 'calling', attempts = ?, next_at = ?, updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
      [attempts, Date.now(), Date.now(), ...key],
    );
    const target = config.targets.find((t) => t.name === o.target);
    const t0 = performance.now();
    const out: CallOutcome = target
      ? await transport.call({
          gid: tx.gid,
          branch: o.branch,
          op: o.op,
          target,
          url: o.url,
          payload: JSON.parse(o.payload),
          timeoutMs: Number(o.timeout_ms),
          passHeaders: JSON.parse(tx.pass_headers),
        })
      : {
          kind: 'retry',
          code: 'KAPOK_SAGA_BRANCH_UNAVAILABLE',
          message: `target ${o.target} is no longer in saga.targets`,
        };
    this.#d.onCall?.(out.kind, performance.now() - t0);
    const now = Date.now();
    if (out.kind === 'ok') {
      await store.execute(
        `UPDATE saga_op SET state = 'succeeded', last_error = NULL, updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
        [now, ...key],
      );
      return;
    }
    const error = `${out.code}: ${out.message}`.slice(0, 500);
    const forward = (o.phase === 'forward' && tx.mode !== 'msg') || o.phase === 'query';
    const max = Math.min(spec.maxAttempts ?? config.retry.maxAttempts, 1000);
    const lateGiveUp =
      o.phase === 'confirm' && o.late_confirm === 'dead-letter' && out.code === 'KAPOK_SAGA_BRANCH_TIMEOUT';
    let state: 'failed' | 'dead' | 'pending' = 'pending';
    if (forward && (out.kind === 'refused' || attempts >= max)) state = 'failed';
    else if (attempts >= max || lateGiveUp) state = 'dead';
    await store.execute(
      `UPDATE saga_op SET state = ?, last_error = ?, next_at = ?, updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
      [
        state,
        error,
        state === 'pending'
          ? now + backoff(attempts, spec.retryIntervalMs ?? config.retry.baseMs, config.retry.maxMs)
          : now,
        now,
        ...key,
      ],
    );
    if (state === 'dead') await this.#deadLetter(tx.gid, o, error);
  }

  /** Turns a forward phase around: what never went out is skipped, everything sent is compensated. */
  async #toBackward(tx: TxRow, ops: OpRow[], reason: string): Promise<Step> {
    const { store } = this.#d;
    const now = Date.now();
    await store.transaction(async (q) => {
      for (const f of ops.filter((o) => o.phase === 'forward')) {
        const sent = Number(f.attempts) > 0;
        if (!sent) {
          await q.execute(
            `UPDATE saga_op SET state = 'skipped', updated_at = ? WHERE gid = ? AND branch = ? AND phase IN ('forward', 'backward', 'confirm')`,
            [now, tx.gid, f.branch],
          );
        } else if (f.state === 'pending' || f.state === 'calling') {
          // Sent at least once, outcome unknown: compensated like a failure (the barrier makes that safe).
          await q.execute(
            `UPDATE saga_op SET state = 'failed', updated_at = ? WHERE gid = ? AND branch = ? AND op = ?`,
            [now, tx.gid, f.branch, f.op],
          );
        }
      }
      await q.execute(
        `UPDATE saga_tx SET state = 'compensating', reason = ?, updated_at = ? WHERE gid = ? AND state = ?`,
        [reason.slice(0, 500), now, tx.gid, tx.state],
      );
    });
    return AGAIN;
  }

  async #move(tx: TxRow, to: TxState, reason: string | null): Promise<Step> {
    if (to === 'succeeded') return this.#final(tx, to, reason);
    await this.#d.store.execute(
      `UPDATE saga_tx SET state = ?, updated_at = ?, next_at = ? WHERE gid = ? AND state = ?`,
      [to, Date.now(), Date.now(), tx.gid, tx.state],
    );
    return AGAIN;
  }

  async #final(tx: TxRow, to: TxState, reason: string | null): Promise<Step> {
    const r = await this.#d.store.execute(
      `UPDATE saga_tx SET state = ?, reason = ?, updated_at = ? WHERE gid = ? AND state = ?`,
      [to, reason?.slice(0, 500) ?? null, Date.now(), tx.gid, tx.state],
    );
    if (r.rowCount === 1) this.#d.onFinal?.(to);
    return DONE;
  }

  async #deadLetter(gid: string, o: OpRow, reason: string): Promise<void> {
    const id = randomUUID();
    await this.#d.store.execute(
      `INSERT INTO saga_dead (id, gid, branch, op, reason, created_at, published, resolved_at, resolution) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, NULL)`,
      [id, gid, o.branch, o.op, reason, Date.now()],
    );
    this.#d.onDeadLetter?.();
    this.#d.logger.error(
      { gid, branch: o.branch, op: o.op, reason, code: 'KAPOK_SAGA_DEAD_LETTER' },
      'saga: dead letter',
    );
    await this.#d
      .audit?.()
      ?.record({
        actor: 'system',
        action: 'saga.dead_letter',
        outcome: 'failed',
        target: `${gid}/${o.branch}/${o.op}`,
      })
      .catch(() => {});
    await this.#publish({ id, gid, branch: o.branch, op: o.op, reason });
  }

  /** Dead letters not yet on the event bus (a crash between the row and the publish), sent again. */
  async #republish(): Promise<void> {
    if (!this.#d.events) return;
    const rows = await this.#d.store.query<{
      id: string;
      gid: string;
      branch: string;
      op: string;
      reason: string;
    }>('SELECT id, gid, branch, op, reason FROM saga_dead WHERE published = 0 AND created_at < ? LIMIT 20', [
      Date.now() - 2000,
    ]);
    for (const r of rows) await this.#publish(r);
  }

  async #publish(d: { id: string; gid: string; branch: string; op: string; reason: string }): Promise<void> {
    if (!this.#d.events) return;
    try {
      await this.#d.events.publish('saga.dlq.added', { ...d });
      await this.#d.store.execute('UPDATE saga_dead SET published = 1 WHERE id = ?', [d.id]);
    } catch (err) {
      this.#d.logger.warn(
        { gid: d.gid, reason: messageOf(err) },
        'saga: dead letter not yet published; retried',
      );
    }
  }
}

/** Capped exponential backoff with jitter: in [d/2, d], d = min(cap, base · 2^(attempt-1)). */
export function backoff(attempt: number, baseMs: number, capMs: number): number {
  const d = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(d / 2 + Math.random() * (d / 2));
}
