import { hostname, userInfo } from 'node:os';
import { ensureDataDir, openEvents, openStore, resolveDataDir } from '../app.js';
import { type KapokConfig, type KapokLoadedConfig, loadKapokConfig } from '../config.js';
import { createLogger, type Logger } from '../core/log.js';
import { ALL_MIGRATIONS } from '../migrations.js';
import type { EventBus } from '../ports/events.js';
import type { Store } from '../ports/store.js';

/**
 * The one bootstrap of every `kapok` subcommand that works on Kapok's state: the configuration as
 * `kapok up` reads it (`--config`, ./kapok.yaml, KAPOK_* overrides), the same dataDir resolution
 * and creation, the configured Store with every migration applied, and a logger on stderr (stdout
 * is for the command's output).
 */
export interface CliContext {
  loaded: KapokLoadedConfig;
  config: KapokConfig;
  dataDir: string;
  logger: Logger;
  store: Store;
}

/** The config alone, for commands that only talk to a running Kapok (`kapok edge tail`, `kapok models`). */
export function cliConfig(opts: { config?: string | undefined }): KapokLoadedConfig {
  return loadKapokConfig({ file: opts.config });
}

/** An administrative act a command performs: recorded in the audit trail when audit is enabled. */
export interface CliAct {
  /** The act's stable name (docs/audit.md#actions): `gateway.key.create`. */
  action: string;
  /** What it is on: a key name, a device serial, a KGC key kind. */
  target: string | null;
}

/** Who runs a command, as the audit trail names them: `cli:user@host`. */
export function cliActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {}
  return `cli:${user}@${hostname()}`;
}

/**
 * Runs `fn` with the context and closes the Store after it, also when it throws. With `act`, the
 * outcome (ok, or failed when fn throws) is recorded in the audit trail before the command ends.
 */
export async function withCliContext<T>(
  opts: { config?: string | undefined },
  fn: (ctx: CliContext) => Promise<T>,
  act?: CliAct,
): Promise<T> {
  const loaded = cliConfig(opts);
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  const dataDir = resolveDataDir(loaded);
  // PostgreSQL needs no local folder; SQLite (and the gm key files) do. Same mkdir as `kapok up`.
  if (loaded.config.store.driver === 'sqlite') ensureDataDir(dataDir);
  const store = await openStore(loaded, dataDir, logger);
  try {
    await store.migrate(ALL_MIGRATIONS);
    const ctx = { loaded, config: loaded.config, dataDir, logger, store };
    if (!act || !loaded.config.audit.enabled) return await fn(ctx);
    const { openAuditTrail } = await import('../audit/index.js');
    const trail = await openAuditTrail(store, loaded.config.audit, { logger });
    const record = (outcome: 'ok' | 'failed') =>
      trail.record({ actor: cliActor(), action: act.action, target: act.target, outcome });
    try {
      const out = await fn(ctx);
      await record('ok');
      return out;
    } catch (err) {
      await record('failed').catch(() => {});
      throw err;
    } finally {
      await trail.close();
    }
  } finally {
    await store.close();
  }
}

/**
 * The context plus the configured event bus, for commands that change what running instances act
 * on (`kapok keys revoke`, `kapok device revoke`). Publish only; on NATS the event waits in the
 * outbox, which is sent before the command exits (at most about 2 s) or, failing that, by a
 * `kapok up` on this host and dataDir (same events.instanceId).
 */
export async function withCliEvents<T>(
  opts: { config?: string | undefined },
  fn: (ctx: CliContext & { events: EventBus }) => Promise<T>,
  act?: CliAct,
): Promise<T> {
  return withCliContext(
    opts,
    async (ctx) => {
      const events = await openEvents(ctx.loaded, ctx.dataDir, ctx.store, ctx.logger, false);
      try {
        return await fn({ ...ctx, events });
      } finally {
        await events.close();
      }
    },
    act,
  );
}
