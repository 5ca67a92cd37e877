import { KapokError } from '../../core/errors.js';
import type { Store } from '../../ports/store.js';

export interface KeyRecord {
  id: string;
  name: string;
  hash: string;
  rpm: number | null;
  tpm: number | null;
  /** Client-facing models this key may use; null = all. */
  models: string[] | null;
  createdAt: string;
  revokedAt: string | null;
}

/** A key as listed to operators: never the hash. */
export type KeyInfo = Omit<KeyRecord, 'hash'>;

interface Row {
  id: string;
  name: string;
  hash: string;
  rpm: number | null;
  tpm: number | null;
  models: string | null;
  created_at: string;
  revoked_at: string | null;
}

const COLS = 'id, name, hash, rpm, tpm, models, created_at, revoked_at';

export class KeyStore {
  constructor(private readonly store: Store) {}

  async insert(k: Omit<KeyRecord, 'revokedAt'>): Promise<void> {
    try {
      await this.store.execute(`INSERT INTO gateway_keys (${COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`, [
        k.id,
        k.name,
        k.hash,
        k.rpm,
        k.tpm,
        k.models ? JSON.stringify(k.models) : null,
        k.createdAt,
      ]);
    } catch (err) {
      if (err instanceof KapokError && err.code === 'KAPOK_STORE_CONFLICT') {
        throw new KapokError(
          'KAPOK_STORE_CONFLICT',
          `an active key named "${k.name}" exists: pick another --name or revoke it first`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async byId(id: string): Promise<KeyRecord | null> {
    const rows = await this.store.query<Row>(`SELECT ${COLS} FROM gateway_keys WHERE id = ?`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async list(includeRevoked = false): Promise<KeyInfo[]> {
    const rows = await this.store.query<Row>(
      `SELECT ${COLS} FROM gateway_keys${includeRevoked ? '' : ' WHERE revoked_at IS NULL'} ORDER BY created_at, id`,
    );
    return rows.map((r) => {
      const { hash: _hash, ...info } = fromRow(r);
      return info;
    });
  }

  /** Revokes by id or by active name; returns the id revoked, or null when none matched. */
  async revoke(idOrName: string, at = new Date().toISOString()): Promise<string | null> {
    const rows = await this.store.query<{ id: string }>(
      'UPDATE gateway_keys SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR name = ?) RETURNING id',
      [at, idOrName, idOrName],
    );
    return rows[0]?.id ?? null;
  }
}

function fromRow(r: Row): KeyRecord {
  return {
    id: r.id,
    name: r.name,
    hash: r.hash,
    rpm: r.rpm === null ? null : Number(r.rpm),
    tpm: r.tpm === null ? null : Number(r.tpm),
    models: r.models ? (JSON.parse(r.models) as string[]) : null,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}
