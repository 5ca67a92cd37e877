import { timingSafeEqual } from 'node:crypto';

/**
 * Who an MQTT client is. `device` null: may publish for any device (static operator credentials,
 * anonymous); a device id: may only publish to topics whose {device} level is that id.
 */
export interface MqttIdentity {
  device: string | null;
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
  const users = new Map(opts.users.map((u) => [u.username, Buffer.from(u.password)]));
  return async (username, password) => {
    if (username === undefined || username === '') return opts.anonymous ? { device: null } : null;
    const want = users.get(username);
    if (!want || !password || want.length !== password.length) return null;
    return timingSafeEqual(want, password) ? { device: null } : null;
  };
}
