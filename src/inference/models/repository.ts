import { join } from 'node:path';
import { KapokError, messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { type ModelDefaults, type ModelOverride, modelConfigSchema, resolveModelConfig } from '../config.js';
import type { VersionRunner } from '../execution/runner.js';
import type { InferenceMetrics } from '../metrics.js';
import { type LoadContext, loadVersion } from './load-version.js';
import { readModelConfig } from './model-config.js';
import { byVersionDesc, listModels, listVersions, MODEL_NAME, wantedVersions } from './scan.js';
import type { ModelState, VersionState } from './state.js';

/**
 * The model repository: <root>/<model>/<version>/model.onnx (+ optional <model>/config.yaml). Each
 * sync (a poll, or load/unload through the API) reads a model's folder and makes the loaded versions
 * match its version policy: new and changed versions are loaded and switched in (load-version.ts),
 * and the ones they replace drain their queues before their workers end. Requests find their
 * runner here (resolve).
 */

export interface RepositoryOptions {
  root: string;
  defaults: ModelDefaults;
  /** inference.models: per-model settings over config.yaml, key by key. */
  overrides?: Readonly<Record<string, ModelOverride>>;
  pollIntervalMs: number;
  logger: Logger;
  metrics: InferenceMetrics;
  /** After an explicit load or unload (API) succeeded: the capability announces it to the fleet. */
  onChanged?: (model: string, action: 'load' | 'unload') => void;
}

export class Repository {
  private readonly models = new Map<string, ModelState>();
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private closed = false;
  private readonly loading: LoadContext;

  constructor(private readonly opts: RepositoryOptions) {
    this.loading = {
      logger: opts.logger,
      metrics: opts.metrics,
      root: opts.root,
      isClosed: () => this.closed,
    };
  }

  async start(): Promise<void> {
    await this.scan();
    if (this.opts.pollIntervalMs > 0) {
      this.timer = setInterval(() => {
        void this.scan();
      }, this.opts.pollIntervalMs);
      this.timer.unref();
    }
  }

  /**
   * New defaults and per-model overrides (a live configuration change); the next sync of each model
   * reloads the versions whose settings changed beside the serving ones.
   */
  reconfigure(defaults: ModelDefaults, overrides: Readonly<Record<string, ModelOverride>>): void {
    this.opts.defaults = defaults;
    this.opts.overrides = overrides;
  }

  /** Re-reads the whole repository (one scan at a time). */
  scan(): Promise<void> {
    this.scanning ??= this.scanAll().finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  /** Whether the last scan could not list the repository (logged when it starts and ends). */
  private unreadable = false;

  private async scanAll(): Promise<void> {
    let names: string[] = [];
    try {
      names = await listModels(this.opts.root);
      if (this.unreadable)
        this.opts.logger.info({ repository: this.opts.root }, 'inference repository readable again');
      this.unreadable = false;
    } catch (err) {
      // Once per outage, not on every poll (a missing ./models on a first start would warn every 2 s).
      if (!this.unreadable)
        this.opts.logger.warn(
          { code: 'KAPOK_INFERENCE_MODEL_NOT_FOUND', repository: this.opts.root, reason: messageOf(err) },
          'inference repository cannot be read',
        );
      this.unreadable = true;
    }
    for (const gone of [...this.models.keys()].filter((n) => !names.includes(n))) await this.sync(gone);
    await Promise.all(names.map((n) => this.sync(n)));
  }

  /** Brings one model in line with its folder; serialized per model. */
  sync(name: string): Promise<void> {
    let m = this.models.get(name);
    if (!m) {
      m = {
        name,
        config: modelConfigSchema.parse({}),
        configError: null,
        versions: new Map(),
        unloaded: false,
        chain: Promise.resolve(),
      };
      this.models.set(name, m);
    }
    const model = m;
    model.chain = model.chain
      .then(() => this.syncModel(model))
      .catch((err) => {
        this.opts.logger.error({ model: name, reason: messageOf(err) }, 'inference model sync failed');
      });
    return model.chain;
  }

  /** The steps of a sync: versions on disk, config.yaml, the policy's pick, loads, then retirements. */
  private async syncModel(m: ModelState): Promise<void> {
    if (this.closed) return;
    const dir = join(this.opts.root, m.name);
    // Versions listed before config.yaml is read: a config.yaml written before a version is published
    // (a new sha256 entry, say) is then always seen with it; read the other way round, a scan between
    // the two reads could load the new version under the old settings (hotswap.test.ts hit that).
    const onDisk = m.unloaded ? new Map<string, string>() : await listVersions(dir);
    await readModelConfig(m, dir, this.opts.logger, this.opts.metrics);
    const over = this.opts.overrides?.[m.name];
    if (over)
      m.config = {
        ...m.config,
        ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)),
      };
    const wanted = wantedVersions(m.config, [...onDisk.keys()]);
    await this.loadWanted(m, dir, wanted, onDisk);
    this.retireUnwanted(m, wanted, onDisk);
    this.updateLoaded();
    if (m.versions.size === 0 && !m.unloaded && !m.configError && onDisk.size === 0)
      this.models.delete(m.name);
  }

  /** Loads each wanted version that is new or whose file, settings or checksum changed. */
  private async loadWanted(m: ModelState, dir: string, wanted: string[], onDisk: Map<string, string>) {
    const cfg = resolveModelConfig(m.config, this.opts.defaults);
    const cfgSig = JSON.stringify(cfg);
    for (const v of wanted) {
      const file = join(dir, v, 'model.onnx');
      const sig = `${onDisk.get(v)}:${cfgSig}:${m.config.sha256[v] ?? ''}`;
      const cur = m.versions.get(v);
      if (cur && cur.sig === sig) continue;
      await loadVersion(this.loading, m, v, file, sig, cfg);
    }
  }

  /**
   * Versions the policy no longer wants go once every wanted version serves (or is gone from disk),
   * so a failed new version leaves the old one answering.
   */
  private retireUnwanted(m: ModelState, wanted: string[], onDisk: Map<string, string>): void {
    const allWantedReady = wanted.every((v) => m.versions.get(v)?.state === 'READY');
    for (const [v, s] of m.versions) {
      if (wanted.includes(v)) continue;
      if (s.state === 'READY' && !allWantedReady && onDisk.has(v)) continue;
      m.versions.delete(v);
      if (s.runner) {
        this.opts.logger.info({ model: m.name, version: v }, 'inference model version unloaded');
        void s.runner.close();
      }
    }
  }

  private updateLoaded(): void {
    let n = 0;
    for (const m of this.models.values()) for (const s of m.versions.values()) if (s.state === 'READY') n++;
    this.opts.metrics.loaded.set(n);
  }

  /** The runner for a request: the given version, else the highest ready one. */
  resolve(name: string, version?: string): { version: string; runner: VersionRunner } {
    const m = this.models.get(name);
    if (!m || (m.versions.size === 0 && !m.unloaded))
      throw new KapokError('KAPOK_INFERENCE_MODEL_NOT_FOUND', `model '${name}' is not in the repository`);
    if (version) {
      const s = m.versions.get(version);
      if (!s)
        throw new KapokError(
          'KAPOK_INFERENCE_MODEL_NOT_FOUND',
          `model '${name}' has no version '${version}'`,
        );
      if (s.state !== 'READY' || !s.runner)
        throw new KapokError(
          'KAPOK_INFERENCE_MODEL_NOT_READY',
          `model '${name}' version ${version} is not ready: ${s.reason ?? s.state.toLowerCase()}`,
        );
      return { version, runner: s.runner };
    }
    let best: VersionState | null = null;
    for (const s of m.versions.values())
      if (s.state === 'READY' && s.runner && (!best || byVersionDesc(best.version, s.version) > 0)) best = s;
    if (!best) {
      const reasons = [...m.versions.values()].map(
        (s) => `version ${s.version}: ${s.reason ?? s.state.toLowerCase()}`,
      );
      throw new KapokError(
        'KAPOK_INFERENCE_MODEL_NOT_READY',
        `model '${name}' has no ready version${m.unloaded ? ' (unloaded; load it again)' : ''}${reasons.length ? `: ${reasons.join('; ')}` : ''}`,
      );
    }
    return { version: best.version, runner: best.runner as VersionRunner };
  }

  model(name: string): ModelState | undefined {
    return this.models.get(name);
  }

  /** Every model and version known, for the repository index and `kapok models list`. */
  index(): Array<{ name: string; version: string; state: string; reason: string }> {
    const out: Array<{ name: string; version: string; state: string; reason: string }> = [];
    for (const m of [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (m.unloaded && m.versions.size === 0)
        out.push({ name: m.name, version: '', state: 'UNAVAILABLE', reason: 'unloaded' });
      for (const s of [...m.versions.values()].sort((a, b) => byVersionDesc(b.version, a.version)))
        out.push({
          name: m.name,
          version: s.version,
          state: s.state,
          reason: s.reason ?? m.configError ?? '',
        });
    }
    return out;
  }

  /** Loads (or reloads) a model now; failed versions are retried. */
  async load(name: string): Promise<void> {
    if (!MODEL_NAME.test(name))
      throw new KapokError('KAPOK_INFERENCE_MODEL_NOT_FOUND', `model name '${name}' is not valid`);
    const m = this.models.get(name);
    if (m) {
      m.unloaded = false;
      for (const s of m.versions.values()) if (s.state !== 'READY') s.sig = null;
    }
    await this.sync(name);
    const after = this.models.get(name);
    if (!after || after.versions.size === 0) {
      // The repository's path is for the operator's log, never for the client.
      this.opts.logger.info({ model: name, repository: this.opts.root }, 'model to load not found');
      throw new KapokError(
        'KAPOK_INFERENCE_MODEL_NOT_FOUND',
        `model '${name}' has no version folder with a model.onnx in the model repository`,
      );
    }
    this.resolve(name); // throws NOT_READY with the reasons when nothing loaded
    this.opts.onChanged?.(name, 'load');
  }

  async unload(name: string): Promise<void> {
    const m = this.models.get(name);
    if (!m)
      throw new KapokError('KAPOK_INFERENCE_MODEL_NOT_FOUND', `model '${name}' is not in the repository`);
    m.unloaded = true;
    await this.sync(name);
    this.opts.onChanged?.(name, 'unload');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.scanning;
    const runners = [...this.models.values()].flatMap((m) => [...m.versions.values()].map((s) => s.runner));
    this.models.clear();
    await Promise.all(runners.map((r) => r?.close(5000)));
  }
}
