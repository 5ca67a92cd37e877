import type { EventBus } from '../ports/events.js';
import type { Store } from '../ports/store.js';
import { KeyStore } from './auth/key-store.js';
import { KeyService } from './auth/keys.js';
import type { GatewayConfig } from './config.js';

export type { KeyInfo } from './auth/key-store.js';
export type { KeyService } from './auth/keys.js';
/**
 * The gateway's public surface: its factory (wired by src/app.ts) and what the `kapok keys`
 * command may call. Everything else in src/gateway is the capability's own.
 */
export { createGateway } from './capability.js';

/**
 * Key management straight on the Store, uncached, as `kapok keys` does beside a running Kapok. With
 * an event bus, a revocation is published (gateway.key.revoked) so running instances drop the key
 * from their caches at once; without one they see it within gateway.auth.keyCacheMs.
 */
export function keyAdmin(store: Store, config: GatewayConfig, events?: EventBus): KeyService {
  return new KeyService({
    store: new KeyStore(store),
    knownModels: new Set(config.models.map((m) => m.name)),
    cacheMs: 0,
    ...(events
      ? { onRevoked: async (id) => void (await events.publish('gateway.key.revoked', { id })) }
      : {}),
  });
}
