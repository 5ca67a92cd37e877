import { validFilter } from '../decode/topic.js';
import { matchLevels } from './taps.js';

/**
 * The MQTT authorization model of the embedded broker (the table in docs/edge.md), in one place.
 * Nothing is allowed by default:
 *   - a device (token) may publish to its telemetry topics (edge.topicPattern with its serial as
 *     {device}) and to edge.acl.devices.publish, may subscribe to edge.acl.devices.subscribe, with
 *     {device} = its serial and {vehicle} = the vehicle id bound at registration, plus the grants
 *     of its group (`group:<name>`);
 *   - a static user (edge.auth.users) has exactly the grants naming it (`user:<name>`);
 *   - an anonymous client has exactly the grants naming `anonymous`.
 * No one publishes to `$…` topics or to strategy topics (Kapok alone does); `$SYS/…` filters may be
 * granted to users only (admin users). Grants are compiled at CONNECT into pre-split levels, so a
 * PUBLISH costs a walk over a few filters and no allocation.
 */

export interface AclConfig {
  enabled: boolean;
  devices: { publish: readonly string[]; subscribe: readonly string[] };
  grants: readonly { who: string; publish: readonly string[]; subscribe: readonly string[] }[];
}

export type Subject =
  | { kind: 'device'; device: string; vehicle: string; group: string }
  | { kind: 'user'; user: string }
  | { kind: 'anonymous' };

/** What one session may do; null publish/subscribe lists mean "anything" (edge.acl.enabled: false). */
export interface Rights {
  publish: readonly (readonly string[])[] | null;
  subscribe: readonly (readonly string[])[] | null;
}

/** Strategy topics (src/v2x/dispatch.ts publishes `v2x/<vehicle>/strategy`): Kapok alone publishes them. */
const RESERVED: readonly (readonly string[])[] = [['v2x', '+', 'strategy']];
const PLACEHOLDER = /^\{(device|vehicle)\}$/;
export const UNRESTRICTED: Rights = { publish: null, subscribe: null };

/** Why a granted filter is not acceptable for `who`, or null (used by the config schema). */
export function grantProblem(filter: string, who: 'device' | 'user' | 'anonymous'): string | null {
  if (!validFilter(filter)) return `${filter.slice(0, 80)} is not a valid MQTT topic filter`;
  const levels = filter.split('/');
  for (const l of levels) {
    if (l.includes('{') || l.includes('}')) {
      if (!PLACEHOLDER.test(l)) return `${filter}: only {device} and {vehicle}, each a whole level`;
      if (who !== 'device') return `${filter}: {device} and {vehicle} only in device and group: grants`;
    }
  }
  if (filter.startsWith('$')) {
    if (!filter.startsWith('$SYS/') && filter !== '$SYS')
      return `${filter}: of $ topics only $SYS can be granted`;
    if (who !== 'user') return `${filter}: $SYS only for user: grants (admin users)`;
  }
  return null;
}

/** Whether the requested subscription filter only reaches topics the granted filter reaches. */
export function covers(granted: readonly string[], requested: string): boolean {
  const r = requested.split('/');
  const dollar = requested.charCodeAt(0) === 36;
  for (let i = 0; i < granted.length; i++) {
    const g = granted[i] as string;
    if (g === '#') return !(i === 0 && dollar);
    if (i >= r.length) return false;
    const q = r[i] as string;
    if (q === '#') return false;
    if (g === '+') {
      if (i === 0 && dollar) return false;
      continue;
    }
    if (q === '+' || q !== g) return false;
  }
  return r.length === granted.length;
}

export function canPublish(rights: Rights, topic: string): boolean {
  if (topic.charCodeAt(0) === 36) return false;
  for (let i = 0; i < RESERVED.length; i++) if (matchLevels(RESERVED[i] as string[], topic)) return false;
  const list = rights.publish;
  if (list === null) return true;
  for (let i = 0; i < list.length; i++) if (matchLevels(list[i] as string[], topic)) return true;
  return false;
}

export function canSubscribe(rights: Rights, filter: string): boolean {
  const list = rights.subscribe;
  if (list === null) return !filter.startsWith('$') || filter.startsWith('$SYS');
  for (const g of list) if (covers(g, filter)) return true;
  return false;
}

/** Compiles edge.acl once; `rightsOf` builds one session's rights at CONNECT. */
export class Acl {
  readonly #cfg: AclConfig;
  readonly #telemetry: string[];
  readonly #users = new Map<string, Rights>();
  readonly #groups = new Map<string, { publish: string[][]; subscribe: string[][] }>();
  readonly #anonymous: Rights;

  constructor(cfg: AclConfig, topicPattern: string) {
    this.#cfg = cfg;
    // Telemetry: the pattern with {device} kept for substitution and {measurement} any level.
    this.#telemetry = topicPattern.split('/').map((l) => (l === '{measurement}' ? '+' : l));
    const split = (fs: readonly string[]) => fs.map((f) => f.split('/'));
    const anon = { publish: [] as string[][], subscribe: [] as string[][] };
    for (const g of cfg.grants) {
      const pub = split(g.publish);
      const sub = split(g.subscribe);
      if (g.who === 'anonymous') {
        anon.publish.push(...pub);
        anon.subscribe.push(...sub);
      } else if (g.who.startsWith('user:')) {
        const name = g.who.slice(5);
        const r = this.#users.get(name) ?? { publish: [], subscribe: [] };
        this.#users.set(name, {
          publish: [...(r.publish ?? []), ...pub],
          subscribe: [...(r.subscribe ?? []), ...sub],
        });
      } else {
        const name = g.who.slice(6);
        const r = this.#groups.get(name) ?? { publish: [], subscribe: [] };
        r.publish.push(...pub);
        r.subscribe.push(...sub);
        this.#groups.set(name, r);
      }
    }
    this.#anonymous = anon;
  }

  get enabled(): boolean {
    return this.#cfg.enabled;
  }

  rightsOf(s: Subject): Rights {
    if (!this.#cfg.enabled) return UNRESTRICTED;
    if (s.kind === 'anonymous') return this.#anonymous;
    if (s.kind === 'user') return this.#users.get(s.user) ?? { publish: [], subscribe: [] };
    const fill = (levels: readonly string[]) =>
      levels.map((l) => (l === '{device}' ? s.device : l === '{vehicle}' ? s.vehicle : l));
    const group = this.#groups.get(s.group);
    return {
      publish: [
        fill(this.#telemetry),
        ...this.#cfg.devices.publish.map((f) => fill(f.split('/'))),
        ...(group?.publish ?? []).map(fill),
      ],
      subscribe: [
        ...this.#cfg.devices.subscribe.map((f) => fill(f.split('/'))),
        ...(group?.subscribe ?? []).map(fill),
      ],
    };
  }
}
