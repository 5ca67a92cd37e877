import { diffPaths, keepPaths } from '../core/config/index.js';
import { KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AuditTrail } from '../ports/audit.js';
import type { Capability, ReconfigurePlan } from '../ports/capability.js';
import type { ConfigLayer, ConfigSource, ConfigTree } from '../ports/config-source.js';
import type { EventBus } from '../ports/events.js';

type Section = Record<string, unknown>;
type Config = Record<string, unknown>;

export interface ReloaderOptions<C extends object> {
  /** In order of precedence, lowest first (file, then etcd); the environment is applied by compose. */
  sources: readonly ConfigSource[];
  /** The layers the running configuration was composed from, one per source. */
  layers: ConfigTree[];
  /** The configuration in force. */
  running: C;
  /** Layers → the validated whole (the one schema, KAPOK_* applied); throws a KapokError saying why not. */
  compose(layers: readonly ConfigTree[]): C;
  /** The running capabilities by section name. */
  capabilities: ReadonlyMap<string, Capability>;
  /** Platform sections the wiring point applies itself (`log`: the level). */
  live?: Readonly<Record<string, (next: unknown, prev: unknown) => ReconfigurePlan>>;
  logger: Logger;
  /** A composed configuration validated and taken (applied, or the same as in force): the layers are good. */
  onAccepted?: (layers: readonly ConfigTree[], revisions: number[]) => void;
  audit?: AuditTrail | undefined;
  events?: EventBus | undefined;
}

export interface ReloadError {
  code: string;
  message: string;
  at: string;
  revisions: number[];
}

export interface ReloadStatus {
  /** The source revisions of the configuration in force (one per source). */
  revisions: number[];
  appliedAt: string | null;
  /** Config paths whose new value waits for a restart (ports, dataDir, store, a capability turned on/off...). */
  pendingRestart: string[];
  lastError: ReloadError | null;
  applied: number;
  rejected: number;
  sources: Array<{
    kind: string;
    where: string;
    revision: number;
    connected: boolean;
    resyncs: number;
    detail?: string;
  }>;
}

/**
 * Hot reload: a change from any source is composed with the others and the environment, validated
 * whole by the one schema, offered to every capability it touches (each plans without changing
 * anything, or refuses), and then applied by all of them, or by none. What cannot be applied live
 * keeps its old value and is reported as pending a restart, never half-applied; a rejected change
 * leaves the running configuration as it was, and says why (log, status, kapok_config_rejected_total).
 */
export class Reloader<C extends object> {
  private running: C;
  private desired: C;
  private readonly layers: ConfigTree[];
  private revisions: number[];
  /** The newest revision each source delivered (applied or not). */
  private readonly seen: number[];
  private appliedAt: string | null = null;
  private lastError: ReloadError | null = null;
  private applied = 0;
  private rejected = 0;
  private busy: Promise<void> | null = null;
  private again = false;
  private readonly listeners = new Set<(s: ReloadStatus) => void>();

  /** `revisions`: those of the layers the running configuration was composed from. */
  constructor(
    private readonly o: ReloaderOptions<C>,
    revisions?: number[],
  ) {
    this.running = o.running;
    this.desired = o.running;
    this.layers = [...o.layers];
    this.revisions = revisions ?? o.sources.map(() => 0);
    this.seen = [...this.revisions];
  }

  /** Starts watching every source. */
  start(): void {
    for (const [i, source] of this.o.sources.entries()) {
      source.watch({
        onChange: (layer) => this.onLayer(i, layer),
        onProblem: (err) => this.reject(err, `${source.kind} source ${source.where}`),
      });
    }
  }

  /** Re-reads every source now (SIGHUP). */
  async refresh(): Promise<void> {
    await Promise.all(this.o.sources.map((s) => s.refresh()));
    await this.settled();
  }

  /** Resolves once no reload is running or queued (tests, the CLI). */
  async settled(): Promise<void> {
    while (this.busy) await this.busy;
  }

  /** Called after every reload, applied or rejected. */
  onReload(fn: (s: ReloadStatus) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  config(): C {
    return this.running;
  }

  status(): ReloadStatus {
    return {
      revisions: [...this.revisions],
      appliedAt: this.appliedAt,
      pendingRestart: diffPaths(this.running, this.desired),
      lastError: this.lastError,
      applied: this.applied,
      rejected: this.rejected,
      sources: this.o.sources.map((s) => ({ kind: s.kind, where: s.where, ...s.status() })),
    };
  }

  private onLayer(i: number, layer: ConfigLayer): void {
    this.layers[i] = layer.tree;
    this.seen[i] = layer.revision;
    this.schedule();
  }

  private accepted(revisions: number[]): void {
    try {
      this.o.onAccepted?.(this.layers, revisions);
    } catch (err) {
      this.o.logger.warn(
        { reason: err instanceof Error ? err.message : String(err) },
        'control: onAccepted failed',
      );
    }
  }

  /** One reload at a time; changes arriving meanwhile are taken together by the next. */
  private schedule(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = (async () => {
      do {
        this.again = false;
        await this.reload().catch((err) => this.reject(err, 'reload'));
      } while (this.again);
      this.busy = null;
    })();
  }

  private async reload(): Promise<void> {
    const revisions = [...this.seen];
    let desired: C;
    try {
      desired = this.o.compose(this.layers);
    } catch (err) {
      this.reject(err, 'validation', revisions);
      return;
    }
    const running = this.running as Config;
    const next = desired as Config;
    const plans: Array<{ section: string; plan: ReconfigurePlan }> = [];
    const restartAll: string[] = [];
    const changed: string[] = [];
    for (const section of new Set([...Object.keys(running), ...Object.keys(next)])) {
      if (diffPaths(running[section], next[section]).length === 0) continue;
      changed.push(section);
      const plan = await this.plan(section, next[section], running[section]);
      if (plan === 'restart') restartAll.push(section);
      else plans.push({ section, plan });
    }
    if (changed.length === 0) {
      // Same content (a comment edit, a revert of something pending): nothing to do but record it.
      this.desired = desired;
      this.revisions = revisions;
      this.accepted(revisions);
      this.emit();
      return;
    }
    let newRunning = { ...running };
    for (const { section, plan } of plans) {
      await plan.apply();
      newRunning = {
        ...newRunning,
        [section]: keepPaths(next[section], running[section], plan.restart),
      };
    }
    this.running = newRunning as C;
    this.desired = desired;
    this.revisions = revisions;
    this.applied++;
    this.appliedAt = new Date().toISOString();
    this.lastError = null;
    this.accepted(revisions);
    const status = this.status();
    const live = plans.map((p) => p.section);
    this.o.logger.info(
      { revisions, applied: live, pendingRestart: status.pendingRestart },
      status.pendingRestart.length
        ? 'configuration applied; some keys wait for a restart'
        : 'configuration applied',
    );
    void this.o.audit
      ?.record({
        actor: 'system',
        action: 'control.config.apply',
        outcome: 'ok',
        target: revisions.join(','),
      })
      .catch(() => {});
    void this.o.events
      ?.publish('control.config.applied', {
        revisions,
        sections: changed,
        pendingRestart: status.pendingRestart,
      })
      .catch(() => {});
    this.emit();
  }

  /** The capability's (or the wiring point's) plan for a section, 'restart' when nothing applies it live. */
  private async plan(section: string, next: unknown, prev: unknown): Promise<ReconfigurePlan | 'restart'> {
    const live = this.o.live?.[section];
    if (live) return live(next, prev);
    const cap = this.o.capabilities.get(section);
    const on = (s: unknown) => (s as Section | undefined)?.enabled === true;
    // Turning a capability on or off, or changing one that is off, takes a restart.
    if (!cap?.reconfigure || !on(next) || !on(prev)) return 'restart';
    try {
      return await cap.reconfigure(next, prev);
    } catch (err) {
      throw err instanceof KapokError && err.code === 'KAPOK_CONTROL_RELOAD_REFUSED'
        ? err
        : new KapokError('KAPOK_CONTROL_RELOAD_REFUSED', `${section}: ${messageOf(err)}`, { cause: err });
    }
  }

  private reject(err: unknown, where: string, revisions = [...this.seen]): void {
    const code = err instanceof KapokError ? err.code : 'KAPOK_CONTROL_RELOAD_REFUSED';
    const message = messageOf(err);
    this.rejected++;
    this.lastError = { code, message, at: new Date().toISOString(), revisions };
    this.o.logger.warn(
      { code, reason: message, where, revisions },
      'configuration change rejected; the running configuration stays',
    );
    void this.o.audit
      ?.record({
        actor: 'system',
        action: 'control.config.reject',
        outcome: 'failed',
        target: revisions.join(','),
      })
      .catch(() => {});
    this.emit();
  }

  private emit(): void {
    const s = this.status();
    for (const fn of this.listeners) fn(s);
  }
}
