import type { Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import { SharedSubscriptions } from './shared.js';

/** MQTT 5 reason codes Kapok sends itself (Aedes sends the protocol ones). */
export const Reason = {
  unspecified: 0x80,
  notAuthorized: 0x87,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
  maximumConnectTime: 0xa0,
} as const;

export const isV5 = (client: Client): boolean => client.version === 5;

/**
 * Ends a session: MQTT 5 clients get a DISCONNECT with the reason code and a short reason string
 * (sent to the client, so nothing internal in it); 3.1.1 clients, which have no server DISCONNECT,
 * see the connection close. `then` runs once it is closed.
 */
export function endSession(
  client: Client,
  reasonCode: number,
  reasonString: string,
  then?: () => void,
): void {
  client.disconnect({ reasonCode, properties: { reasonString } }, () => then?.());
}

/**
 * Two fixes at the one serializer Aedes writes every packet with, for connections handed to this
 * broker (`ours`) only:
 *   - Aedes 2.0.0-beta.1 writes `sharedSubscriptionAvailable: false` into every MQTT 5 CONNACK (it
 *     has none of its own); Kapok provides them (shared.ts), and strict clients refuse `$share/`
 *     after a false. The CONNACK is built inside Aedes with no hook: the property is dropped here
 *     (absent means available).
 *   - a shared delivery queued for an offline persistent member is sent on reconnect without
 *     passing `authorizeForward`, under its private topic: the published topic is restored here.
 * A string compare or two per written packet.
 */
const ours = new WeakSet<object>();
let wrapped = false;

type P = { cmd: string; topic?: string; properties?: Record<string, unknown> };

export function hookWrites(conn: object): void {
  ours.add(conn);
  if (wrapped) return;
  wrapped = true;
  const mp = mqttPacket as unknown as { writeToStream: (p: P, s: object, o: unknown) => boolean };
  const write = mp.writeToStream;
  const patched = (p: P, s: object, o: unknown) => {
    if (p.cmd === 'publish') {
      const original = p.topic?.charCodeAt(0) === 36 ? SharedSubscriptions.restore(p.topic) : null;
      if (original !== null && ours.has(s)) return write({ ...p, topic: original }, s, o);
    } else if (p.cmd === 'connack' && p.properties?.sharedSubscriptionAvailable === false && ours.has(s))
      delete p.properties.sharedSubscriptionAvailable;
    return write(p, s, o);
  };
  mp.writeToStream = Object.assign(patched, write);
}

/**
 * The size on the wire of a PUBLISH to an MQTT 5 client, to honour the Maximum Packet Size the client
 * set (Aedes stores it but does not enforce it on delivery; the spec says the server MUST NOT send a
 * larger packet and discards it instead). Computed only for clients that set one.
 */
export function tooLargeFor(client: Client, packet: object): boolean {
  const max = client.maximumPacketSize;
  if (!max) return false;
  try {
    // messageId: Aedes numbers the delivery after this hook; any id has the same 2 bytes.
    const p = { ...packet, messageId: 1 } as unknown as mqttPacket.Packet;
    return mqttPacket.generate(p, { protocolVersion: 5 }).length > max;
  } catch {
    return true;
  }
}
