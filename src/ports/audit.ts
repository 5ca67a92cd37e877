import type { AdminActEvent } from '../core/http/admin-auth.js';

/**
 * The audit trail (docs/audit.md): a tamper-evident record of every administrative act. The audit
 * capability provides it, starts before every other capability, and is absent when audit.enabled is
 * false: a capability then records nothing (`ctx.ports.audit?.record(...)`).
 */

export type AuditOutcome = 'ok' | 'denied' | 'failed';

/** One act, as a capability or the wiring point describes it. Never a secret: no token, key or KEK. */
export interface AuditRecord {
  /** Admin token *name*, `loopback`, `cli:user@host`, or `system` (start and stop). */
  actor: string;
  /** A stable dotted name: `gateway.key.create`, `admin.auth.denied`, `kapok.start` (docs/audit.md). */
  action: string;
  outcome: AuditOutcome;
  /** What the act was on: a key id, a device serial, a model name; null when none. */
  target?: string | null;
  /** The client's address, when there is one. */
  ip?: string | null;
  requestId?: string | null;
}

export interface AuditTrail {
  /** Appends one entry; resolves once it is durable in the Store (group commit: many per transaction). */
  record(r: AuditRecord): Promise<void>;
  /** Records an HTTP admin act or refusal as the admin guard reports it (action named from its route). */
  recordAdminAct(e: AdminActEvent): Promise<void>;
}
