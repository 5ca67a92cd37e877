import { isKapokError, KapokError } from '../core/errors.js';
import { fromHex } from '../crypto/bytes.js';
import type { VerifyJob } from '../crypto/sm9/pool.js';
import { sm9Verify } from '../crypto/sm9/sign.js';
import type { KV } from '../ports/kv.js';
import type { DeviceRegistry } from './devices.js';
import { checkSerial } from './devices.js';
import type { KeySource } from './keystore.js';
import { type DeviceClaims, issueDeviceToken, verifyDeviceToken } from './tokens.js';

/**
 * Device authentication: the device signs the challenge string with its SM9 key; we check the
 * timestamp window, refuse a nonce seen before (KV, kept for twice the window), verify the signature
 * (on the worker pool when there is one), then check the device is active and issue an SM2SM3 token.
 * Tokens are checked against the registry on every use, so a revoke takes effect at once.
 */

export interface AuthRequest {
  serial: string;
  nonce: string;
  /** Unix time in seconds. */
  timestamp: number;
  /** Hex DER SM9 signature over challengeString(serial, nonce, timestamp). */
  signature: string;
}

export interface AuthResult {
  token: string;
  tokenType: 'Bearer';
  expiresAt: number;
  serial: string;
  group: string;
  vehicle: string;
}

const NONCE = /^[A-Za-z0-9_-]{16,128}$/;

/** The exact bytes a device signs (UTF-8). */
export function challengeString(serial: string, nonce: string, timestamp: number): string {
  return `kapok-gm-device-auth:v1\n${serial}\n${nonce}\n${timestamp}`;
}

export interface AuthenticatorDeps {
  registry: DeviceRegistry;
  kv: KV;
  keys: KeySource;
  tokenTtlSeconds: number;
  authWindowSeconds: number;
  /** How long a retired KGC sign key still authenticates the devices registered under it. */
  rotationOverlapSeconds: number;
  /** Verification off the main thread; inline sm9Verify when absent. */
  verify?: (job: VerifyJob) => Promise<boolean>;
  now?: () => number;
  /** Called once per authentication with 'ok' or the refusing error's code (for metrics). */
  onResult?: (result: string) => void;
}

export class DeviceAuthenticator {
  private readonly now: () => number;

  constructor(private readonly d: AuthenticatorDeps) {
    this.now = d.now ?? Date.now;
  }

  async authenticate(body: unknown): Promise<AuthResult> {
    try {
      const r = await this.authenticateOnce(body);
      this.d.onResult?.('ok');
      return r;
    } catch (err) {
      this.d.onResult?.(isKapokError(err) ? err.code : 'KAPOK_INTERNAL');
      throw err;
    }
  }

  private async authenticateOnce(body: unknown): Promise<AuthResult> {
    const req = parseRequest(body);
    const nowS = Math.floor(this.now() / 1000);
    if (Math.abs(nowS - req.timestamp) > this.d.authWindowSeconds)
      throw new KapokError(
        'KAPOK_GM_CLOCK_SKEW',
        `timestamp is ${req.timestamp - nowS} s from the server clock (allowed ±${this.d.authWindowSeconds} s): synchronise the device clock`,
      );
    const device = await this.d.registry.get(req.serial);
    // Until the signature verifies, unknown, revoked and retired-key devices look alike: one answer,
    // a nonce spent and one SM9 verification each, so serials cannot be enumerated. A device that
    // proves its key then learns why it is refused.
    // First use wins; the key outlives the window on both sides of now, so a replay is always seen.
    const fresh = await this.d.kv.set(`gm:nonce:${req.serial}:${req.nonce}`, '1', {
      ttlMs: 2 * this.d.authWindowSeconds * 1000 + 1000,
      ifAbsent: true,
    });
    if (!fresh)
      throw new KapokError('KAPOK_GM_NONCE_REPLAYED', 'nonce already used: send a fresh random nonce');
    let keys = await this.d.keys.current();
    let entry = device ? keys.signKeys.get(device.signKeyId) : undefined;
    if (device && !entry) {
      keys = await this.d.keys.current(true); // rotated by another process since our last load
      entry = keys.signKeys.get(device.signKeyId);
    }
    const master = entry ? entry.key.publicKey : keys.sign.publicKey;
    const job: VerifyJob = {
      masterPublicKey: master.toBytes(),
      id: req.serial,
      message: challengeString(req.serial, req.nonce, req.timestamp),
      signature: req.sig,
    };
    const ok = this.d.verify
      ? await this.d.verify(job)
      : sm9Verify(master, job.id, job.message, job.signature);
    if (!ok || !device || !entry)
      throw new KapokError('KAPOK_GM_AUTH_FAILED', 'device authentication failed');
    if (device.status !== 'active')
      throw new KapokError('KAPOK_GM_DEVICE_REVOKED', `device ${req.serial} is revoked`);
    if (entry.retiredAt !== null && this.now() > entry.retiredAt + this.d.rotationOverlapSeconds * 1000)
      throw new KapokError(
        'KAPOK_GM_KEY_RETIRED',
        `device ${req.serial} holds a key from retired KGC key ${entry.id}: reissue it (kapok device reissue)`,
      );
    const { token, claims } = issueDeviceToken(
      keys.token.privateKey,
      keys.token.publicKey,
      keys.tokenId,
      { sub: device.serial, grp: device.group, veh: device.vehicle },
      this.d.tokenTtlSeconds,
      this.now(),
    );
    return {
      token,
      tokenType: 'Bearer',
      expiresAt: claims.exp,
      serial: device.serial,
      group: device.group,
      vehicle: device.vehicle,
    };
  }

  /** Claims of a valid token whose device is still active; throws a 401/403 KapokError otherwise. */
  async verifyToken(token: string): Promise<DeviceClaims> {
    let keys = await this.d.keys.current();
    let unknownKid = false;
    const keyFor = (kid: string) => {
      const k = keys.tokenKeys.get(kid)?.key.publicKey ?? null;
      unknownKid = k === null;
      return k;
    };
    let claims: DeviceClaims;
    try {
      claims = verifyDeviceToken(keyFor, token, this.now());
    } catch (err) {
      if (!unknownKid) throw err;
      keys = await this.d.keys.current(true); // a token key rotated in by another process
      claims = verifyDeviceToken(keyFor, token, this.now());
    }
    const device = await this.d.registry.get(claims.sub);
    if (!device) throw new KapokError('KAPOK_GM_TOKEN_INVALID', 'device token names an unknown device');
    if (device.status !== 'active')
      throw new KapokError('KAPOK_GM_DEVICE_REVOKED', `device ${claims.sub} is revoked`);
    return claims;
  }
}

function parseRequest(body: unknown): AuthRequest & { sig: Uint8Array } {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new KapokError(
      'KAPOK_HTTP_BAD_REQUEST',
      'body: expected a JSON object {serial, nonce, timestamp, signature}',
    );
  checkSerial(b.serial);
  if (typeof b.nonce !== 'string' || !NONCE.test(b.nonce))
    throw new KapokError('KAPOK_GM_INVALID_INPUT', 'nonce: expected 16..128 characters of A-Z a-z 0-9 _ -');
  if (typeof b.timestamp !== 'number' || !Number.isSafeInteger(b.timestamp))
    throw new KapokError('KAPOK_GM_INVALID_INPUT', 'timestamp: expected Unix time in whole seconds');
  if (typeof b.signature !== 'string' || b.signature.length > 1024)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', 'signature: expected the hex DER SM9 signature');
  const sig = fromHex(b.signature, 'signature');
  return { serial: b.serial, nonce: b.nonce, timestamp: b.timestamp, signature: b.signature, sig };
}
