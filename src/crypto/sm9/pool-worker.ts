import { parentPort } from 'node:worker_threads';
import { toHex } from '../bytes.js';
import { Sm9SignMasterPublicKey } from './keys.js';
import { Lru } from './lru.js';
import { sm9Verify } from './sign.js';

/**
 * Worker side of the SM9 verification pool: verifies batches and keeps, per master public key, the
 * same precomputations the main thread would (g table, prepared points of recent IDs).
 */

export interface VerifyJob {
  masterPublicKey: Uint8Array;
  id: string | Uint8Array;
  message: string | Uint8Array;
  signature: Uint8Array;
  hid?: number;
}

export interface VerifyRequest {
  seq: number;
  jobs: VerifyJob[];
}

export type VerifyResponse = { seq: number; results: boolean[] } | { seq: number; error: string };

const masters = new Lru<string, Sm9SignMasterPublicKey | null>(16);

function master(bytes: Uint8Array): Sm9SignMasterPublicKey | null {
  const key = toHex(bytes);
  let m = masters.get(key);
  if (m === undefined) {
    try {
      m = Sm9SignMasterPublicKey.fromBytes(bytes);
    } catch {
      m = null; // an invalid master key verifies nothing
    }
    masters.set(key, m);
  }
  return m;
}

parentPort?.on('message', (req: VerifyRequest) => {
  try {
    const results = req.jobs.map((j) => {
      const m = master(j.masterPublicKey);
      return m ? sm9Verify(m, j.id, j.message, j.signature, { hid: j.hid ?? 1 }) : false;
    });
    parentPort?.postMessage({ seq: req.seq, results } satisfies VerifyResponse);
  } catch (err) {
    parentPort?.postMessage({ seq: req.seq, error: String(err) } satisfies VerifyResponse);
  }
});
