import { KapokError } from '../../core/errors.js';
import type { Principal } from '../auth/index.js';
import type { GatewayConfig, TargetConfig } from '../config.js';
import type { Upstream } from '../upstream/pool.js';
import { Circuit, type CircuitState } from './circuit.js';
import { type TokenCounter, tokenizerFor } from './tokens.js';

/** One upstream model on one provider; its circuit is shared by every client model that uses it. */
export interface Target {
  /** `<provider>/<model>`: metrics label, x-kapok-target, circuit key. */
  readonly key: string;
  readonly upstream: Upstream;
  readonly model: string;
  readonly weight: number;
  readonly circuit: Circuit;
}

export interface Route {
  readonly name: string;
  readonly targets: readonly Target[];
  readonly fallbacks: readonly Target[];
  readonly degrade: { aboveTokens: number; to: Target } | null;
  readonly tokens: TokenCounter;
}

export interface Plan {
  attempts: Target[];
  degraded: boolean;
}

export interface RouterOptions {
  config: GatewayConfig;
  upstreams: ReadonlyMap<string, Upstream>;
  tokenizers: ReadonlyMap<string, TokenCounter>;
  onCircuitChange?: (target: string, state: CircuitState) => void;
  random?: () => number;
}

/** Client-facing model → ordered upstream attempts (weights, circuits, degradation, fallbacks). */
export class Router {
  readonly routes = new Map<string, Route>();
  readonly circuits = new Map<string, Target>();
  readonly #cfg: GatewayConfig;
  readonly #allowed: ReadonlySet<string>;
  readonly #header: string;
  readonly #random: () => number;

  constructor(o: RouterOptions) {
    this.#cfg = o.config;
    this.#random = o.random ?? Math.random;
    this.#allowed = new Set(o.config.preference.allowed);
    this.#header = o.config.preference.header.toLowerCase();
    const target = (t: TargetConfig): Target => {
      const key = `${t.provider}/${t.model}`;
      const shared = this.circuits.get(key);
      const circuit =
        shared?.circuit ?? new Circuit({ ...o.config.circuit, onChange: (s) => o.onCircuitChange?.(key, s) });
      const made: Target = {
        key,
        upstream: o.upstreams.get(t.provider) as Upstream,
        model: t.model,
        weight: t.weight,
        circuit,
      };
      if (!shared) this.circuits.set(key, made);
      return made;
    };
    for (const m of o.config.models) {
      this.routes.set(m.name, {
        name: m.name,
        targets: m.targets.map(target),
        fallbacks: m.fallbacks.map(target),
        degrade: m.degrade ? { aboveTokens: m.degrade.aboveTokens, to: target(m.degrade.to) } : null,
        tokens: o.tokenizers.get(tokenizerFor(m)) as TokenCounter,
      });
    }
  }

  /** Lower-cased name of the preference header. */
  get preferenceHeader(): string {
    return this.#header;
  }

  /**
   * The route for a request: the preference header (when present) overrides the body's model, but
   * only with an allowed value. Neither value is echoed back: they may be hostile.
   */
  resolve(bodyModel: unknown, preference: string | string[] | undefined, p: Principal): Route {
    let name: string;
    if (preference !== undefined) {
      const v = Array.isArray(preference) ? undefined : preference.trim();
      if (v === undefined || !this.#allowed.has(v)) {
        const allowed = [...this.#allowed];
        throw new KapokError(
          'KAPOK_GATEWAY_PREFERENCE_INVALID',
          allowed.length
            ? `${this.#cfg.preference.header} must be one of: ${allowed.join(', ')} (or left out)`
            : `${this.#cfg.preference.header} is not accepted here: gateway.preference.allowed is empty`,
          { details: { param: this.#cfg.preference.header } },
        );
      }
      name = v;
    } else {
      if (typeof bodyModel !== 'string' || bodyModel === '') {
        throw new KapokError(
          'KAPOK_GATEWAY_BAD_REQUEST',
          'model: required, a model name from GET /v1/models',
          {
            details: { param: 'model' },
          },
        );
      }
      name = bodyModel;
    }
    const route = this.routes.get(name);
    if (!route) {
      throw new KapokError(
        'KAPOK_GATEWAY_MODEL_NOT_FOUND',
        'model not found: list the models you may use with GET /v1/models',
        {
          details: { param: 'model' },
        },
      );
    }
    if (p.models && !p.models.has(name)) {
      throw new KapokError(
        'KAPOK_GATEWAY_MODEL_FORBIDDEN',
        `this key may not use model ${name}: see GET /v1/models`,
        {
          details: { param: 'model' },
        },
      );
    }
    return route;
  }

  /** Ordered attempts: a weighted pick, the other targets by weight, then fallbacks; open circuits skipped. */
  plan(route: Route, promptTokens: number): Plan {
    const max = this.#cfg.retry.maxAttempts;
    const degraded = route.degrade !== null && promptTokens > route.degrade.aboveTokens;
    const attempts: Target[] = [];
    const add = (t: Target) => {
      if (attempts.length < max && !attempts.includes(t) && t.circuit.available()) attempts.push(t);
    };
    if (degraded) add((route.degrade as { to: Target }).to);
    else for (const t of this.#weightedOrder(route.targets)) add(t);
    for (const t of route.fallbacks) add(t);
    if (!attempts.length) {
      throw new KapokError(
        'KAPOK_GATEWAY_NO_TARGET',
        `every upstream of model ${route.name} has an open circuit; retry after the cool-down`,
      );
    }
    return { attempts, degraded };
  }

  #weightedOrder(targets: readonly Target[]): Target[] {
    const pool = targets.filter((t) => t.weight > 0 && t.circuit.available());
    if (pool.length <= 1) return pool;
    const out: Target[] = [];
    let total = pool.reduce((s, t) => s + t.weight, 0);
    while (pool.length) {
      let r = this.#random() * total;
      let i = 0;
      for (; i < pool.length - 1; i++) {
        r -= (pool[i] as Target).weight;
        if (r < 0) break;
      }
      const [t] = pool.splice(i, 1) as [Target];
      total -= t.weight;
      out.push(t);
    }
    return out;
  }

  /** Circuit states for /readyz and the metrics gauge. */
  /**
   * Models none of whose targets (targets, fallbacks, degrade target) can take a request now: every
   * circuit open and still cooling down. Half-open counts as available (its probe may succeed).
   */
  unavailableModels(): string[] {
    const out: string[] = [];
    for (const r of this.routes.values()) {
      const all = [...r.targets, ...r.fallbacks, ...(r.degrade ? [r.degrade.to] : [])];
      if (all.every((t) => t.circuit.state === 'open')) out.push(r.name);
    }
    return out;
  }

  circuitStates(): Record<string, CircuitState> {
    const out: Record<string, CircuitState> = {};
    for (const [key, t] of this.circuits) out[key] = t.circuit.state;
    return out;
  }
}
