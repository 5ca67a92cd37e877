import { fromHex } from '../crypto/bytes.js';
import { sm2Verify } from '../crypto/sm2.js';
import {
  type AuditEntry,
  CHECKPOINT_SM2_ID,
  type Checkpoint,
  chainHash,
  checkpointMessage,
} from './chain.js';

/**
 * Verifies a stretch of the chain (docs/audit.md#verifying): entries in seq order from `from`, each
 * hashed onto the previous one and compared with its stored hash; every checkpoint's SM2 signature
 * and head hash; and that nothing is missing at the end (checkpoints and the head row name the last
 * seq written). Stops at the first problem and names it.
 */

export type ProblemKind =
  | 'edited'
  | 'deleted'
  | 'reordered'
  | 'truncated'
  | 'checkpoint-signature'
  | 'checkpoint-mismatch'
  | 'head-mismatch';

export interface VerifyProblem {
  seq: number;
  kind: ProblemKind;
  message: string;
}

export interface VerifyResult {
  ok: boolean;
  from: number;
  /** The last entry read (from - 1 when none). */
  lastSeq: number;
  entries: number;
  /** Checkpoints whose signature and head hash were checked. */
  checkpoints: number;
  lastCheckpoint: number | null;
  /** Entries after the last checkpoint: chained, but not yet covered by a signature. */
  unsigned: number;
  problem?: VerifyProblem;
}

export interface VerifyInput {
  /** The entries from `from` on, in seq order, in pages. */
  entries: AsyncIterable<AuditEntry[]> | Iterable<AuditEntry[]>;
  checkpoints: readonly Checkpoint[];
  /** Public keys by key id. */
  keys: ReadonlyMap<string, Uint8Array>;
  from: number;
  /** The hash of entry from - 1 (the genesis hash when from is 1). */
  prevHash: string;
  /** What the writer says the last entry is (the head row; an export's header). */
  head?: { seq: number; hash: string } | null;
}

/** How far ahead an entry that belongs at the broken position is looked for (swapped rows). */
const LOOKAHEAD = 64;

export async function verifyChain(input: VerifyInput): Promise<VerifyResult> {
  const cps = [...input.checkpoints].filter((c) => c.seq >= input.from).sort((a, b) => a.seq - b.seq);
  let ci = 0;
  let expected = input.from;
  let prev = input.prevHash;
  let checked = 0;
  let lastCheckpoint: number | null = null;
  const result = (problem?: VerifyProblem): VerifyResult => ({
    ok: !problem,
    from: input.from,
    lastSeq: expected - 1,
    entries: expected - input.from,
    checkpoints: checked,
    lastCheckpoint,
    unsigned: expected - 1 - (lastCheckpoint ?? input.from - 1),
    ...(problem ? { problem } : {}),
  });

  let buf: AuditEntry[] = [];
  let at = 0;
  const step = (i: number): VerifyProblem | null => {
    const e = buf[i] as AuditEntry;
    if (e.seq > expected)
      return {
        seq: expected,
        kind: 'deleted',
        message: `entries ${expected}${e.seq - 1 > expected ? `..${e.seq - 1}` : ''} are missing (deleted): the next one stored is ${e.seq}`,
      };
    if (e.seq < expected)
      return { seq: e.seq, kind: 'reordered', message: `entry ${e.seq} appears again after ${expected - 1}` };
    if (chainHash(prev, e) !== e.hash) {
      for (let j = i + 1; j < Math.min(buf.length, i + 1 + LOOKAHEAD); j++) {
        const c = buf[j] as AuditEntry;
        if (chainHash(prev, { ...c, seq: expected }) === c.hash)
          return {
            seq: expected,
            kind: 'reordered',
            message: `entry ${expected} was moved: what was written as entry ${expected} is stored as ${c.seq} (seq values swapped)`,
          };
      }
      return {
        seq: expected,
        kind: 'edited',
        message: `entry ${expected} does not match its hash: it was edited (or its hash, or an earlier entry's, was rewritten)`,
      };
    }
    prev = e.hash;
    while (ci < cps.length && (cps[ci] as Checkpoint).seq <= e.seq) {
      const cp = cps[ci] as Checkpoint;
      const bad = checkCheckpoint(cp, e, input.keys);
      if (bad) return bad;
      ci++;
      checked++;
      lastCheckpoint = cp.seq;
    }
    expected++;
    return null;
  };

  const run = (final: boolean): VerifyProblem | null => {
    const stop = final ? buf.length : buf.length - LOOKAHEAD;
    for (; at < stop; at++) {
      const p = step(at);
      if (p) return p;
    }
    buf = buf.slice(at);
    at = 0;
    return null;
  };

  for await (const page of input.entries) {
    buf.push(...page);
    const p = run(false);
    if (p) return result(p);
  }
  const p = run(true);
  if (p) return result(p);

  const last = expected - 1;
  const beyond = cps[ci];
  if (beyond)
    return result({
      seq: last + 1,
      kind: 'truncated',
      message: `the log ends at ${last} but checkpoint ${beyond.seq} signed entries up to ${beyond.seq}: entries ${last + 1}..${beyond.seq} were removed`,
    });
  const head = input.head;
  if (head && head.seq > last)
    return result({
      seq: last + 1,
      kind: 'truncated',
      message: `the log ends at ${last} but the head row says ${head.seq} entries were written: entries ${last + 1}..${head.seq} were removed`,
    });
  if (head && head.seq === last && last >= input.from && head.hash !== prev)
    return result({
      seq: last,
      kind: 'head-mismatch',
      message: `the head row's hash differs from entry ${last}'s: the head row or the tail was rewritten`,
    });
  return result();
}

function checkCheckpoint(
  cp: Checkpoint,
  e: AuditEntry,
  keys: ReadonlyMap<string, Uint8Array>,
): VerifyProblem | null {
  if (cp.seq !== e.seq)
    return {
      seq: cp.seq,
      kind: 'deleted',
      message: `checkpoint ${cp.seq} names an entry that is not in the log`,
    };
  const key = keys.get(cp.keyId);
  let sig: Uint8Array | null = null;
  try {
    sig = fromHex(cp.signature, 'signature');
  } catch {}
  if (!key || !sig || !sm2Verify(key, checkpointMessage(cp), sig, { id: CHECKPOINT_SM2_ID }))
    return {
      seq: cp.seq,
      kind: 'checkpoint-signature',
      message: key
        ? `checkpoint ${cp.seq}: the SM2 signature does not verify with key ${cp.keyId} (forged or altered)`
        : `checkpoint ${cp.seq}: signed with key ${cp.keyId}, which is not among the public keys given`,
    };
  if (cp.headHash !== e.hash)
    return {
      seq: cp.seq,
      kind: 'checkpoint-mismatch',
      message: `checkpoint ${cp.seq} signed head hash ${cp.headHash.slice(0, 16)}… but the chain has ${e.hash.slice(0, 16)}… there: rewritten`,
    };
  return null;
}
