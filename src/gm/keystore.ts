import { randomBytes } from 'node:crypto';
import { linkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKapokError, KapokError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { fromHex, toHex } from '../crypto/bytes.js';
import { readHexKey } from '../crypto/key-file.js';
import { sm2GenerateKeyPair, sm2PublicKey } from '../crypto/sm2.js';
import { sm3 } from '../crypto/sm3.js';
import { sm4GcmDecrypt, sm4GcmEncrypt } from '../crypto/sm4.js';
import { Sm9EncMasterKey, Sm9SignMasterKey } from '../crypto/sm9/keys.js';
import type { Queryable, Store } from '../ports/store.js';
import type { GmConfig } from './config.js';

/**
 * KGC master keys: generated on first start, kept in the Store encrypted with SM4-GCM under the KEK
 * (the row id as AAD, so a row cannot be swapped for another), decrypted at start. Private keys never
 * reach a log line or an error message; logs carry SM3 fingerprints of the public keys.
 */

export interface TokenKey {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** One KGC key; `retiredAt` (ms) is set when a newer key of its kind took over. */
export interface KeyEntry<T> {
  id: string;
  key: T;
  retiredAt: number | null;
}

/**
 * The KGC keyring. `sign`, `enc` and `token` are the active keys (new registrations and tokens use
 * them); the maps also hold retired keys, still accepted for an overlap period after a rotation.
 */
export interface GmKeys {
  sign: Sm9SignMasterKey;
  signId: string;
  enc: Sm9EncMasterKey;
  encId: string;
  token: TokenKey;
  tokenId: string;
  signKeys: Map<string, KeyEntry<Sm9SignMasterKey>>;
  encKeys: Map<string, KeyEntry<Sm9EncMasterKey>>;
  tokenKeys: Map<string, KeyEntry<TokenKey>>;
}

export type KeyKind = 'sign' | 'enc' | 'token';
const KINDS: Record<KeyKind, { column: string; make: () => { priv: Uint8Array; pub: Uint8Array } }> = {
  sign: {
    column: 'sm9-sign',
    make: () => {
      const k = Sm9SignMasterKey.generate();
      return { priv: k.toBytes(), pub: k.publicKey.toBytes() };
    },
  },
  enc: {
    column: 'sm9-enc',
    make: () => {
      const k = Sm9EncMasterKey.generate();
      return { priv: k.toBytes(), pub: k.publicKey.toBytes() };
    },
  },
  token: {
    column: 'sm2-token',
    make: () => {
      const k = sm2GenerateKeyPair();
      return { priv: k.privateKey, pub: k.publicKey };
    },
  },
};

/** Where a KEK is kept when none is configured (profile default only): `<dataDir>/gm.kek`, mode 0600. */
export const GENERATED_KEK_FILE = 'gm.kek';

export interface KekSource {
  /** The data directory: without gm.kek and gm.kekFile, the KEK lives (or is made) there. */
  dataDir?: string;
  /** Told once when the KEK was generated or read from the data directory. */
  logger?: Pick<Logger, 'warn'>;
}

/**
 * The KEK: gm.kek, else gm.kekFile, else (profile default; the config check refuses gov) the file
 * `<dataDir>/gm.kek`, generated on first use with mode 0600. A generated KEK sits beside the data
 * it protects: fine to try Kapok, not for production (the warning says so).
 */
export function readKek(cfg: Pick<GmConfig, 'kek' | 'kekFile'>, src: KekSource = {}): Uint8Array {
  const file =
    !cfg.kek && !cfg.kekFile && src.dataDir
      ? dataDirKek(join(src.dataDir, GENERATED_KEK_FILE), src.logger)
      : cfg.kekFile;
  return readHexKey({
    value: cfg.kek,
    file,
    key: 'gm.kek',
    env: 'KAPOK_GM__KEK',
    bytes: 16,
    fileError: 'KAPOK_GM_KEK_FILE',
  });
}

/** Makes `file` once (never overwritten) and checks no other user can read it; returns its path. */
function dataDirKek(file: string, logger?: Pick<Logger, 'warn'>): string {
  const advice =
    'back it up with the data; for production set gm.kekFile (or KAPOK_GM__KEK) to a key kept apart';
  // Written whole to a private file, then linked into place: link() fails if the name exists, so
  // of two processes starting at once one KEK wins, and no one ever reads a half-written file.
  const tmp = `${file}.${process.pid}.${toHex(randomBytes(4))}`;
  try {
    writeFileSync(tmp, `${toHex(randomBytes(16))}\n`, { mode: 0o600, flag: 'wx' });
    linkSync(tmp, file);
    logger?.warn({ file }, `gm: no gm.kek or gm.kekFile set; generated a KEK in ${file} (${advice})`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new KapokError(
        'KAPOK_GM_KEK_FILE',
        `cannot write a generated KEK to ${file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    logger?.warn({ file }, `gm: using the KEK generated earlier in ${file} (${advice})`);
  } finally {
    rmSync(tmp, { force: true });
  }
  if ((statSync(file).mode & 0o077) !== 0)
    throw new KapokError(
      'KAPOK_GM_KEK_FILE',
      `${file} is readable by other users: chmod 600 ${file} (it holds the key of the KGC keys)`,
    );
  return file;
}

export const fingerprint = (publicKey: Uint8Array): string => toHex(sm3(publicKey).subarray(0, 8));

interface Row {
  id: string;
  kind: string;
  public_key: string;
  nonce: string;
  ciphertext: string;
  tag: string;
  retired_at: number | bigint | null;
}

const aadOf = (id: string) => new TextEncoder().encode(id);
/** The n of `<kind>-<n>`: newer keys have larger n. */
const serialOf = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1));

/** Inserts key `<kind>-<n>` sealed under the KEK; false when another process inserted it first. */
async function insertKey(db: Queryable, kek: Uint8Array, kind: KeyKind, n: number): Promise<string | null> {
  const id = `${kind}-${n}`;
  const { priv, pub } = KINDS[kind].make();
  const nonce = randomBytes(12);
  const sealed = sm4GcmEncrypt(kek, nonce, priv, aadOf(id));
  const r = await db.execute(
    'INSERT INTO gm_master_keys (id, kind, public_key, nonce, ciphertext, tag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    [
      id,
      KINDS[kind].column,
      toHex(pub),
      toHex(nonce),
      toHex(sealed.ciphertext),
      toHex(sealed.tag),
      Date.now(),
    ],
  );
  return r.rowCount > 0 ? `${id}:${fingerprint(pub)}` : null;
}

function open(row: Row, kek: Uint8Array): Uint8Array {
  try {
    return sm4GcmDecrypt(
      kek,
      fromHex(row.nonce, 'nonce'),
      fromHex(row.ciphertext, 'ciphertext'),
      fromHex(row.tag, 'tag'),
      aadOf(row.id),
    );
  } catch (err) {
    if (isKapokError(err, 'KAPOK_GM_DECRYPT_FAILED'))
      throw new KapokError(
        'KAPOK_GM_KEK_MISMATCH',
        `the KEK (gm.kek, or gm.kekFile when gm.kek is null) does not decrypt KGC key ${row.id} in the store: restore the KEK these keys were created with`,
      );
    throw err;
  }
}

/**
 * Loads the keyring, creating the first key of each kind when missing (concurrent starts are safe:
 * the first insert wins and both read it). Entries of `previous` are reused, with their tables and
 * caches, for ids already loaded.
 */
export async function loadOrCreateMasterKeys(
  db: Queryable,
  kek: Uint8Array,
  logger?: Logger,
  previous?: GmKeys,
): Promise<GmKeys> {
  const read = () =>
    db.query<Row>('SELECT id, kind, public_key, nonce, ciphertext, tag, retired_at FROM gm_master_keys');
  let rows = await read();
  const created: string[] = [];
  let missing = false;
  for (const kind of Object.keys(KINDS) as KeyKind[]) {
    if (rows.some((r) => r.id.startsWith(`${kind}-`))) continue;
    missing = true;
    const made = await insertKey(db, kek, kind, 1);
    if (made) created.push(made);
  }
  if (created.length)
    logger?.info({ keys: created }, 'gm: created KGC master keys (public key fingerprints)');
  // Read again whenever a key was missing: one a concurrent start inserted first is ours to use too.
  if (missing) rows = await read();
  const maps = {
    sign: new Map<string, KeyEntry<Sm9SignMasterKey>>(),
    enc: new Map<string, KeyEntry<Sm9EncMasterKey>>(),
    token: new Map<string, KeyEntry<TokenKey>>(),
  };
  for (const row of rows) {
    const kind = row.id.slice(0, row.id.lastIndexOf('-')) as KeyKind;
    const retiredAt = row.retired_at === null ? null : Number(row.retired_at);
    if (kind === 'sign') {
      const old = previous?.signKeys.get(row.id);
      maps.sign.set(row.id, {
        id: row.id,
        key: old?.key ?? Sm9SignMasterKey.fromBytes(open(row, kek)),
        retiredAt,
      });
    } else if (kind === 'enc') {
      const old = previous?.encKeys.get(row.id);
      maps.enc.set(row.id, {
        id: row.id,
        key: old?.key ?? Sm9EncMasterKey.fromBytes(open(row, kek)),
        retiredAt,
      });
    } else if (kind === 'token') {
      const old = previous?.tokenKeys.get(row.id);
      const priv = old?.key.privateKey ?? open(row, kek);
      maps.token.set(row.id, {
        id: row.id,
        key: old?.key ?? { privateKey: priv, publicKey: sm2PublicKey(priv) },
        retiredAt,
      });
    }
  }
  const sign = active(maps.sign);
  const enc = active(maps.enc);
  const token = active(maps.token);
  return {
    sign: sign.key,
    signId: sign.id,
    enc: enc.key,
    encId: enc.id,
    token: token.key,
    tokenId: token.id,
    signKeys: maps.sign,
    encKeys: maps.enc,
    tokenKeys: maps.token,
  };
}

/** The newest key not retired (the newest of all if every one is, which a rotation never leaves). */
function active<T>(m: Map<string, KeyEntry<T>>): KeyEntry<T> {
  const all = [...m.values()].sort((a, b) => serialOf(b.id) - serialOf(a.id));
  const live = all.find((e) => e.retiredAt === null) ?? all[0];
  if (!live) throw new KapokError('KAPOK_INTERNAL', 'gm: the keyring is empty after creation');
  return live;
}

/**
 * Rotation: adds `<kind>-<n+1>` and marks the previous keys of the kind retired now. Retired sign
 * and enc keys stay valid for devices registered under them for gm.rotationOverlapSeconds; retired
 * token keys verify the tokens they signed until those expire. Returns the new key id.
 */
export async function rotateMasterKey(db: Store, kek: Uint8Array, kind: KeyKind): Promise<string> {
  return db.transaction(async (tx) => {
    // Retire first: the UPDATE locks the kind's rows, so two rotations cannot pick the same n.
    await tx.execute('UPDATE gm_master_keys SET retired_at = ? WHERE kind = ? AND retired_at IS NULL', [
      Date.now(),
      KINDS[kind].column,
    ]);
    const rows = await tx.query<{ id: string }>('SELECT id FROM gm_master_keys WHERE kind = ?', [
      KINDS[kind].column,
    ]);
    const n = Math.max(0, ...rows.map((r) => serialOf(r.id))) + 1;
    const made = await insertKey(tx, kek, kind, n);
    if (!made)
      throw new KapokError(
        'KAPOK_STORE_CONFLICT',
        `gm: key ${kind}-${n} appeared during the rotation; retry`,
      );
    return `${kind}-${n}`;
  });
}

/** What registry and authenticator read keys from: the keyring as last loaded, reloaded when stale. */
export interface KeySource {
  /** `force` reloads now (an id was not found: another process may have rotated). */
  current(force?: boolean): Promise<GmKeys>;
}

/**
 * The keyring of a running process. Reloads from the store at most every `maxAgeMs` (rotations by
 * `kapok device rotate-key` are picked up without a restart), keeping loaded keys and their tables.
 */
export class Keyring implements KeySource {
  private loadedAt = Date.now();
  private reloading: Promise<GmKeys> | null = null;
  private failing = false;

  private constructor(
    private readonly db: Queryable,
    private readonly kek: Uint8Array,
    private keys: GmKeys,
    private readonly maxAgeMs: number,
    private readonly logger?: Logger,
  ) {}

  static async open(db: Queryable, kek: Uint8Array, logger?: Logger, maxAgeMs = 30_000): Promise<Keyring> {
    return new Keyring(db, kek, await loadOrCreateMasterKeys(db, kek, logger), maxAgeMs, logger);
  }

  /** The keys as last loaded, without touching the store. */
  get loaded(): GmKeys {
    return this.keys;
  }

  current(force = false): Promise<GmKeys> {
    if (!force && Date.now() - this.loadedAt < this.maxAgeMs) return Promise.resolve(this.keys);
    this.reloading ??= loadOrCreateMasterKeys(this.db, this.kek, this.logger, this.keys)
      .then(
        (k) => {
          if (this.failing) this.logger?.info('gm: KGC keys readable again');
          this.failing = false;
          this.keys = k;
          this.loadedAt = Date.now();
          return k;
        },
        (err: unknown) => {
          // Logged once per outage, not on every retry (each call retries while the keys are stale).
          if (!this.failing) this.logger?.error({ err }, 'gm: KGC keys cannot be re-read from the store');
          this.failing = true;
          throw err;
        },
      )
      .finally(() => {
        this.reloading = null;
      });
    return this.reloading;
  }
}
