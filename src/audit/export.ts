import { KapokError } from '../core/errors.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import type { Queryable } from '../ports/store.js';
import {
  type AuditEntry,
  CHECKPOINT_DOMAIN,
  CHECKPOINT_SM2_ID,
  type Checkpoint,
  GENESIS_HASH,
} from './chain.js';
import { publicKeys } from './keys.js';
import { checkpoints, entryPages, head } from './reader.js';
import { type VerifyResult, verifyChain } from './verify.js';

/**
 * The export (docs/audit.md#export): JSON lines, a header first, then every entry in seq order, each
 * checkpoint right after the entry it signs. A third party verifies it with the published public key
 * alone (`kapok audit verify --file export.jsonl --public-key <hex>`).
 */

export const EXPORT_FORMAT = 'kapok-audit-export';

export interface ExportHeader {
  type: typeof EXPORT_FORMAT;
  version: 1;
  hash: 'SM3';
  signature: 'SM2';
  sm2Id: string;
  checkpointDomain: string;
  /** Checkpoint public keys by key id (04‖x‖y, hex): as published at GET /api/audit/public-key. */
  publicKeys: Record<string, string>;
  from: number;
  /** The hash of entry from - 1 (zeros when from is 1). */
  prevHash: string;
  head: { seq: number; hash: string } | null;
  exportedAt: string;
}

/** The export's lines (without newlines), from entry `from`. */
export async function* exportLines(db: Queryable, from = 1): AsyncGenerator<string> {
  if (!Number.isSafeInteger(from) || from < 1)
    throw new KapokError('KAPOK_AUDIT_BAD_QUERY', '--from: expected a whole number of 1 or more');
  const prev =
    from === 1
      ? GENESIS_HASH
      : (await db.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = ?', [from - 1]))[0]?.hash;
  if (!prev)
    throw new KapokError('KAPOK_AUDIT_BAD_QUERY', `--from ${from}: entry ${from - 1} is not in the log`);
  const keys = await publicKeys(db);
  const cps = await checkpoints(db, from);
  const header: ExportHeader = {
    type: EXPORT_FORMAT,
    version: 1,
    hash: 'SM3',
    signature: 'SM2',
    sm2Id: CHECKPOINT_SM2_ID,
    checkpointDomain: CHECKPOINT_DOMAIN,
    publicKeys: Object.fromEntries([...keys].map(([id, k]) => [id, toHex(k)])),
    from,
    prevHash: prev,
    head: await head(db),
    exportedAt: new Date().toISOString(),
  };
  yield JSON.stringify(header);
  let ci = 0;
  for await (const page of entryPages(db, from)) {
    for (const e of page) {
      yield JSON.stringify({ type: 'entry', ...e });
      while (ci < cps.length && (cps[ci] as Checkpoint).seq <= e.seq)
        yield JSON.stringify({ type: 'checkpoint', ...cps[ci++] });
    }
  }
  // Checkpoints past the last entry (a truncated log) are exported too: the verifier names them.
  while (ci < cps.length) yield JSON.stringify({ type: 'checkpoint', ...cps[ci++] });
}

/**
 * Verifies an export. With `publicKey` (hex) every checkpoint must verify under that key, whatever
 * key id it names; without it the header's keys are used (integrity, not origin: say so to the user).
 */
export async function verifyExport(
  lines: Iterable<string> | AsyncIterable<string>,
  publicKey?: string,
): Promise<VerifyResult> {
  let header: ExportHeader | null = null;
  const entries: AuditEntry[] = [];
  const cps: Checkpoint[] = [];
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line);
    } catch {
      throw bad(n, 'not JSON');
    }
    if (!header) {
      if (obj.type !== EXPORT_FORMAT || obj.version !== 1)
        throw bad(n, `the first line must be the ${EXPORT_FORMAT} v1 header`);
      header = obj as unknown as ExportHeader;
      continue;
    }
    if (obj.type === 'entry') entries.push(asEntry(obj, n));
    else if (obj.type === 'checkpoint') cps.push(asCheckpoint(obj, n));
    else throw bad(n, `unknown line type ${JSON.stringify(obj.type)}`);
  }
  if (!header) throw bad(0, 'the file is empty');
  let keys: Map<string, Uint8Array>;
  if (publicKey) {
    const k = fromHex(publicKey, '--public-key', 65);
    keys = new Map(cps.map((c) => [c.keyId, k]));
  } else
    keys = new Map(
      Object.entries(header.publicKeys ?? {}).map(([id, h]) => [id, fromHex(h, `publicKeys.${id}`)]),
    );
  return verifyChain({
    entries: [entries],
    checkpoints: cps,
    keys,
    from: header.from,
    prevHash: header.prevHash,
    head: header.head,
  });
}

const bad = (line: number, msg: string) =>
  new KapokError('KAPOK_AUDIT_EXPORT_INVALID', `audit export${line ? `, line ${line}` : ''}: ${msg}`);

function asEntry(o: Record<string, unknown>, n: number): AuditEntry {
  const int = (k: string) => {
    if (!Number.isSafeInteger(o[k])) throw bad(n, `${k}: expected an integer`);
    return o[k] as number;
  };
  const str = (k: string, nullable: boolean) => {
    const v = o[k];
    if (typeof v === 'string' || (nullable && v === null)) return v as string;
    throw bad(n, `${k}: expected a string${nullable ? ' or null' : ''}`);
  };
  return {
    seq: int('seq'),
    time: int('time'),
    actor: str('actor', false),
    ip: str('ip', true),
    action: str('action', false),
    target: str('target', true),
    outcome: str('outcome', false),
    requestId: str('requestId', true),
    hash: str('hash', false),
  };
}

function asCheckpoint(o: Record<string, unknown>, n: number): Checkpoint {
  if (!Number.isSafeInteger(o.seq) || !Number.isSafeInteger(o.time))
    throw bad(n, 'checkpoint seq/time: expected integers');
  for (const k of ['headHash', 'keyId', 'signature'])
    if (typeof o[k] !== 'string') throw bad(n, `checkpoint ${k}: expected a string`);
  return {
    seq: o.seq as number,
    time: o.time as number,
    headHash: o.headHash as string,
    keyId: o.keyId as string,
    signature: o.signature as string,
  };
}
