import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { loadOrCreateSigningKey } from '../../src/audit/keys.js';
import { AuditLog } from '../../src/audit/log.js';
import { AUDIT_MIGRATIONS } from '../../src/audit/migrations.js';
import type { Store } from '../../src/ports/store.js';
import { tmpDir } from '../helpers/tmp.js';

export const KEK = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));

/** A checkpointing AuditLog on `store` (migrated, key created under KEK). */
export async function openLog(store: Store, every = 1000, batchMax = 500): Promise<AuditLog> {
  await store.migrate(AUDIT_MIGRATIONS);
  const key = await loadOrCreateSigningKey(store, KEK);
  return new AuditLog({ store, batchMax, checkpoint: { key, every, intervalMs: 3_600_000 } });
}

/** A fresh SQLite store holding `n` entries written concurrently, checkpointed every `every`, closed cleanly. */
export async function filledStore(n: number, every = 1000): Promise<Store> {
  const store = await createSqliteStore({ file: `${tmpDir('kapok-audit-')}/a.db` });
  const log = await openLog(store, every);
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      log.record({
        actor: `admin-${i % 3}`,
        action: 'gateway.key.create',
        outcome: 'ok',
        target: `k${i}`,
        ip: '127.0.0.1',
      }),
    ),
  );
  await log.close();
  return store;
}
