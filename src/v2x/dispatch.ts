import type { Logger } from '../core/log.js';
import type { MqttPeer, MqttPort } from '../ports/mqtt.js';
import type { Strategy, StrategyWal } from './wal.js';
import type { RaisedWarning, Warning } from './warning.js';

interface Pending {
  s: Strategy;
  topic: string;
  payload: Buffer;
  inflight: boolean;
  lastSent: number;
  sent: number;
  /** Whose PUBACK counts: the session of the device bound to this strategy's vehicle. */
  accept: (peer: MqttPeer) => boolean;
}

export interface DispatcherOptions {
  wal: StrategyWal;
  mqtt: MqttPort | null;
  ttlMs: number;
  retryMs: number;
  maxPending: number;
  logger: Logger;
  now?: () => number;
  /** Decision latency (ms, intake to first publish) per strategy. */
  onLatency?: (ms: number) => void;
  onStrategy?: (s: Strategy) => void;
}

/** Strategies a warning turns into, one per vehicle that must act. */
export function strategiesFor(w: Warning): Array<Pick<Strategy, 'vehicleId' | 'action' | 'speedMs'>> {
  const [actor, other] = w.vehicles as [string, string | undefined];
  const hard = w.severity === 'critical';
  switch (w.type) {
    case 'FCW':
    case 'EBW':
      return [{ vehicleId: actor, action: hard ? 'BRAKE_IMMEDIATE' : 'SLOW_DOWN' }];
    case 'ICW':
      return [
        { vehicleId: actor, action: hard ? 'BRAKE_IMMEDIATE' : 'SLOW_DOWN' },
        ...(other ? [{ vehicleId: other, action: 'CAUTION' as const }] : []),
      ];
    case 'RLVW':
      return [{ vehicleId: actor, action: 'STOP_AT_LINE' }];
    case 'GLOSA':
      return [
        {
          vehicleId: actor,
          action: 'SPEED_ADVICE',
          ...(w.advisedSpeedMs === undefined ? {} : { speedMs: w.advisedSpeedMs }),
        },
      ];
  }
}

/**
 * At-least-once delivery before expiry: each strategy is appended to the WAL before its first
 * publish (QoS 1 on v2x/{vehicleId}/strategy), published again every retryMs until acknowledged
 * and expired at expiresAt: an expired strategy is logged as such and never published again.
 * Acknowledged means by the vehicle itself: the PUBACK of the session authenticated as the device
 * bound to that vehicle id, or an application ack from it; any other ack is ignored and counted.
 */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #pending = new Map<string, Pending>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  readonly #boot = Date.now().toString(36);
  #stopped = false;
  #warnedFullAt = 0;
  acked = 0;
  expired = 0;
  published = 0;
  created = 0;
  /** PUBACKs and application acks from anyone but the strategy's vehicle. */
  ignoredAcks = 0;

  constructor(o: DispatcherOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get pending(): number {
    return this.#pending.size;
  }

  list(): Strategy[] {
    return [...this.#pending.values()].map((p) => p.s);
  }

  /** Replayed from the WAL at start: expired ones are logged as expired, the rest sent again. */
  restore(strategies: Strategy[]): { resent: number; expired: number } {
    const now = this.#now();
    let expired = 0;
    for (const s of strategies) {
      if (s.expiresAt <= now) {
        this.#o.wal.expire(s.id);
        this.expired++;
        expired++;
        continue;
      }
      this.#track(s);
    }
    return { resent: this.#pending.size, expired };
  }

  start(): void {
    const tick = Math.max(5, Math.floor(this.#o.retryMs / 2));
    this.#timer = setInterval(() => this.#sweep(), tick);
    this.#timer.unref();
    for (const p of this.#pending.values()) this.#send(p);
  }

  /** Stops retrying; acks arriving afterwards are ignored (the WAL replays those strategies). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  onWarning(rw: RaisedWarning): void {
    if (this.#stopped) return;
    const now = this.#now();
    const w = rw.warning;
    for (const part of strategiesFor(w)) {
      const s: Strategy = {
        id: `s-${this.#boot}-${++this.#seq}`,
        ...part,
        warningId: w.id,
        warningType: w.type,
        severity: w.severity,
        vehicles: w.vehicles,
        trigger: { vehicle: w.trigger.vehicle, msgCnt: w.trigger.msgCnt, secMark: w.trigger.secMark },
        createdAt: now,
        expiresAt: now + this.#o.ttlMs,
      };
      if (this.#pending.size >= this.#o.maxPending) this.#expireOldest();
      this.#o.wal.add(s);
      this.created++;
      this.#o.onStrategy?.(s);
      const p = this.#track(s);
      this.#send(p);
      this.#o.onLatency?.(performance.now() - rw.intakeAt);
    }
  }

  /**
   * An application ack (payload: the strategy id) from `vehicle` (the acker's bound vehicle id, or
   * null when it has none). Returns whether it settled a pending strategy.
   */
  ack(id: string, vehicle: string | null): boolean {
    if (this.#stopped) return false;
    const p = this.#pending.get(id);
    if (!p) return false;
    if (vehicle !== p.s.vehicleId) {
      this.ignoredAcks++;
      return false;
    }
    this.#settle(p);
    return true;
  }

  #settle(p: Pending): void {
    const id = p.s.id;
    this.#pending.delete(id);
    this.#o.wal.ack(id);
    this.acked++;
  }

  #track(s: Strategy): Pending {
    const p: Pending = {
      s,
      topic: `v2x/${s.vehicleId}/strategy`,
      payload: Buffer.from(JSON.stringify(s)),
      inflight: false,
      lastSent: 0,
      sent: 0,
      accept: (peer) => {
        if (peer.vehicle === s.vehicleId) return true;
        this.ignoredAcks++;
        return false;
      },
    };
    this.#pending.set(s.id, p);
    return p;
  }

  #send(p: Pending): void {
    const mqtt = this.#o.mqtt;
    const now = this.#now();
    if (!mqtt || p.inflight || p.s.expiresAt <= now) return;
    p.inflight = true;
    p.lastSent = now;
    p.sent++;
    this.published++;
    const timeoutMs = Math.max(1, Math.min(this.#o.retryMs, p.s.expiresAt - now));
    mqtt.publish(p.topic, p.payload, { qos: 1, timeoutMs, acceptAck: p.accept }).then(
      () => {
        if (!this.#stopped && this.#pending.get(p.s.id) === p) this.#settle(p);
      },
      () => {
        p.inflight = false;
      },
    );
  }

  #sweep(): void {
    const now = this.#now();
    for (const p of this.#pending.values()) {
      if (p.s.expiresAt <= now) {
        this.#pending.delete(p.s.id);
        this.#o.wal.expire(p.s.id);
        this.expired++;
      } else if (!p.inflight && now - p.lastSent >= this.#o.retryMs) this.#send(p);
    }
  }

  #expireOldest(): void {
    const first = this.#pending.values().next().value as Pending | undefined;
    if (!first) return;
    this.#pending.delete(first.s.id);
    this.#o.wal.expire(first.s.id);
    this.expired++;
    const now = this.#now();
    if (now - this.#warnedFullAt < 10_000) return;
    this.#warnedFullAt = now;
    this.#o.logger.warn(
      { maxPending: this.#o.maxPending },
      'v2x strategies pending at the limit: oldest expired early (logged at most every 10 s)',
    );
  }
}
