import type { FastifyInstance } from 'fastify';
import type { SharedPorts } from '../ports/device-tokens.js';
import type { KV } from '../ports/kv.js';
import type { Store } from '../ports/store.js';
import type { KapokConfig } from './config/index.js';
import type { Health } from './health.js';
import type { UpgradeRouter } from './http/upgrade.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Tracing } from './tracing.js';

/** What the wiring point hands each capability: core services and ports, never an adapter. */
export interface CapabilityContext {
  config: KapokConfig;
  logger: Logger;
  metrics: Metrics;
  tracing: Tracing;
  health: Health;
  store: Store;
  kv: KV;
  /** Absolute data directory (dataDir resolved against the config file's folder), created and writable. */
  dataDir: string;
  /** Ports offered by capabilities started before this one (see Capability.provides). */
  ports: SharedPorts;
  /** HTTP upgrades (WebSockets) on the main port: register a path instead of listening on the server. */
  upgrades?: UpgradeRouter;
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
  /** Called during shutdown after HTTP stopped taking requests; must finish in-flight work or give up. */
  stop?(): Promise<void>;
}

export type CapabilityFactory = (ctx: CapabilityContext) => Promise<Capability>;
