import { createHash, timingSafeEqual } from 'node:crypto';
import type { DeviceTokenPort } from '../../ports/device-tokens.js';
import type { Subject } from './acl.js';

/**
 * Who an MQTT client is: a device (gm token), a static user (edge.auth.users) or anonymous. What it
 * may do is the authorization model's (acl.ts), from this subject.
 */
export interface MqttIdentity {
  subject: Subject;
  /** Token-based identities: when the token expires (ms); the session ends then. */
  expiresAt?: number;
  /** Token-based identities: whether the device is still active (revocation from another process). */
  recheck?: () => Promise<boolean>;
  /** Token-based identities: the payload to take in (decrypted for protected groups); throws to refuse. */
  open?: (topic: string, payload: Buffer) => Promise<Buffer>;
}

/**
 * The connect-time hook. The gm capability's device tokens plug in here (a function that checks a
 * token and returns the device); the default checks edge.auth.users and edge.auth.anonymous.
 */
export type MqttAuthenticate = (
  username: string | undefined,
  password: Buffer | undefined,
) => Promise<MqttIdentity | null>;

export function staticAuthenticate(opts: {
  anonymous: boolean;
  users: readonly { username: string; password: string }[];
}): MqttAuthenticate {
  // Digests of equal length: the comparison time says nothing about the password, its length included.
  const digest = (b: Buffer) => createHash('sha256').update(b).digest();
  const users = new Map(opts.users.map((u) => [u.username, digest(Buffer.from(u.password))]));
  const none = digest(Buffer.from('\0no user\0'));
  return async (username, password) => {
    if (username === undefined || username === '')
      return opts.anonymous ? { subject: { kind: 'anonymous' } } : null;
    const want = users.get(username);
    const ok = timingSafeEqual(want ?? none, digest(password ?? Buffer.alloc(0)));
    return ok && want && password ? { subject: { kind: 'user', user: username } } : null;
  };
}

/**
 * Device tokens from the gm capability: username = the device serial, password = its token. The
 * token must name that device. Anything that is not a token (no two dots) goes to `fallback`
 * (static users, anonymous).
 */
export function deviceTokenAuthenticate(port: DeviceTokenPort, fallback: MqttAuthenticate): MqttAuthenticate {
  return async (username, password) => {
    const token = password?.toString('utf8');
    if (!username || !token || token.split('.').length !== 3) return fallback(username, password);
    let claims: Awaited<ReturnType<DeviceTokenPort['verify']>>;
    try {
      claims = await port.verify(token);
    } catch {
      return null;
    }
    if (claims.device !== username) return null;
    return {
      subject: { kind: 'device', device: claims.device, vehicle: claims.vehicle, group: claims.group },
      expiresAt: claims.expiresAt,
      open: (topic, payload) => port.openPayload(claims.device, claims.group, topic, payload),
      // The token's signature was checked above; later only the device's status can change.
      recheck: () => port.active(claims.device).catch(() => false),
    };
  };
}
