import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { type ModelConfig, type ModelDefaults, modelConfigSchema, resolveModelConfig } from '../config.js';
import { VersionRunner } from '../execution/runner.js';
import type { InferenceMetrics } from '../metrics.js';
import { DATATYPES, type WireTensor } from '../tensors/datatypes.js';

/**
 * The model repository: <root>/<model>/<version>/model.onnx (+ optional <model>/config.yaml). Each
 * sync reads a model's folder and makes the loaded versions match its version policy. A new or
 * changed version is verified (sha256), loaded on standby workers, warmed with one inference and only
 * then switched in (one assignment), so requests never see a half-loaded version; the version it
 * replaces drains its queue before its workers end. A version that fails to verify or load leaves
 * what was serving in place and records the error for metadata, ready state and logs.
 */

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

interface ModelState {
  name: string;
  config: ModelConfig;
  configError: string | null;
  versions: Map<string, VersionState>;
  /** Unloaded through the API: polls leave it alone until it is loaded again. */
  unloaded: boolean;
  /** Syncs of one model run one after another. */
  chain: Promise<void>;
}

export interface RepositoryOptions {
  root: string;
  defaults: ModelDefaults;
  pollIntervalMs: number;
  logger: Logger;
  metrics: InferenceMetrics;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VERSION = /^[1-9][0-9]{0,17}$/;
const byVersionDesc = (a: string, b: string) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0);

export class Repository {
  private readonly models = new Map<string, ModelState>();
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: RepositoryOptions) {}

  async start(): Promise<void> {
    await this.scan();
    if (this.opts.pollIntervalMs > 0) {
      this.timer = setInterval(() => {
        void this.scan();
      }, this.opts.pollIntervalMs);
      this.timer.unref();
    }
  }

  /** Re-reads the whole repository (one scan at a time). */
  scan(): Promise<void> {
    this.scanning ??= this.scanAll().finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  private async scanAll(): Promise<void> {
    let names: string[] = [];
    try {
      const entries = await readdir(this.opts.root, { withFileTypes: true });
      names = entries.filter((e) => e.isDirectory() && NAME.test(e.name)).map((e) => e.name);
    } catch (err) {
      this.opts.logger.warn(
        { code: 'KAPOK_INFERENCE_MODEL_NOT_FOUND', repository: this.opts.root, msg: messageOf(err) },
        'inference repository cannot be read',
      );
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
        this.opts.logger.error({ model: name, msg: messageOf(err) }, 'inference model sync failed');
      });
    return model.chain;
  }

  private async syncModel(m: ModelState): Promise<void> {
    if (this.closed) return;
    const dir = join(this.opts.root, m.name);
    await this.readConfig(m, dir);
    const onDisk = m.unloaded ? new Map<string, string>() : await this.listVersions(dir);
    const wanted = this.policy(m.config, [...onDisk.keys()]);
    const cfg = resolveModelConfig(m.config, this.opts.defaults);
    const cfgSig = JSON.stringify(cfg);
    for (const v of wanted) {
      const file = join(dir, v, 'model.onnx');
      const sig = `${onDisk.get(v)}:${cfgSig}:${m.config.sha256[v] ?? ''}`;
      const cur = m.versions.get(v);
      if (cur && cur.sig === sig) continue;
      await this.loadVersion(m, v, file, sig, cfg);
    }
    // Versions the policy no longer wants go once every wanted version serves (or is gone from disk),
    // so a failed new version leaves the old one answering.
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
    this.updateLoaded();
    if (m.versions.size === 0 && !m.unloaded && !m.configError && onDisk.size === 0)
      this.models.delete(m.name);
  }

  private async readConfig(m: ModelState, dir: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(dir, 'config.yaml'), 'utf8');
    } catch {
      m.config = modelConfigSchema.parse({});
      m.configError = null;
      return;
    }
    try {
      const parsed = modelConfigSchema.safeParse(parseYaml(text) ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
      }
      m.config = parsed.data;
      if (m.configError) this.opts.logger.info({ model: m.name }, 'inference model config.yaml fixed');
      m.configError = null;
    } catch (err) {
      const msg = `${dir}/config.yaml: ${messageOf(err)}; keeping the previous settings`;
      if (m.configError !== msg) {
        this.opts.logger.error(
          { code: 'KAPOK_INFERENCE_MODEL_CONFIG', model: m.name, msg },
          'inference model config rejected',
        );
        this.opts.metrics.loadFailures.inc({ model: m.name, reason: 'config' });
      }
      m.configError = msg;
    }
  }

  /** Version → "size:mtime" of its model.onnx. */
  private async listVersions(dir: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let entries: string[];
    try {
      entries = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && VERSION.test(e.name))
        .map((e) => e.name);
    } catch {
      return out;
    }
    for (const v of entries) {
      try {
        const s = await stat(join(dir, v, 'model.onnx'));
        if (s.isFile()) out.set(v, `${s.size}:${s.mtimeMs}`);
      } catch {
        // a version folder without model.onnx (yet) is not a version
      }
    }
    return out;
  }

  private policy(cfg: ModelConfig, versions: string[]): string[] {
    const sorted = versions.sort(byVersionDesc);
    const p = cfg.versionPolicy;
    if (p === 'all' || 'all' in p) return sorted;
    if ('latest' in p) return sorted.slice(0, p.latest);
    return sorted.filter((v) => p.specific.includes(v));
  }

  private async loadVersion(
    m: ModelState,
    version: string,
    file: string,
    sig: string,
    cfg: ReturnType<typeof resolveModelConfig>,
  ): Promise<void> {
    const log = this.opts.logger;
    let s = m.versions.get(version);
    if (!s) {
      s = { version, state: 'LOADING', reason: null, runner: null, sig: null };
      m.versions.set(version, s);
    }
    const state = s;
    state.sig = sig;
    const started = performance.now();
    let runner: VersionRunner | null = null;
    try {
      await this.verify(m, version, file);
      runner = new VersionRunner(file, cfg, {
        onExecution: (requests, rows, computeMs) => {
          const labels = { model: m.name, version };
          this.opts.metrics.executions.inc(labels);
          this.opts.metrics.inferences.inc(labels, requests > 1 ? rows : requests);
          this.opts.metrics.computeSeconds.observe(labels, computeMs / 1000);
        },
        onQueueDepth: (depth) => this.opts.metrics.queueDepth.set({ model: m.name, version }, depth),
        onWorkerCrash: (message) => {
          this.opts.metrics.workerRestarts.inc({ model: m.name, version });
          log.error(
            { code: 'KAPOK_INFERENCE_WORKER_CRASHED', model: m.name, version, msg: message },
            'inference worker died; replacing it',
          );
        },
      });
      await runner.start();
      await warmUp(runner);
    } catch (err) {
      await runner?.close(0);
      const e = isKapokError(err) ? err : new KapokError('KAPOK_INFERENCE_LOAD_FAILED', messageOf(err));
      state.reason = `${e.message} [${e.code}]`;
      if (state.state !== 'READY') state.state = 'UNAVAILABLE';
      this.opts.metrics.loadFailures.inc({
        model: m.name,
        reason: e.code === 'KAPOK_INFERENCE_CHECKSUM' ? 'checksum' : 'load',
      });
      log.error(
        {
          code: e.code,
          model: m.name,
          version,
          msg: e.message,
          serving: state.state === 'READY' ? version : null,
        },
        state.state === 'READY'
          ? 'inference model reload failed; the previous file keeps serving'
          : 'inference model version failed to load',
      );
      return;
    }
    if (this.closed || !m.versions.has(version)) {
      await runner.close(0);
      return;
    }
    const old = state.runner;
    // The switch: from here new requests go to the new runner; the old one drains what it holds.
    state.runner = runner;
    state.state = 'READY';
    state.reason = null;
    log.info(
      {
        model: m.name,
        version,
        ms: Math.round(performance.now() - started),
        instances: cfg.instances,
        batching: runner.batched,
      },
      old ? 'inference model version reloaded' : 'inference model version loaded',
    );
    if (old) void old.close();
  }

  private async verify(m: ModelState, version: string, file: string): Promise<void> {
    let expected = m.config.sha256[version]?.toLowerCase() ?? null;
    if (!expected) {
      try {
        const text = await readFile(`${file}.sha256`, 'utf8');
        const hex = /^\s*([0-9a-fA-F]{64})\b/.exec(text)?.[1];
        if (!hex)
          throw new KapokError(
            'KAPOK_INFERENCE_CHECKSUM',
            `${file}.sha256 does not start with 64 hex digits`,
          );
        expected = hex.toLowerCase();
      } catch (err) {
        if (isKapokError(err)) throw err;
      }
    }
    if (!expected) return;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    const actual = hash.digest('hex');
    if (actual !== expected)
      throw new KapokError(
        'KAPOK_INFERENCE_CHECKSUM',
        `${file}: sha256 ${actual} differs from the expected ${expected}; the file is not loaded`,
      );
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
    if (!NAME.test(name))
      throw new KapokError('KAPOK_INFERENCE_MODEL_NOT_FOUND', `model name '${name}' is not valid`);
    const m = this.models.get(name);
    if (m) {
      m.unloaded = false;
      for (const s of m.versions.values()) if (s.state !== 'READY') s.sig = null;
    }
    await this.sync(name);
    const after = this.models.get(name);
    if (!after || after.versions.size === 0)
      throw new KapokError(
        'KAPOK_INFERENCE_MODEL_NOT_FOUND',
        `model '${name}' has no version folder with a model.onnx in ${this.opts.root}`,
      );
    this.resolve(name); // throws NOT_READY with the reasons when nothing loaded
  }

  async unload(name: string): Promise<void> {
    const m = this.models.get(name);
    if (!m)
      throw new KapokError('KAPOK_INFERENCE_MODEL_NOT_FOUND', `model '${name}' is not in the repository`);
    m.unloaded = true;
    await this.sync(name);
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

/** One inference on zeros (dynamic dimensions 1) so the first real request does not pay for set-up. */
async function warmUp(runner: VersionRunner): Promise<void> {
  const inputs: WireTensor[] = runner.inputs.map((m) => {
    const shape = m.shape.map((d) => (d === -1 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const info = DATATYPES[m.datatype];
    return {
      name: m.name,
      datatype: m.datatype,
      shape,
      data: info.ctor ? new ArrayBuffer(n * info.size) : new Array(n).fill(''),
    };
  });
  try {
    await runner.infer({
      inputs,
      outputs: [],
      rows: 1,
      shapeKey: 'warmup',
      deadline: Date.now() + runner.cfg.timeoutMs,
    });
  } catch (err) {
    throw new KapokError('KAPOK_INFERENCE_LOAD_FAILED', `warm-up inference failed: ${messageOf(err)}`);
  }
}
