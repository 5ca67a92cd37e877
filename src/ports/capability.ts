import type { FastifyInstance } from 'fastify';
import type { Health } from '../core/health.js';
import type { AdminGuard } from '../core/http/admin-auth.js';
import type { UpgradeRouter } from '../core/http/upgrade.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { PlatformInfo } from '../core/platform/index.js';
import type { Tracing } from '../core/tracing.js';
import type { SharedPorts } from './device-tokens.js';
import type { EventBus } from './events.js';
import type { KV } from './kv.js';
import type { Store } from './store.js';

/**
 * The port between the wiring point (src/app.ts) and a capability: what a capability is handed,
 * and what it hands back. It lives with the ports, not in core, because it names them (Store, KV):
 * core stays the bottom layer that imports nothing of ours.
 */

/** The platform keys a capability may read besides its own section. */
export interface SharedSettings {
  readonly region: string;
  readonly profile: 'default' | 'gov';
  readonly http: { readonly host: string };
  readonly grpc: { readonly port: number };
  /** The CPU and NUMA layout detected at start (core/platform); absent where a caller builds no platform. */
  readonly platform?: PlatformInfo;
}

/** What the wiring point hands each capability: its own config section, core services and ports, never an adapter. */
export interface CapabilityContext<C = unknown> {
  /** The capability's own section of the configuration (`edge` for edge), validated with defaults. */
  config: C;
  shared: SharedSettings;
  logger: Logger;
  metrics: Metrics;
  tracing: Tracing;
  health: Health;
  store: Store;
  kv: KV;
  /** The fleet event bus (events.adapter): publish where a change is made, subscribe to act on it. */
  events: EventBus;
  /** Absolute data directory (dataDir resolved against the config file's folder), created and writable. */
  dataDir: string;
  /** Ports offered by capabilities started before this one (see Capability.provides). */
  ports: SharedPorts;
  /** HTTP upgrades (WebSockets) on the main port: register a path instead of listening on the server. */
  upgrades: UpgradeRouter;
  /**
   * The guard of an admin surface, under Kapok's one rule (core/http/admin-auth.ts): the profile,
   * the role tokens (admin.tokens) and the start notice are the wiring point's; the capability
   * gives its own token (role admin for it alone) and names, and declares its routes' roles.
   */
  adminGuard(o: { token: string | null; key: string; what: string }): AdminGuard;
}

/**
 * A capability (gateway, inference, edge, v2x, gm). `routes` is registered as an encapsulated
 * Fastify plugin under `prefix`, so its hooks and error handler stay its own.
 */
export interface Capability {
  readonly name: string;
  readonly prefix?: string;
  routes?(app: FastifyInstance): Promise<void>;
  /** Ports this capability offers those started after it (gm starts first: edge uses its tokens). */
  readonly provides?: SharedPorts;
  /** Called after routes are mounted and before the HTTP port opens. */
  start?(): Promise<void>;
  /**
   * Called once after the HTTP port opened (the instance is ready): background work /healthz should
   * not wait for, such as precomputation a first request would otherwise pay. Must not throw.
   */
  ready?(): void;
  /** Called during shutdown after HTTP stopped taking requests; must finish in-flight work or give up. */
  stop?(): Promise<void>;
  /**
   * What this capability can apply live of a change to its section (hot reload, docs/control.md).
   * Called with the new section and the one in force; it must change nothing yet. Throw (a
   * KapokError saying why) to refuse the whole change; otherwise return the keys that need a restart
   * and an `apply` the control plane calls once every capability accepted. A capability without
   * this method has every change to its section reported as needing a restart.
   */
  reconfigure?(next: unknown, prev: unknown): ReconfigurePlan | Promise<ReconfigurePlan>;
}

/** A capability's answer to a configuration change it accepts. */
export interface ReconfigurePlan {
  /** Keys of the section (dotted, relative: `limits.maxBodyBytes`) it cannot apply live; they keep their old value until a restart. */
  readonly restart: readonly string[];
  /** Applies the rest. Must not fail: whatever can fail belongs in reconfigure itself. */
  apply(): void | Promise<void>;
}

/** A capability's factory: its context, and (for those that need engines) adapters app.ts built for it. */
export type CapabilityFactory<C, D = undefined> = (ctx: CapabilityContext<C>, deps: D) => Promise<Capability>;
