import { diffPaths } from '../core/config/index.js';
import type { ReconfigurePlan } from '../ports/capability.js';
import type { InferenceConfig, ModelDefaults } from './config.js';
import type { Repository } from './models/repository.js';

/**
 * What inference applies live (docs/control.md#what-applies-live): `defaults` and the per-model
 * `models` settings (batching, instances, versionPolicy, ...). Applying hands them to the
 * repository and syncs it: a model whose settings changed gets its versions loaded and warmed
 * beside the serving ones, switched in, and the old ones drained (the hot-update path of a new
 * version), so no request fails. The repository path, poll interval, body limit and admin token
 * are fixed at start and reported as needing a restart.
 */
const LIVE = ['defaults', 'models'];
const isLive = (path: string) => LIVE.some((p) => path === p || path.startsWith(`${p}.`));

export function planInference(
  next: InferenceConfig,
  prev: InferenceConfig,
  repo: Repository,
  /** inference.defaults with `auto` threads resolved, as at start. */
  resolveDefaults: (d: InferenceConfig['defaults']) => ModelDefaults,
): ReconfigurePlan {
  const restart = diffPaths(prev, next).filter((p) => !isLive(p));
  return {
    restart,
    apply: () => {
      repo.reconfigure(resolveDefaults(next.defaults), next.models);
      void repo.scan();
    },
  };
}
