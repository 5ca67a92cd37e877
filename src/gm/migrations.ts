import type { Migration } from '../ports/store.js';

/**
 * The gm capability's tables. Binary values are hex text so both dialects read them back alike.
 * gm_master_keys: one row per KGC key (ids like sign-1, enc-1, token-1; a rotation adds -2 rows),
 * the private key SM4-GCM encrypted under the KEK with the id as AAD.
 */
export const GM_MIGRATIONS: readonly Migration[] = [
  {
    id: 'gm/0001_keys_devices',
    sql: `CREATE TABLE IF NOT EXISTS gm_master_keys (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  public_key TEXT NOT NULL,
  nonce TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  tag TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS gm_devices (
  serial TEXT PRIMARY KEY,
  grp TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);`,
  },
  {
    // Rotation: when a newer key of the kind took over; which sign key a device's key came from.
    id: 'gm/0002_rotation',
    sql: `ALTER TABLE gm_master_keys ADD COLUMN retired_at BIGINT;
ALTER TABLE gm_devices ADD COLUMN sign_key_id TEXT;`,
  },
  {
    // The vehicle (V2X station) id a device speaks for, bound at registration (NULL: its serial);
    // one active device per vehicle; revocations polled by time (MQTT sessions end within a second).
    id: 'gm/0003_vehicle',
    sql: `ALTER TABLE gm_devices ADD COLUMN vehicle TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS gm_devices_active_vehicle ON gm_devices (vehicle) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS gm_devices_revoked_at ON gm_devices (revoked_at);`,
  },
];
