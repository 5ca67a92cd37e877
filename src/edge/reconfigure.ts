import { diffPaths } from '../core/config/index.js';
import type { ReconfigurePlan } from '../ports/capability.js';
import type { EdgeConfig } from './config.js';
import { createDecoder, type Decoder } from './decode/index.js';

/**
 * What edge applies live (docs/control.md#what-applies-live): the payload decoder (`format`) and
 * the sinks' batch and retry settings. The decoder is one function swapped in one assignment (a
 * message is decoded by the old one or the new one); each sink runner reads its batch size and
 * interval at the start of every round and its backoff at every failure. `topicPattern` stays (the
 * ACL and the write API are built on it), like the broker, spool, sinks and auth: restart.
 */
const LIVE = ['format', 'batch', 'retry'];
const isLive = (path: string) => LIVE.some((p) => path === p || path.startsWith(`${p}.`));

export interface EdgeLive {
  setDecoder(d: Decoder): void;
  /** The option objects the sink runners read. */
  runners: Array<{ batchSize: number; intervalMs: number; retryMinMs: number; retryMaxMs: number }>;
}

export function planEdge(next: EdgeConfig, prev: EdgeConfig, live: EdgeLive): ReconfigurePlan {
  const restart = diffPaths(prev, next).filter((p) => !isLive(p));
  // Built now, so that a decoder that cannot be built refuses the change instead of half-applying it.
  const decoder =
    next.format !== prev.format
      ? createDecoder({ topicPattern: prev.topicPattern, format: next.format })
      : null;
  return {
    restart,
    apply: () => {
      if (decoder) live.setDecoder(decoder);
      for (const o of live.runners) {
        o.batchSize = next.batch.size;
        o.intervalMs = next.batch.intervalMs;
        o.retryMinMs = next.retry.minMs;
        o.retryMaxMs = next.retry.maxMs;
      }
    },
  };
}
