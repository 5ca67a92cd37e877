import { diffPaths, keepPaths } from '../core/config/index.js';
import type { ReconfigurePlan } from '../ports/capability.js';
import type { GatewayConfig } from './config.js';
import type { Router } from './routing/router.js';
import { loadTokenCounter, type TokenCounter, type TokenizerName, tokenizerFor } from './routing/tokens.js';
import { createUpstream, type Upstream } from './upstream/pool.js';

/**
 * What the gateway applies live (docs/control.md#what-applies-live): providers, models, preference,
 * limits (per-caller defaults and the completion reserve), retry, circuit and exposeTarget. The
 * rest (auth, usage, bodyLimitBytes, limits.failOpen) is fixed at start and reported as needing a
 * restart. A change builds a new router and upstreams beside the running ones; `apply` swaps them
 * in one assignment, so a request sees the old routes or the new ones, never a mix. Circuits start
 * closed on the new router.
 */
const LIVE = [
  'providers',
  'models',
  'preference',
  'limits.default',
  'limits.defaultCompletionReserve',
  'retry',
  'circuit',
  'exposeTarget',
];
const isLive = (path: string) => LIVE.some((p) => path === p || path.startsWith(`${p}.`));

export interface GatewayLive {
  cfg: GatewayConfig;
  router: Router;
  upstreams: Map<string, Upstream>;
  tokenizers: Map<string, TokenCounter>;
}

export async function planGateway(
  next: GatewayConfig,
  prev: GatewayConfig,
  live: GatewayLive,
  build: (cfg: GatewayConfig, upstreams: Map<string, Upstream>) => Router,
  swap: (cfg: GatewayConfig, router: Router, upstreams: Map<string, Upstream>) => void,
): Promise<ReconfigurePlan> {
  const restart = diffPaths(prev, next).filter((p) => !isLive(p));
  const cfg = keepPaths(next, prev, restart);
  // Unchanged providers keep their connection pools; changed or new ones get new pools.
  const upstreams = new Map<string, Upstream>();
  const created: Upstream[] = [];
  for (const [i, p] of cfg.providers.entries()) {
    const old = prev.providers.find((q) => q.name === p.name);
    const same = old && diffPaths(old, p).length === 0 && live.upstreams.get(p.name);
    if (same) upstreams.set(p.name, same);
    else {
      const u = createUpstream(p, i);
      created.push(u);
      upstreams.set(p.name, u);
    }
  }
  try {
    for (const name of new Set<TokenizerName>(cfg.models.map(tokenizerFor)))
      if (!live.tokenizers.has(name)) live.tokenizers.set(name, await loadTokenCounter(name));
    const router = build(cfg, upstreams);
    const retired = [...live.upstreams.values()].filter((u) => ![...upstreams.values()].includes(u));
    return {
      restart,
      apply: () => {
        swap(cfg, router, upstreams);
        // undici's close waits for the requests under way on the retired pools.
        for (const u of retired) void u.pool.close().catch(() => {});
      },
    };
  } catch (err) {
    await Promise.allSettled(created.map((u) => u.pool.close()));
    throw err;
  }
}
