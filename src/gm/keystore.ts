import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isKapokError, KapokError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Queryable } from '../ports/store.js';
import type { GmConfig } from './config.js';
import { fromHex, toHex } from './crypto/bytes.js';
import { sm2GenerateKeyPair, sm2PublicKey } from './crypto/sm2.js';
import { sm3 } from './crypto/sm3.js';
import { sm4GcmDecrypt, sm4GcmEncrypt } from './crypto/sm4.js';
import { Sm9EncMasterKey, Sm9SignMasterKey } from './crypto/sm9/keys.js';

/**
 * KGC master keys: generated on first start, kept in the Store encrypted with SM4-GCM under the KEK
 * (the row id as AAD, so a row cannot be swapped for another), decrypted at start. Private keys never
 * reach a log line or an error message; logs carry SM3 fingerprints of the public keys.
 */

export interface GmKeys {
  sign: Sm9SignMasterKey;
  enc: Sm9EncMasterKey;
  /** SM2 key pair signing device tokens. */
  token: { privateKey: Uint8Array; publicKey: Uint8Array };
}

const IDS = { sign: 'sign-1', enc: 'enc-1', token: 'token-1' } as const;

/** The KEK from gm.kek, else gm.kekFile. */
export function readKek(cfg: Pick<GmConfig, 'kek' | 'kekFile'>): Uint8Array {
  if (cfg.kek) return fromHex(cfg.kek, 'gm.kek', 16);
  if (!cfg.kekFile)
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      'gm.kek: required (or gm.kekFile); e.g. KAPOK_GM__KEK=<32 hex digits>',
    );
  let text: string;
  try {
    text = readFileSync(cfg.kekFile, 'utf8');
  } catch (err) {
    throw new KapokError(
      'KAPOK_GM_KEK_FILE',
      `gm.kekFile ${cfg.kekFile} cannot be read: check the path and permissions`,
      {
        cause: err,
      },
    );
  }
  try {
    return fromHex(text, 'gm.kekFile', 16);
  } catch (err) {
    throw new KapokError('KAPOK_GM_KEK_FILE', `gm.kekFile ${cfg.kekFile} must hold exactly 32 hex digits`, {
      cause: err,
    });
  }
}

export const fingerprint = (publicKey: Uint8Array): string => toHex(sm3(publicKey).subarray(0, 8));

interface Row {
  id: string;
  public_key: string;
  nonce: string;
  ciphertext: string;
  tag: string;
}

async function loadOrCreate(
  db: Queryable,
  kek: Uint8Array,
  id: string,
  kind: string,
  make: () => { priv: Uint8Array; pub: Uint8Array },
  created: string[],
): Promise<Uint8Array> {
  const read = () =>
    db.query<Row>('SELECT id, public_key, nonce, ciphertext, tag FROM gm_master_keys WHERE id = ?', [id]);
  let rows = await read();
  if (rows.length === 0) {
    const { priv, pub } = make();
    const nonce = randomBytes(12);
    const sealed = sm4GcmEncrypt(kek, nonce, priv, new TextEncoder().encode(id));
    // Another process may create the same row at the same moment: the first insert wins, both read it.
    const r = await db.execute(
      'INSERT INTO gm_master_keys (id, kind, public_key, nonce, ciphertext, tag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      [id, kind, toHex(pub), toHex(nonce), toHex(sealed.ciphertext), toHex(sealed.tag), Date.now()],
    );
    if (r.rowCount > 0) created.push(`${id}:${fingerprint(pub)}`);
    rows = await read();
  }
  const row = rows[0] as Row;
  try {
    return sm4GcmDecrypt(
      kek,
      fromHex(row.nonce, 'nonce'),
      fromHex(row.ciphertext, 'ciphertext'),
      fromHex(row.tag, 'tag'),
      new TextEncoder().encode(id),
    );
  } catch (err) {
    if (isKapokError(err, 'KAPOK_GM_DECRYPT_FAILED'))
      throw new KapokError(
        'KAPOK_GM_KEK_MISMATCH',
        `gm.kek does not decrypt KGC key ${id} in the store: restore the KEK these keys were created with`,
      );
    throw err;
  }
}

/** Loads the KGC keys, creating any that are missing. */
export async function loadOrCreateMasterKeys(
  db: Queryable,
  kek: Uint8Array,
  logger?: Logger,
): Promise<GmKeys> {
  const created: string[] = [];
  const signPriv = await loadOrCreate(
    db,
    kek,
    IDS.sign,
    'sm9-sign',
    () => {
      const k = Sm9SignMasterKey.generate();
      return { priv: k.toBytes(), pub: k.publicKey.toBytes() };
    },
    created,
  );
  const encPriv = await loadOrCreate(
    db,
    kek,
    IDS.enc,
    'sm9-enc',
    () => {
      const k = Sm9EncMasterKey.generate();
      return { priv: k.toBytes(), pub: k.publicKey.toBytes() };
    },
    created,
  );
  const tokenPriv = await loadOrCreate(
    db,
    kek,
    IDS.token,
    'sm2-token',
    () => {
      const k = sm2GenerateKeyPair();
      return { priv: k.privateKey, pub: k.publicKey };
    },
    created,
  );
  if (created.length)
    logger?.info({ keys: created }, 'gm: created KGC master keys (public key fingerprints)');
  return {
    sign: Sm9SignMasterKey.fromBytes(signPriv),
    enc: Sm9EncMasterKey.fromBytes(encPriv),
    token: { privateKey: tokenPriv, publicKey: sm2PublicKey(tokenPriv) },
  };
}
