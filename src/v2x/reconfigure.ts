import { diffPaths } from '../core/config/index.js';
import type { ReconfigurePlan } from '../ports/capability.js';
import type { V2xConfig, Zone } from './config.js';
import type { Engine } from './engine.js';

/**
 * What v2x applies live (docs/control.md#what-applies-live): the risk thresholds (`risk.*` but
 * `risk.rangeM`, which sizes the neighbour grid) and the configured `zones` (added, changed or
 * removed by id; zones put through the API are left alone). A message is handled synchronously and
 * the thresholds are read from `engine.cfg`, so one assignment swaps them between messages: a
 * message is judged by the old ones or the new ones, never a mix. The rest (topics, format, capacities, strategy, ...) takes a restart.
 */
const isLive = (path: string) =>
  path === 'zones' || path.startsWith('zones.') || (path.startsWith('risk.') && path !== 'risk.rangeM');

export function planV2x(
  next: V2xConfig,
  prev: V2xConfig,
  engine: Engine,
  zonesChanged: () => void,
): ReconfigurePlan {
  const restart = diffPaths(prev, next).filter((p) => !isLive(p));
  const risk = restart.includes('risk.rangeM') ? { ...next.risk, rangeM: prev.risk.rangeM } : next.risk;
  const ids = new Set(next.zones.map((z) => z.id));
  const removed = prev.zones.filter((z) => !ids.has(z.id)).map((z) => z.id);
  const before = new Map(prev.zones.map((z) => [z.id, JSON.stringify(z)]));
  const put: Zone[] = next.zones.filter((z) => before.get(z.id) !== JSON.stringify(z));
  return {
    restart,
    apply: () => {
      engine.cfg = { ...engine.cfg, risk, zones: next.zones };
      for (const id of removed) engine.geofences.delete(id);
      for (const z of put) engine.geofences.set(z);
      if (removed.length || put.length) zonesChanged();
    },
  };
}
