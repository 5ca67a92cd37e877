import { isKapokError, KapokError } from '../core/errors.js';
import { toHex } from '../crypto/bytes.js';
import type { Queryable } from '../ports/store.js';
import type { GmConfig } from './config.js';
import type { GmKeys, KeySource } from './keystore.js';
import { type WrappedKey, wrapWithKem, wrapWithPbkdf2 } from './wrap.js';

/** Device registry on the Store: register (issuing a wrapped SM9 signing key), revoke, look up. */

export interface Device {
  serial: string;
  group: string;
  status: 'active' | 'revoked';
  createdAt: number;
  revokedAt: number | null;
  /** The KGC sign key the device's key was extracted with. */
  signKeyId: string;
  /** The vehicle (V2X station) id it speaks for: its BSMs' id and its v2x/<vehicle>/… topics. */
  vehicle: string;
}

export interface Registration {
  serial: string;
  group: string;
  vehicle: string;
  /** SM9 sign master public key (hex), to verify signatures by any serial. */
  signMasterPublicKey: string;
  /** Its id in the KGC keyring (changes when the sign key is rotated). */
  signKeyId: string;
  /** The device's SM9 signing key (hid 0x01 for the serial), wrapped. */
  signKey: WrappedKey;
}

const SERIAL = /^[A-Za-z0-9._:-]{1,64}$/;
const GROUP = /^[A-Za-z0-9._:-]{1,64}$/;

export function checkSerial(serial: unknown): asserts serial is string {
  if (typeof serial !== 'string' || !SERIAL.test(serial))
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      'serial: expected 1..64 characters of A-Z a-z 0-9 . _ : -',
    );
}

export class DeviceRegistry {
  readonly #revoked = new Set<(serial: string) => void>();

  constructor(
    private readonly db: Queryable,
    private readonly keys: KeySource,
    private readonly cfg: Pick<GmConfig, 'keyWrap' | 'factorySecret' | 'pbkdf2Iterations'>,
  ) {}

  /** `vehicle` (default: the serial) is bound for the device's life: one active device per vehicle. */
  async register(serial: string, group = 'default', vehicle: string = serial): Promise<Registration> {
    checkSerial(serial);
    if (typeof group !== 'string' || !GROUP.test(group))
      throw new KapokError(
        'KAPOK_GM_INVALID_INPUT',
        'group: expected 1..64 characters of A-Z a-z 0-9 . _ : -',
      );
    if (typeof vehicle !== 'string' || !SERIAL.test(vehicle))
      throw new KapokError(
        'KAPOK_GM_INVALID_INPUT',
        'vehicle: expected 1..64 characters of A-Z a-z 0-9 . _ : -',
      );
    if (await this.get(serial))
      throw new KapokError('KAPOK_GM_DEVICE_EXISTS', `device ${serial} is already registered`);
    if (await this.holderOf(vehicle))
      throw new KapokError('KAPOK_GM_VEHICLE_TAKEN', `vehicle ${vehicle} is bound to another active device`);
    const keys = await this.keys.current();
    const reg = this.issue(serial, group, vehicle, keys);
    try {
      await this.db.execute(
        'INSERT INTO gm_devices (serial, grp, status, created_at, sign_key_id, vehicle) VALUES (?, ?, ?, ?, ?, ?)',
        [serial, group, 'active', Date.now(), keys.signId, vehicle],
      );
    } catch (err) {
      if (isKapokError(err, 'KAPOK_STORE_CONFLICT')) {
        if (await this.get(serial))
          throw new KapokError('KAPOK_GM_DEVICE_EXISTS', `device ${serial} is already registered`);
        throw new KapokError(
          'KAPOK_GM_VEHICLE_TAKEN',
          `vehicle ${vehicle} is bound to another active device`,
        );
      }
      throw err;
    }
    return reg;
  }

  /** The active device bound to a vehicle id (rows from before the binding count as their serial). */
  private async holderOf(vehicle: string): Promise<string | null> {
    const rows = await this.db.query<{ serial: string }>(
      "SELECT serial FROM gm_devices WHERE status = 'active' AND (vehicle = ? OR (vehicle IS NULL AND serial = ?))",
      [vehicle, vehicle],
    );
    return rows[0]?.serial ?? null;
  }

  /**
   * Devices revoked at or after `sinceMs` (any process: the CLI writes the Store), at most `limit`:
   * one indexed query, polled once a second to end their MQTT sessions.
   */
  async revokedSince(sinceMs: number, limit = 1000): Promise<Array<{ serial: string; revokedAt: number }>> {
    const rows = await this.db.query<{ serial: string; revoked_at: number }>(
      `SELECT serial, revoked_at FROM gm_devices WHERE revoked_at >= ? AND status = 'revoked' ORDER BY revoked_at LIMIT ${Math.max(1, Math.floor(limit))}`,
      [sinceMs],
    );
    return rows.map((r) => ({ serial: r.serial, revokedAt: Number(r.revoked_at) }));
  }

  /** A new key for an active device from the current sign key (after a rotation). */
  async reissue(serial: string): Promise<Registration> {
    checkSerial(serial);
    const d = await this.get(serial);
    if (!d) throw new KapokError('KAPOK_GM_DEVICE_UNKNOWN', `device ${serial} is not registered`);
    if (d.status !== 'active') throw new KapokError('KAPOK_GM_DEVICE_REVOKED', `device ${serial} is revoked`);
    const keys = await this.keys.current();
    const reg = this.issue(serial, d.group, d.vehicle, keys);
    await this.db.execute('UPDATE gm_devices SET sign_key_id = ? WHERE serial = ?', [keys.signId, serial]);
    return reg;
  }

  private issue(serial: string, group: string, vehicle: string, keys: GmKeys): Registration {
    const secret = keys.sign.extract(serial).toBytes();
    const signKey =
      this.cfg.keyWrap === 'pbkdf2'
        ? wrapWithPbkdf2(this.cfg.factorySecret as string, this.cfg.pbkdf2Iterations, serial, secret)
        : wrapWithKem(keys.enc.publicKey, serial, secret);
    return {
      serial,
      group,
      vehicle,
      signMasterPublicKey: toHex(keys.sign.publicKey.toBytes()),
      signKeyId: keys.signId,
      signKey,
    };
  }

  async revoke(serial: string): Promise<Device> {
    checkSerial(serial);
    const r = await this.db.execute(
      "UPDATE gm_devices SET status = 'revoked', revoked_at = ? WHERE serial = ? AND status = 'active'",
      [Date.now(), serial],
    );
    const d = await this.get(serial);
    if (!d) throw new KapokError('KAPOK_GM_DEVICE_UNKNOWN', `device ${serial} is not registered`);
    if (r.rowCount === 0 && d.status !== 'revoked')
      throw new KapokError('KAPOK_INTERNAL', `device ${serial}: revoke did not apply`);
    for (const l of this.#revoked) l(serial);
    return d;
  }

  /** Listeners told of each revocation made through this registry (MQTT sessions are ended at once). */
  onRevoked(listener: (serial: string) => void): () => void {
    this.#revoked.add(listener);
    return () => this.#revoked.delete(listener);
  }

  async get(serial: string): Promise<Device | null> {
    const rows = await this.db.query<DeviceRow>(
      'SELECT serial, grp, status, created_at, revoked_at, sign_key_id, vehicle FROM gm_devices WHERE serial = ?',
      [serial],
    );
    const r = rows[0];
    return r ? toDevice(r) : null;
  }

  /** Devices by serial, a page at a time: `after` is the previous page's last serial (keyset). */
  async list(after: string | null, limit: number): Promise<{ devices: Device[]; next: string | null }> {
    if (after !== null) checkSerial(after);
    const rows = await this.db.query<DeviceRow>(
      `SELECT serial, grp, status, created_at, revoked_at, sign_key_id, vehicle FROM gm_devices
       ${after === null ? '' : 'WHERE serial > ?'} ORDER BY serial LIMIT ?`,
      after === null ? [limit + 1] : [after, limit + 1],
    );
    const devices = rows.slice(0, limit).map(toDevice);
    return { devices, next: rows.length > limit ? (devices.at(-1)?.serial ?? null) : null };
  }
}

interface DeviceRow {
  serial: string;
  grp: string;
  status: string;
  created_at: number;
  revoked_at: number | null;
  sign_key_id: string | null;
  vehicle: string | null;
}

function toDevice(r: DeviceRow): Device {
  return {
    serial: r.serial,
    group: r.grp,
    status: r.status === 'active' ? 'active' : 'revoked',
    createdAt: Number(r.created_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    // Devices registered before rotation existed came from the first sign key.
    signKeyId: r.sign_key_id ?? 'sign-1',
    // Devices registered before the binding speak for the vehicle id equal to their serial.
    vehicle: r.vehicle ?? r.serial,
  };
}
