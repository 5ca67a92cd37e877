import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import { canonicalJson } from '../src/audit/canonical.js';
import { type AuditEntry, entryBody, GENESIS_HASH } from '../src/audit/chain.js';
import { loadOrCreateSigningKey } from '../src/audit/keys.js';
import { AuditLog } from '../src/audit/log.js';
import { AUDIT_MIGRATIONS } from '../src/audit/migrations.js';
import { entryPages, verifyStore } from '../src/audit/reader.js';
import { tempDir } from './lib.js';

/**
 * The audit trail (docs/audit.md#performance), each next to a baseline measured in the same run:
 * - appends/s: concurrent record() calls (group commit, SM3 chaining, checkpoints every 1,000) on
 *   SQLite, against a bare better-sqlite3 loop inserting the same rows in transactions of the same size;
 * - verify entries/s over VERIFY_N entries read back from the Store, against bare SM3 over the same
 *   canonical JSON (no reads, no checks). 1,000,000 entries ≤ 60 s is extrapolated from VERIFY_N.
 */

const APPENDS = 20_000;
const CONCURRENCY = 1000;
const VERIFY_N = 100_000;
const KEK = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));

async function appendsPerSec(dir: string, n: number): Promise<{ perSec: number; file: string }> {
  const file = `${dir}/audit-${n}.db`;
  const store = await createSqliteStore({ file });
  await store.migrate(AUDIT_MIGRATIONS);
  const key = await loadOrCreateSigningKey(store, KEK);
  const log = new AuditLog({ store, batchMax: 500, checkpoint: { key, every: 1000, intervalMs: 60_000 } });
  let i = 0;
  const worker = async () => {
    while (i < n) {
      const k = i++;
      await log.record({
        actor: 'bench-admin',
        action: 'gateway.key.create',
        outcome: 'ok',
        target: `key-${k}`,
        ip: '10.0.0.1',
        requestId: `req-${k}`,
      });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const perSec = Math.round((n * 1000) / (performance.now() - t0));
  await log.close();
  await store.close();
  return { perSec, file };
}

function bareInsertsPerSec(dir: string, n: number): number {
  const db = new Database(`${dir}/bare.db`);
  db.pragma('journal_mode = WAL');
  db.exec(
    'CREATE TABLE t (seq INTEGER PRIMARY KEY, time INTEGER, actor TEXT, ip TEXT, action TEXT, target TEXT, outcome TEXT, request_id TEXT, hash TEXT)',
  );
  const ins = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const batch = db.transaction((from: number, to: number) => {
    for (let k = from; k < to; k++)
      ins.run(
        k + 1,
        Date.now(),
        'bench-admin',
        '10.0.0.1',
        'gateway.key.create',
        `key-${k}`,
        'ok',
        `req-${k}`,
        'f'.repeat(64),
      );
  });
  const t0 = performance.now();
  for (let k = 0; k < n; k += 500) batch(k, Math.min(n, k + 500));
  const perSec = Math.round((n * 1000) / (performance.now() - t0));
  db.close();
  return perSec;
}

export async function audit(): Promise<unknown> {
  const { dir, remove } = tempDir();
  try {
    const bare = bareInsertsPerSec(dir, APPENDS);
    const { perSec } = await appendsPerSec(dir, APPENDS);

    const { file } = await appendsPerSec(dir, VERIFY_N);
    const store = await createSqliteStore({ file });
    const t0 = performance.now();
    const v = await verifyStore(store);
    const verifyMs = performance.now() - t0;
    if (!v.ok) throw new Error(`bench chain does not verify: ${v.problem?.message}`);
    const entries: AuditEntry[] = [];
    for await (const page of entryPages(store, 1)) entries.push(...page);
    await store.close();
    const t1 = performance.now();
    let prev = Buffer.from(GENESIS_HASH, 'hex');
    for (const e of entries)
      prev = createHash('sm3')
        .update(prev)
        .update(canonicalJson(entryBody(e)))
        .digest();
    const bareSm3Ms = performance.now() - t1;
    const verifyPerSec = Math.round((VERIFY_N * 1000) / verifyMs);
    return {
      appends: {
        n: APPENDS,
        concurrency: CONCURRENCY,
        perSec,
        baselineBareInsertsPerSec: bare,
        ratio: Math.round((perSec / bare) * 100) / 100,
        target: '>= 5000/s',
      },
      verify: {
        n: VERIFY_N,
        checkpoints: v.checkpoints,
        perSec: verifyPerSec,
        baselineBareSm3PerSec: Math.round((VERIFY_N * 1000) / bareSm3Ms),
        ratio: Math.round((verifyMs / bareSm3Ms) * 100) / 100,
        extrapolated1MSeconds: Math.round(1_000_000 / verifyPerSec),
        target: '1,000,000 entries <= 60 s (extrapolated from n)',
      },
    };
  } finally {
    remove();
  }
}
