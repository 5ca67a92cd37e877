import { randomBytes } from 'node:crypto';
import { isKapokError, KapokError } from '../core/errors.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { sm2GenerateKeyPair, sm2PublicKey } from '../crypto/sm2.js';
import { sm4GcmDecrypt, sm4GcmEncrypt } from '../crypto/sm4.js';
import type { Queryable, Store } from '../ports/store.js';

/**
 * The checkpoint signing key: SM2, created at the first start, kept in audit_keys with the private
 * key SM4-GCM sealed under audit.kek (the row id as AAD). Processes sharing a Store race to create
 * `audit-1`; the loser reads the winner's.
 */

export interface SigningKey {
  id: string;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

interface Row {
  id: string;
  public_key: string;
  nonce: string;
  ciphertext: string;
  tag: string;
}

const KEY_ID = 'audit-1';
const aad = (id: string) => Buffer.from(id, 'utf8');

export async function loadOrCreateSigningKey(store: Store, kek: Uint8Array): Promise<SigningKey> {
  let row = await readRow(store, KEY_ID);
  if (!row) {
    const k = sm2GenerateKeyPair();
    const nonce = randomBytes(12);
    const sealed = sm4GcmEncrypt(kek, nonce, k.privateKey, aad(KEY_ID));
    await store.execute(
      'INSERT INTO audit_keys (id, public_key, nonce, ciphertext, tag, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      [KEY_ID, toHex(k.publicKey), toHex(nonce), toHex(sealed.ciphertext), toHex(sealed.tag), Date.now()],
    );
    row = (await readRow(store, KEY_ID)) as Row;
  }
  return { id: row.id, privateKey: open(row, kek), publicKey: fromHex(row.public_key, 'public_key') };
}

/** Every checkpoint key's public half, by id (no KEK needed): for verification and the export. */
export async function publicKeys(db: Queryable): Promise<Map<string, Uint8Array>> {
  const rows = await db.query<{ id: string; public_key: string }>(
    'SELECT id, public_key FROM audit_keys ORDER BY id',
  );
  return new Map(rows.map((r) => [r.id, fromHex(r.public_key, 'public_key')]));
}

async function readRow(db: Queryable, id: string): Promise<Row | undefined> {
  const rows = await db.query<Row>(
    'SELECT id, public_key, nonce, ciphertext, tag FROM audit_keys WHERE id = ?',
    [id],
  );
  return rows[0];
}

function open(row: Row, kek: Uint8Array): Uint8Array {
  let priv: Uint8Array;
  try {
    priv = sm4GcmDecrypt(
      kek,
      fromHex(row.nonce, 'nonce'),
      fromHex(row.ciphertext, 'ciphertext'),
      fromHex(row.tag, 'tag'),
      aad(row.id),
    );
  } catch (err) {
    if (isKapokError(err, 'KAPOK_GM_DECRYPT_FAILED'))
      throw new KapokError(
        'KAPOK_AUDIT_KEK_MISMATCH',
        `audit.kek does not open the checkpoint key ${row.id} in the Store: restore the KEK it was created with`,
        { cause: err },
      );
    throw err;
  }
  if (toHex(sm2PublicKey(priv)) !== row.public_key)
    throw new KapokError(
      'KAPOK_AUDIT_KEK_MISMATCH',
      `checkpoint key ${row.id}: the private key does not match its public key (the row was altered)`,
    );
  return priv;
}
