import type { ModelConfig } from '../config.js';
import type { VersionRunner } from '../execution/runner.js';

/** What the repository knows of each model and version, shared by its steps (scan, load, resolve). */

export type VersionStatus = 'LOADING' | 'READY' | 'UNAVAILABLE';

export interface VersionState {
  version: string;
  state: VersionStatus;
  /** Last load error; on a READY version it means a newer file failed and the old one still serves. */
  reason: string | null;
  runner: VersionRunner | null;
  /** File size, mtime and settings of the last load attempt: an unchanged failure is not retried each poll. */
  sig: string | null;
}

export interface ModelState {
  name: string;
  config: ModelConfig;
  configError: string | null;
  versions: Map<string, VersionState>;
  /** Unloaded through the API: polls leave it alone until it is loaded again. */
  unloaded: boolean;
  /** Syncs of one model run one after another. */
  chain: Promise<void>;
}
