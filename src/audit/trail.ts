import { readHexKey } from '../crypto/key-file.js';
import type { AuditTrail } from '../ports/audit.js';
import type { Store } from '../ports/store.js';
import { adminActRecord } from './actions.js';
import type { AuditConfig } from './config.js';
import { AuditLog, type AuditLogOptions } from './log.js';
import { AUDIT_MIGRATIONS } from './migrations.js';

/** The AuditTrail port over an AuditLog. */
export function trailOf(log: AuditLog): AuditTrail & { close(): Promise<void> } {
  return {
    record: (r) => log.record(r),
    recordAdminAct: (e) => log.record(adminActRecord(e)),
    close: () => log.close(),
  };
}

export const readAuditKek = (c: Pick<AuditConfig, 'kek' | 'kekFile'>): Uint8Array =>
  readHexKey({
    value: c.kek,
    file: c.kekFile,
    key: 'audit.kek',
    env: 'KAPOK_AUDIT__KEK',
    bytes: 16,
    fileError: 'KAPOK_AUDIT_KEK_FILE',
  });

export const readShipKey = (c: Pick<AuditConfig['ship'], 'key' | 'keyFile'>): Uint8Array =>
  readHexKey({
    value: c.key,
    file: c.keyFile,
    key: 'audit.ship.key',
    env: 'KAPOK_AUDIT__SHIP__KEY',
    bytes: 16,
    fileError: 'KAPOK_AUDIT_KEK_FILE',
  });

/**
 * The trail a `kapok` command records its acts in (actor `cli:user@host`): appends only; the running
 * kapok (or the next start) signs the checkpoint that covers them.
 */
export async function openAuditTrail(
  store: Store,
  cfg: Pick<AuditConfig, 'batchMax'>,
  opts: Partial<AuditLogOptions> = {},
): Promise<AuditTrail & { close(): Promise<void> }> {
  await store.migrate(AUDIT_MIGRATIONS);
  return trailOf(new AuditLog({ store, batchMax: cfg.batchMax, ...opts }));
}
