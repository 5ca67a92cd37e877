import type { AdminActEvent } from '../core/http/admin-auth.js';
import type { AuditRecord } from '../ports/audit.js';

/**
 * Stable action names of HTTP admin acts (docs/audit.md#actions), by the guard's scope (its config
 * key's first part) and the route as registered. `target` names where the act's object is found:
 * a path parameter, or a field of the JSON body (an id the caller chose, never a secret).
 */
const HTTP_ACTIONS: Record<string, Record<string, { action: string; param?: string; body?: string }>> = {
  gateway: {
    'POST /keys': { action: 'gateway.key.create', body: 'name' },
    'DELETE /keys/:id': { action: 'gateway.key.revoke', param: 'id' },
  },
  gm: {
    'POST /devices': { action: 'gm.device.register', body: 'serial' },
    'DELETE /devices/:serial': { action: 'gm.device.revoke', param: 'serial' },
    'POST /devices/:serial/reissue': { action: 'gm.device.reissue', param: 'serial' },
  },
  inference: {
    'POST /repository/models/:model/load': { action: 'inference.model.load', param: 'model' },
    'POST /repository/models/:model/unload': { action: 'inference.model.unload', param: 'model' },
  },
  saga: {
    'POST /transactions': { action: 'saga.transaction.create', body: 'gid' },
    'POST /transactions/:gid/submit': { action: 'saga.transaction.submit', param: 'gid' },
    'POST /transactions/:gid/retry': { action: 'saga.transaction.retry', param: 'gid' },
    'POST /transactions/:gid/skip': { action: 'saga.transaction.skip', param: 'gid' },
    'POST /transactions/:gid/compensate': { action: 'saga.transaction.compensate', param: 'gid' },
  },
  v2x: {
    'PUT /zones/:id': { action: 'v2x.zone.put', param: 'id' },
    'DELETE /zones/:id': { action: 'v2x.zone.delete', param: 'id' },
    'POST /messages': { action: 'v2x.messages.submit' },
  },
  jobs: {
    'POST /': { action: 'jobs.job.submit', body: 'name' },
    'POST /:id/cancel': { action: 'jobs.job.cancel', param: 'id' },
    'POST /:id/retry': { action: 'jobs.job.retry', param: 'id' },
    'POST /:id/tasks/:task/cancel': { action: 'jobs.task.cancel', param: 'id' },
    'POST /:id/tasks/:task/checkpoints': { action: 'jobs.task.checkpoint', param: 'id' },
  },
};

/** The audit record of an admin act or refusal the guard reported. */
export function adminActRecord(e: AdminActEvent): AuditRecord {
  const body = e.body;
  const scope = e.scope.split('.')[0] as string;
  const known = HTTP_ACTIONS[scope]?.[e.route];
  if (e.denied)
    return {
      actor: e.actor ?? 'unauthenticated',
      action: 'admin.auth.denied',
      outcome: 'denied',
      target: `${scope}:${known?.action ?? e.route}`,
      ip: e.ip ?? null,
      requestId: e.requestId,
    };
  let target: string | null = null;
  if (known?.param) target = e.params[known.param] ?? null;
  else if (known?.body && body && typeof body === 'object') {
    const v = (body as Record<string, unknown>)[known.body];
    target = typeof v === 'string' ? v : null;
  }
  return {
    actor: e.actor ?? 'unauthenticated',
    // An act with no name of its own yet (a route added later) is still recorded, by scope and method.
    action: known?.action ?? `${scope}.${e.method.toLowerCase()}`,
    outcome: e.status < 400 ? 'ok' : 'failed',
    target: known ? target : e.route,
    ip: e.ip ?? null,
    requestId: e.requestId,
  };
}
