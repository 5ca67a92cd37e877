import type { IncomingHttpHeaders } from 'node:http';
import type { DeviceTokenPort } from '../../ports/device-tokens.js';
import type { MqttAuthenticate, MqttIdentity } from '../intake/auth.js';

/**
 * Who is writing: the same identities as MQTT publishers (docs/edge.md, "InfluxDB write API"),
 * never an admin token. Credentials, as InfluxDB clients send them:
 *   - `Authorization: Token <device token>` (or `Bearer`): a gm device token alone;
 *   - `Authorization: Token <username>:<password>` (InfluxDB 1.8's form for v2 clients), `Basic`,
 *     or the v1 query parameters `u` and `p`: an edge.auth.users entry, or a device serial with
 *     its token as password (as over MQTT);
 *   - nothing: anonymous, if edge.auth.anonymous is on.
 * Passwords are compared in constant time (intake/auth.ts).
 */

export type WriteAuthenticate = (
  headers: IncomingHttpHeaders,
  query: Record<string, string | undefined>,
) => Promise<MqttIdentity | null>;

export function writeAuthenticate(
  authenticate: MqttAuthenticate,
  tokens?: DeviceTokenPort,
): WriteAuthenticate {
  const byToken = async (token: string): Promise<MqttIdentity | null> => {
    if (!tokens || token.split('.').length !== 3) return null;
    try {
      const c = await tokens.verify(token);
      return {
        subject: { kind: 'device', device: c.device, vehicle: c.vehicle, group: c.group },
        expiresAt: c.expiresAt,
        open: (topic, payload) => tokens.openPayload(c.device, c.group, topic, payload),
      };
    } catch {
      return null;
    }
  };
  const byPassword = (user: string, pass: string) =>
    // An empty user name would mean anonymous to the MQTT hook: a credential was given, so no.
    user === '' ? Promise.resolve(null) : authenticate(user, Buffer.from(pass, 'utf8'));

  return async (headers, query) => {
    const h = headers.authorization;
    if (typeof h === 'string' && h !== '') {
      const m = /^(Token|Bearer|Basic)[ \t]+(\S+)[ \t]*$/i.exec(h);
      if (!m) return null;
      const scheme = (m[1] as string).toLowerCase();
      const value = m[2] as string;
      const pair = scheme === 'basic' ? Buffer.from(value, 'base64').toString('utf8') : value;
      const colon = pair.indexOf(':');
      if (colon >= 0) return byPassword(pair.slice(0, colon), pair.slice(colon + 1));
      return scheme === 'basic' ? null : byToken(value);
    }
    if (query.u !== undefined || query.p !== undefined) return byPassword(query.u ?? '', query.p ?? '');
    return authenticate(undefined, undefined);
  };
}
