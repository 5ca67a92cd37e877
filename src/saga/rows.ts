import type { Mode, Phase } from './spec.js';

/** Rows of saga_tx and saga_op as read back (docs/saga.md#states). */

export const TX_STATES = [
  'prepared',
  'running',
  'confirming',
  'compensating',
  'succeeded',
  'aborted',
  'dead',
] as const;
export type TxState = (typeof TX_STATES)[number];
/** States a coordinator drives; the rest are final (dead waits for a person). */
export const ACTIVE: readonly TxState[] = ['prepared', 'running', 'confirming', 'compensating'];
export const ACTIVE_SQL = `('${ACTIVE.join("','")}')`;

export type OpState = 'pending' | 'calling' | 'succeeded' | 'failed' | 'skipped' | 'dead';

export interface TxRow {
  gid: string;
  mode: Mode;
  state: TxState;
  body_hash: string;
  spec: string;
  pass_headers: string;
  created_at: number;
  updated_at: number;
  deadline: number;
  next_at: number;
  lease_owner: string | null;
  lease_until: number;
  reason: string | null;
}

export interface OpRow {
  gid: string;
  branch: string;
  op: string;
  phase: Phase;
  stage: number;
  target: string;
  url: string;
  payload: string;
  timeout_ms: number;
  late_confirm: string | null;
  state: OpState;
  attempts: number;
  next_at: number;
  last_error: string | null;
  updated_at: number;
}

/** A transaction as the API and the CLI show it (no pass-through header values: they may be sessions). */
export function txView(t: TxRow, ops?: OpRow[]): Record<string, unknown> {
  return {
    gid: t.gid,
    mode: t.mode,
    state: t.state,
    reason: t.reason,
    createdAt: new Date(Number(t.created_at)).toISOString(),
    updatedAt: new Date(Number(t.updated_at)).toISOString(),
    deadline: new Date(Number(t.deadline)).toISOString(),
    nextAt: new Date(Number(t.next_at)).toISOString(),
    ...(ops
      ? {
          branches: ops.map((o) => ({
            branch: o.branch,
            op: o.op,
            phase: o.phase,
            stage: Number(o.stage),
            target: o.target,
            state: o.state,
            attempts: Number(o.attempts),
            nextAt: new Date(Number(o.next_at)).toISOString(),
            lastError: o.last_error,
          })),
        }
      : {}),
  };
}
