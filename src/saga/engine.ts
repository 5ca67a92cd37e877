import { randomUUID } from 'node:crypto';
import { isKapokError, KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AuditTrail } from '../ports/audit.js';
import type { EventBus } from '../ports/events.js';
import type { SqlValue, Store } from '../ports/store.js';
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
  /**
   * This coordinator's lease owner, stable across restarts of one instance (events.instanceId):
   * a restarted coordinator takes its own transactions back at once instead of waiting out
   * saga.leaseMs. Absent: a fresh id (leases of a predecessor run out first).
   */
  owner?: string;
}

/** An operation's state after a call, kept until the next write of its transaction. */
interface OpPatch {
  branch: string;
  op: string;
  state: string;
  attempts: number;
  last_error: string | null;
  next_at: number;
}

type Step = { again: true } | { wait: number } | { done: true };
const AGAIN: Step = { again: true };
const DONE: Step = { done: true };

export class Coordinator {
  readonly owner: string;
  readonly #d: CoordinatorDeps;
  /**
   * Outcomes of branch calls not yet in the Store, per transaction: each is written with the next
   * write of its transaction (the next call's 'calling' mark, a phase change, the final state, the
   * lease's release), so a branch call costs one Store write, and every state change is still in
   * the Store before the call it leads to. A crash before that write leaves the operation
   * 'calling': it is called again, as after a crash during the call (the barrier makes it safe).
   */
  readonly #outcomes = new Map<string, Map<string, OpPatch>>();
  readonly #active = new Map<string, Promise<void>>();
  #poller: NodeJS.Timeout | undefined;
  #renewer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped = false;

  constructor(d: CoordinatorDeps) {
    this.#d = d;
    this.owner = d.owner ?? `saga-${randomUUID().slice(0, 8)}`;
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
    const txSql = `INSERT INTO saga_tx (gid, mode, state, body_hash, spec, pass_headers, created_at, updated_at, deadline, next_at, lease_owner, lease_until, reason)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`;
    const txParams: SqlValue[] = [
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
    ];
    // Driven here: the first forward stage, which its first step would call at once, is stored
    // already marked 'calling' with its attempt counted (what that step's write would store), so
    // the step neither reads nor writes before the calls. A crash before a call leaves it due again.
    const first = kick
      ? Math.min(...plan.ops.filter((o) => o.phase === 'forward').map((o) => o.stage))
      : Number.NaN;
    const calling = (o: (typeof plan.ops)[number]) => o.phase === 'forward' && o.stage === first;
    // One statement for every operation: a submit is two statements, not one per operation.
    const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)';
    const opsSql = `INSERT INTO saga_op (gid, branch, op, phase, stage, target, url, payload, timeout_ms, late_confirm, state, attempts, next_at, last_error, updated_at)
           VALUES ${plan.ops.map(() => row).join(', ')}`;
    const opsParams: SqlValue[] = plan.ops.flatMap((o) => [
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
      calling(o) ? 'calling' : 'pending',
      calling(o) ? 1 : 0,
      now,
      now,
    ]);
    try {
      if (store.dialect === 'postgres')
        // One data-modifying WITH: atomic as one statement, one round trip where BEGIN, two INSERTs
        // and COMMIT were four (docs/saga.md#benchmark). A taken gid still fails it as a conflict.
        await store.execute(`WITH t AS (${txSql}) ${opsSql}`, [...txParams, ...opsParams]);
      else
        await store.transaction(async (q) => {
          await q.execute(txSql, txParams);
          await q.execute(opsSql, opsParams);
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
    if (kick)
      // The rows just written are what its first step would read: that read is skipped.
      this.#kick(tx.gid, {
        calling: true,
        tx: { ...tx },
        ops: plan.ops
          .map(
            (o): OpRow => ({
              gid: tx.gid,
              branch: o.branch,
              op: o.op,
              phase: o.phase,
              stage: o.stage,
              target: o.target.name,
              url: o.url,
              payload: JSON.stringify(o.payload),
              timeout_ms: o.timeoutMs,
              late_confirm: o.lateConfirm,
              state: calling(o) ? 'calling' : 'pending',
              attempts: calling(o) ? 1 : 0,
              next_at: now,
              last_error: null,
              updated_at: now,
            }),
          )
          // STEP_SQL's order (stage, branch, op).
          .sort((a, b) => a.stage - b.stage || cmp(a.branch, b.branch) || cmp(a.op, b.op)),
      });
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
    const { config, store } = this.#d;
    this.#poller = setInterval(() => void this.#poll(), config.pollMs);
    this.#renewer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(config.leaseMs / 3)));
    // Our own leases from before a restart (same owner): nobody drives those now, take them back
    // at once (a fresh owner would wait saga.leaseMs for them to run out).
    void store
      .execute('UPDATE saga_tx SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?', [this.owner])
      .catch((err) => this.#d.logger.warn({ reason: messageOf(err) }, 'saga: own leases not taken back'))
      .then(() => this.#poll());
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
      // Driven here: its end is awaited before the read (one read less, and no fixed sleep added
      // to every ?wait= answer); a transaction left waiting (a retry's backoff) is read every 20 ms.
      const driving = this.#active.get(gid);
      if (driving) await driving;
      const tx = await this.get(gid);
      if (!tx || !ACTIVE_SQL.includes(`'${tx.state}'`) || Date.now() > end) return tx;
      if (!this.#active.has(gid)) await new Promise((r) => setTimeout(r, 20));
    }
  }

  get activeCount(): number {
    return this.#active.size;
  }

  #kick(gid: string, first?: Snapshot): void {
    if (this.#stopped || this.#active.has(gid)) return;
    const p = this.#drive(gid, first).finally(() => this.#active.delete(gid));
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

  async #drive(gid: string, first?: Snapshot): Promise<void> {
    let nextAt = Date.now();
    try {
      for (let i = 0; i < 10_000 && !this.#stopped; i++) {
        const s = await this.#step(gid, i === 0 ? first : undefined);
        if ('again' in s) continue;
        // Final (its write released the lease), or final already: nothing to hand back.
        if ('done' in s && !this.#outcomes.has(gid)) return;
        if ('wait' in s) nextAt = s.wait;
        break;
      }
    } catch (err) {
      // Left to the poller: the rows say where it stopped.
      nextAt = Date.now() + this.#d.config.retry.baseMs;
      if (!this.#stopped)
        this.#d.logger.warn({ gid, reason: messageOf(err) }, 'saga: step failed; retried later');
    }
    await this.#write(gid, [
      [
        'UPDATE saga_tx SET lease_owner = NULL, lease_until = 0, next_at = ? WHERE gid = ? AND lease_owner = ?',
        [nextAt, gid, this.owner],
      ],
    ]).catch(() => {});
  }

  /**
   * One write of a transaction: its outcomes not yet stored, then `then` (other statements), in
   * one Store transaction when there is more than one statement. `calls` are operations about to
   * be called: marked in the same UPDATE as the outcomes.
   */
  async #write(gid: string, then: Array<[string, SqlValue[]]>, calls: OpPatch[] = []): Promise<void> {
    const pending = this.#outcomes.get(gid);
    this.#outcomes.delete(gid);
    const patches = [...(pending?.values() ?? []), ...calls];
    let stmts = patches.length ? [opsUpdate(gid, patches, Date.now()), ...then] : then;
    // PostgreSQL runs the operations' UPDATE and the transaction's as one statement (a
    // data-modifying WITH): one round trip, where BEGIN … COMMIT would be four.
    if (stmts.length === 2 && this.#d.store.dialect === 'postgres') {
      const [[a, pa], [b, pb]] = stmts as [[string, SqlValue[]], [string, SqlValue[]]];
      stmts = [[`WITH ops AS (${a}) ${b}`, [...pa, ...pb]]];
    }
    try {
      if (stmts.length === 1) {
        const [sql, params] = stmts[0] as [string, SqlValue[]];
        await this.#d.store.execute(sql, params);
      } else if (stmts.length > 1)
        await this.#d.store.transaction(async (q) => {
          for (const [sql, params] of stmts) await q.execute(sql, params);
        });
    } catch (err) {
      // Not written: kept for the next write (calls are not made when their mark failed).
      if (pending) this.#outcomes.set(gid, new Map([...pending, ...(this.#outcomes.get(gid) ?? [])]));
      throw err;
    }
  }

  async #step(gid: string, known?: Snapshot): Promise<Step> {
    const { store } = this.#d;
    let tx: TxRow;
    let ops: OpRow[];
    if (known?.calling && Date.now() < Number(known.tx.deadline)) {
      const spec = JSON.parse(known.tx.spec) as TxSpec;
      // #call counts the attempt from the row before its mark (attempts − 1).
      const due = known.ops
        .filter((o) => o.state === 'calling')
        .map((o) => ({ ...o, attempts: Number(o.attempts) - 1 }));
      await Promise.all(due.map((o) => this.#call(known.tx, spec, o)));
      return AGAIN;
    }
    if (known) ({ tx, ops } = known);
    else {
      // The transaction and its operations in one read (one round trip per step).
      const rows = await store.query<OpRow & Record<`tx_${string}`, unknown>>(STEP_SQL, [gid]);
      const first = rows[0];
      if (!first) return DONE;
      tx = Object.fromEntries(TX_COLS.map((c) => [c, first[`tx_${c}`]])) as unknown as TxRow;
      ops = rows;
    }
    if (!ACTIVE_SQL.includes(`'${tx.state}'`)) return DONE;
    // Outcomes this coordinator has not written yet are newer than the rows.
    const pending = this.#outcomes.get(gid);
    if (pending)
      for (const o of ops) {
        const p = pending.get(opKey(o));
        if (p)
          Object.assign(o, {
            state: p.state,
            attempts: p.attempts,
            last_error: p.last_error,
            next_at: p.next_at,
          });
      }
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
    // Written before the calls, with the outcomes of the previous ones: a crash during a call
    // leaves its attempt counted and the op due again.
    const t = Date.now();
    await this.#write(
      tx.gid,
      [],
      due.map((o) => ({
        branch: o.branch,
        op: o.op,
        state: 'calling',
        attempts: Number(o.attempts) + 1,
        last_error: o.last_error,
        next_at: t,
      })),
    );
    await Promise.all(due.map((o) => this.#call(tx, spec, o)));
    return AGAIN;
  }

  async #call(tx: TxRow, spec: TxSpec, o: OpRow): Promise<void> {
    const { config, transport } = this.#d;
    const attempts = Number(o.attempts) + 1;
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
    const keep = (p: Omit<OpPatch, 'branch' | 'op' | 'attempts'>) => {
      const m = this.#outcomes.get(tx.gid) ?? new Map<string, OpPatch>();
      this.#outcomes.set(tx.gid, m);
      m.set(opKey(o), { branch: o.branch, op: o.op, attempts, ...p });
    };
    if (out.kind === 'ok') {
      keep({ state: 'succeeded', last_error: null, next_at: now });
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
    keep({
      state,
      last_error: error,
      next_at:
        state === 'pending'
          ? now + backoff(attempts, spec.retryIntervalMs ?? config.retry.baseMs, config.retry.maxMs)
          : now,
    });
    // A dead letter is written at once, with the state that led to it.
    if (state === 'dead') {
      await this.#write(tx.gid, []);
      await this.#deadLetter(tx.gid, o, error);
    }
  }

  /** Turns a forward phase around: what never went out is skipped, everything sent is compensated. */
  async #toBackward(tx: TxRow, ops: OpRow[], reason: string): Promise<Step> {
    const { store } = this.#d;
    const now = Date.now();
    const pending = [...(this.#outcomes.get(tx.gid)?.values() ?? [])];
    this.#outcomes.delete(tx.gid);
    await store.transaction(async (q) => {
      if (pending.length) await q.execute(...opsUpdate(tx.gid, pending, now));
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
    await this.#write(tx.gid, [
      [
        `UPDATE saga_tx SET state = ?, updated_at = ?, next_at = ? WHERE gid = ? AND state = ?`,
        [to, Date.now(), Date.now(), tx.gid, tx.state],
      ],
    ]);
    return AGAIN;
  }

  /** The final state, the last outcomes and the lease's release: one write. */
  async #final(tx: TxRow, to: TxState, reason: string | null): Promise<Step> {
    // Read back in the same Store transaction only when it is one statement (no outcome pending).
    const sql = `UPDATE saga_tx SET state = ?, reason = ?, updated_at = ?, lease_owner = NULL, lease_until = 0 WHERE gid = ? AND state = ?`;
    const params: SqlValue[] = [to, reason?.slice(0, 500) ?? null, Date.now(), tx.gid, tx.state];
    let changed = false;
    if (!this.#outcomes.has(tx.gid)) changed = (await this.#d.store.execute(sql, params)).rowCount === 1;
    else {
      await this.#write(tx.gid, [[sql, params]]);
      changed = true; // leased by us: nobody else moves it
    }
    if (!changed) return { wait: Date.now() }; // moved by someone else: hand the lease back, look again
    this.#d.onFinal?.(to);
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

const TX_COLS = [
  'gid',
  'mode',
  'state',
  'body_hash',
  'spec',
  'pass_headers',
  'created_at',
  'updated_at',
  'deadline',
  'next_at',
  'lease_owner',
  'lease_until',
  'reason',
] as const;
const STEP_SQL = `SELECT o.*, ${TX_COLS.map((c) => `t.${c} AS tx_${c}`).join(', ')}
  FROM saga_tx t JOIN saga_op o ON o.gid = t.gid WHERE t.gid = ? ORDER BY o.stage, o.branch, o.op`;

/** A transaction's rows as the coordinator just wrote them (its first step reads nothing). */
interface Snapshot {
  tx: TxRow;
  ops: OpRow[];
  /** Its first forward stage is stored as 'calling', attempt counted: call it before any step. */
  calling?: boolean;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const opKey = (o: { branch: string; op: string }) => `${o.branch}\u0000${o.op}`;

/** One UPDATE of several operations of a transaction, each to its own values (a searched CASE). */
function opsUpdate(gid: string, ps: readonly OpPatch[], now: number): [string, SqlValue[]] {
  const when = (col: (p: OpPatch) => SqlValue, cast?: string) => {
    const params: SqlValue[] = [];
    const sql = ps
      .map((p) => {
        params.push(p.branch, p.op, col(p));
        return `WHEN branch = ? AND op = ? THEN ${cast ? `CAST(? AS ${cast})` : '?'}`;
      })
      .join(' ');
    return { sql: `CASE ${sql} END`, params };
  };
  const state = when((p) => p.state);
  const attempts = when((p) => p.attempts, 'INTEGER');
  const error = when((p) => p.last_error, 'TEXT');
  const next = when((p) => p.next_at, 'BIGINT');
  return [
    `UPDATE saga_op SET state = ${state.sql}, attempts = ${attempts.sql}, last_error = ${error.sql}, next_at = ${next.sql}, updated_at = ?
     WHERE gid = ? AND (${ps.map(() => '(branch = ? AND op = ?)').join(' OR ')})`,
    [
      ...state.params,
      ...attempts.params,
      ...error.params,
      ...next.params,
      now,
      gid,
      ...ps.flatMap((p) => [p.branch, p.op]),
    ],
  ];
}

/** Capped exponential backoff with jitter: in [d/2, d], d = min(cap, base · 2^(attempt-1)). */
export function backoff(attempt: number, baseMs: number, capMs: number): number {
  const d = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(d / 2 + Math.random() * (d / 2));
}
