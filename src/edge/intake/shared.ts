import type { Aedes, Client } from 'aedes';

/** Where a shared delivery goes: `$kapok/share/<member>/<original topic>`; no client may subscribe here. */
export const SHARE_TOPIC = '$kapok/share/';
const SHARE_PREFIX = '$share/';

interface Member {
  clientId: string;
  /** `$kapok/share/<n>/`: the member's private delivery prefix. */
  prefix: string;
  /** Its session outlives the connection (MQTT 5 session expiry, or 3.1.1 clean: false). */
  persistent: boolean;
}

interface Group {
  filter: string;
  members: Member[];
  next: number;
  deliver: (packet: DeliveredPacket, cb: () => void) => void;
}

interface DeliveredPacket {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
  properties?: Record<string, unknown>;
  messageExpiry?: number;
}

/** A `$share/<group>/<filter>` subscription rewritten to its member's private topic. */
export interface ShareRequest {
  group: string;
  filter: string;
}

type Sub = { topic: string; qos: number };

/** `$share/<group>/<filter>` split, or null when not a valid shared subscription. */
export function parseShare(topic: string): ShareRequest | null {
  if (!topic.startsWith(SHARE_PREFIX)) return null;
  const slash = topic.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return null;
  const group = topic.slice(SHARE_PREFIX.length, slash);
  const filter = topic.slice(slash + 1);
  if (group === '' || /[+#]/.test(group) || filter === '') return null;
  return { group, filter };
}

/**
 * MQTT 5 shared subscriptions (also accepted from 3.1.1 clients, as Mosquitto does), which Aedes 2
 * refuses (0x9E). A SUBSCRIBE to `$share/g/f` is rewritten, before Aedes reads it, into a subscription
 * to the member's private topic `$kapok/share/<n>/#`; `authorizeSubscribe` checks the real filter `f`
 * against the ACL (so sharing never widens a right) and then `join`s. One broker-level listener per
 * group and filter hands each message to one member in turn (connected members first), republished
 * under the member's prefix; `restore` puts the original topic back when Aedes forwards it.
 * Retained messages are not sent to shared subscriptions (MQTT 5 §4.8.2). Groups live in memory,
 * as Aedes' default persistence does.
 */
export class SharedSubscriptions {
  readonly #broker: Aedes;
  readonly #groups = new Map<string, Group>();
  /** Per client id: its memberships by the `$share/...` string it subscribed with. */
  readonly #byClient = new Map<string, Map<string, { key: string; member: Member }>>();
  /** Rewritten subscriptions, by the subscription object Aedes hands to authorizeSubscribe. */
  readonly #pending = new WeakMap<object, ShareRequest & { share: string }>();
  #seq = 0;

  constructor(broker: Aedes) {
    this.#broker = broker;
  }

  /** Rewrites this connection's `$share/...` SUBSCRIBE and UNSUBSCRIBE entries before Aedes handles them. */
  attach(client: Client): void {
    const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser;
    parser?.prependListener(
      'packet',
      (p: { cmd: string; subscriptions?: Sub[]; unsubscriptions?: string[] }) => {
        if (p.cmd === 'subscribe' && p.subscriptions) {
          for (const s of p.subscriptions) {
            const req = parseShare(s.topic);
            if (!req) continue;
            const share = s.topic;
            const known = this.#byClient.get(client.id)?.get(share);
            s.topic = `${known ? known.member.prefix : `${SHARE_TOPIC}${++this.#seq}/`}#`;
            this.#pending.set(s, { ...req, share });
          }
        } else if (p.cmd === 'unsubscribe' && p.unsubscriptions) {
          p.unsubscriptions = p.unsubscriptions.map((t) => {
            const m = this.#byClient.get(client.id)?.get(t);
            if (!m) return t;
            this.#leave(client.id, t);
            return `${m.member.prefix}#`;
          });
        }
      },
    );
  }

  /** The shared request behind a rewritten subscription (authorizeSubscribe), or undefined. */
  request(sub: object): ShareRequest | undefined {
    return this.#pending.get(sub);
  }

  /** Adds the client to the group once its subscription is authorized. */
  join(client: Client, sub: Sub): void {
    const req = this.#pending.get(sub);
    if (!req) return;
    const mine = this.#byClient.get(client.id) ?? new Map();
    this.#byClient.set(client.id, mine);
    if (mine.has(req.share)) return;
    const key = `${req.group}\u0000${req.filter}`;
    let g = this.#groups.get(key);
    if (!g) {
      const group: Group = {
        filter: req.filter,
        members: [],
        next: 0,
        deliver: (p, cb) => this.#deliver(group, p, cb),
      };
      g = group;
      this.#groups.set(key, group);
      this.#broker.subscribe(req.filter, group.deliver, () => {});
    }
    const member: Member = {
      clientId: client.id,
      prefix: sub.topic.slice(0, -1),
      persistent: !(client as unknown as { clean?: boolean }).clean,
    };
    g.members.push(member);
    mine.set(req.share, { key, member });
  }

  /** The original topic of a shared delivery (`$kapok/share/<n>/<topic>`), or null for any other topic. */
  static restore(topic: string): string | null {
    if (!topic.startsWith(SHARE_TOPIC)) return null;
    const slash = topic.indexOf('/', SHARE_TOPIC.length);
    return slash < 0 ? null : topic.slice(slash + 1);
  }

  /** A connection ended: a session that ends with it leaves its groups; a persistent one stays. */
  disconnected(client: Client): void {
    const mine = this.#byClient.get(client.id);
    if (!mine) return;
    for (const [share, m] of [...mine]) if (!m.member.persistent) this.#leave(client.id, share);
  }

  /** A persistent session expired (or was taken over by a clean one): it leaves every group. */
  ended(clientId: string): void {
    for (const share of [...(this.#byClient.get(clientId)?.keys() ?? [])]) this.#leave(clientId, share);
  }

  /** Members of a group now (tests, metrics). */
  members(group: string, filter: string): number {
    return this.#groups.get(`${group}\u0000${filter}`)?.members.length ?? 0;
  }

  #leave(clientId: string, share: string): void {
    const mine = this.#byClient.get(clientId);
    const m = mine?.get(share);
    if (!mine || !m) return;
    mine.delete(share);
    if (mine.size === 0) this.#byClient.delete(clientId);
    const g = this.#groups.get(m.key);
    if (!g) return;
    g.members = g.members.filter((x) => x !== m.member);
    if (g.members.length === 0) {
      this.#groups.delete(m.key);
      this.#broker.unsubscribe(g.filter, g.deliver, () => {});
    }
  }

  #deliver(g: Group, p: DeliveredPacket, cb: () => void): void {
    // `$` topics (ours included) never match a shared filter that does not name them.
    if (p.topic.charCodeAt(0) === 36 && !g.filter.startsWith('$')) {
      cb();
      return;
    }
    const clients = (this.#broker as unknown as { clients: Record<string, unknown> }).clients;
    const n = g.members.length;
    let pick: Member | undefined;
    for (let i = 0; i < n && !pick; i++) {
      const m = g.members[(g.next + i) % n] as Member;
      if (clients[m.clientId]) {
        pick = m;
        g.next = (g.next + i + 1) % n;
      }
    }
    // Nobody connected: a persistent session queues it (Aedes' offline queue), else it is dropped.
    pick ??= g.members.find((m) => m.persistent);
    if (!pick) {
      cb();
      return;
    }
    const copy: DeliveredPacket & { cmd: 'publish'; retain: false; dup: false } = {
      cmd: 'publish',
      topic: pick.prefix + p.topic,
      payload: p.payload,
      qos: p.qos,
      retain: false,
      dup: false,
    };
    if (p.properties) copy.properties = p.properties;
    if (p.messageExpiry !== undefined) copy.messageExpiry = p.messageExpiry;
    this.#broker.publish(copy as never, () => cb());
  }
}
