import { toHex } from '../crypto/bytes.js';
import { sm3 } from '../crypto/sm3.js';
import { canonicalJson } from './canonical.js';

/**
 * The hash chain (docs/audit.md#the-chain): entry n's hash is
 *   SM3( hash(n-1) as 32 raw bytes ‖ UTF-8 canonical JSON of entry n without `hash` )
 * with hash(0) = 32 zero bytes. Checkpoints sign (seq, head hash, time, key id) with SM2.
 */

/** The fields an entry's hash covers (all of them but the hash), as stored and exported. */
export interface AuditEntryBody {
  seq: number;
  /** Milliseconds since 1970-01-01 UTC. */
  time: number;
  actor: string;
  ip: string | null;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string | null;
}

export interface AuditEntry extends AuditEntryBody {
  /** 64 lowercase hex digits. */
  hash: string;
}

export interface Checkpoint {
  seq: number;
  headHash: string;
  time: number;
  keyId: string;
  /** DER-encoded SM2 signature, hex. */
  signature: string;
}

export const GENESIS_HASH = '0'.repeat(64);
/** The SM2 signer ID of checkpoints (the GB/T 35276 default user ID). */
export const CHECKPOINT_SM2_ID = '1234567812345678';
/** Prefix of the signed bytes, so a checkpoint signature can never pass for any other message. */
export const CHECKPOINT_DOMAIN = 'kapok-audit-checkpoint/v1\n';

export function entryBody(e: AuditEntryBody): AuditEntryBody {
  return {
    seq: e.seq,
    time: e.time,
    actor: e.actor,
    ip: e.ip,
    action: e.action,
    target: e.target,
    outcome: e.outcome,
    requestId: e.requestId,
  };
}

/** The hash of `e` following the entry whose hash is `prev` (hex). */
export function chainHash(prev: string, e: AuditEntryBody): string {
  return toHex(sm3(Buffer.from(prev, 'hex'), Buffer.from(canonicalJson(entryBody(e)), 'utf8')));
}

/** The bytes a checkpoint's SM2 signature covers. */
export function checkpointMessage(c: Omit<Checkpoint, 'signature'>): Uint8Array {
  const body = canonicalJson({ headHash: c.headHash, keyId: c.keyId, seq: c.seq, time: c.time });
  return Buffer.from(CHECKPOINT_DOMAIN + body, 'utf8');
}
