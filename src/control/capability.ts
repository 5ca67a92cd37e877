import { Counter, Gauge } from 'prom-client';
import type { RouteRoles } from '../core/http/admin-auth.js';
import type { CapabilityFactory } from '../ports/capability.js';
import type { Registry } from '../ports/registry.js';
import type { ControlConfig } from './config.js';
import type { ReloadStatus } from './reload.js';

export interface ControlDeps {
  /** The hot-reload engine the wiring point built over the config sources (null: nothing to watch, no file and no etcd). */
  reloader: { status(): ReloadStatus } | null;
  /** The service registry the wiring point opened (null: control.registry.enabled false). */
  registry: Pick<Registry, 'list' | 'status'> | null;
  /** etcd was unreachable at start and the start ran on the cached last good etcd layer. */
  fromCache: { file: string; revision: number; savedAt: string; reason: string } | null;
}

export const CONTROL_ADMIN_ROLES: RouteRoles = {
  'GET /status': 'viewer',
  'GET /instances': 'viewer',
};

/**
 * The control capability (docs/control.md): the status of hot reload (revision in force, keys
 * pending a restart, the last rejected change) on /api/control/status, /readyz and /metrics.
 * The sources and the reload engine are built by the wiring point, the only place that holds the
 * composed schema and every capability; this capability shows and counts what they do.
 */
export const createControl: CapabilityFactory<ControlConfig, ControlDeps> = async (ctx, deps) => {
  const { reloader, registry, fromCache } = deps;
  const startedFrom = fromCache
    ? { startedFromCache: { file: fromCache.file, revision: fromCache.revision, savedAt: fromCache.savedAt } }
    : {};
  const admin = ctx.adminGuard({
    token: ctx.config.adminToken,
    key: 'control.adminToken',
    what: 'the control API',
  });
  const status = () =>
    reloader
      ? { watching: true, labels: ctx.config.labels, ...reloader.status(), ...startedFrom }
      : { watching: false, labels: ctx.config.labels };
  const registers = [ctx.metrics.registry];
  const read = (f: (s: ReloadStatus) => number) => () => (reloader ? f(reloader.status()) : 0);
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  counter(
    'kapok_config_applied_total',
    'Configuration changes applied live.',
    read((s) => s.applied),
  );
  counter(
    'kapok_config_rejected_total',
    'Configuration changes rejected (validation failed, a capability refused, a source held bad content).',
    read((s) => s.rejected),
  );
  counter(
    'kapok_config_watch_resyncs_total',
    'Times a config source re-read everything after its watch ended or a probe found a missed change.',
    read((s) => s.sources.reduce((n, x) => n + x.resyncs, 0)),
  );
  new Gauge({
    name: 'kapok_registry_instances',
    help: 'Instances in the service registry as this instance sees them (itself included).',
    registers,
    collect() {
      this.set(registry ? registry.list().length : 0);
    },
  });
  new Gauge({
    name: 'kapok_config_pending_restart',
    help: 'Config keys whose new value waits for a restart.',
    registers,
    collect() {
      this.set(reloader ? reloader.status().pendingRestart.length : 0);
    },
  });
  ctx.health.register({
    name: 'control',
    kind: 'capability',
    check: () => {
      const reg = registry ? { registry: { ...registry.status(), instances: registry.list().length } } : {};
      if (!reloader) return { ready: true, detail: { watching: false, ...reg } };
      const s = reloader.status();
      // Ready even with a rejected change or a lost source: the configuration in force still serves.
      return {
        ready: true,
        detail: {
          revisions: s.revisions,
          pendingRestart: s.pendingRestart,
          lastError: s.lastError ? `${s.lastError.code}: ${s.lastError.message}` : null,
          sources: s.sources.map(
            (x) =>
              `${x.kind} ${x.where} ${x.connected ? 'connected' : `not connected${x.detail ? `: ${x.detail}` : ''}`}`,
          ),
          ...reg,
          ...(fromCache
            ? {
                startedFromCache: `etcd was unreachable at start: started on the last good configuration cached at revision ${fromCache.revision} (saved ${fromCache.savedAt})`,
              }
            : {}),
        },
      };
    },
  });
  return {
    name: 'control',
    prefix: '/api/control',
    routes: async (app) => {
      admin.hook(app, CONTROL_ADMIN_ROLES);
      app.get('/status', async () => status());
      app.get('/instances', async () =>
        registry
          ? { registry: registry.status(), instances: registry.list() }
          : { registry: null, instances: [] },
      );
    },
  };
};
