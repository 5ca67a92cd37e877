import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryEventBus } from '../../src/adapters/memory/events.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { createLogger } from '../../src/core/log.js';
import type { EventBus, EventEnvelope } from '../../src/ports/events.js';
import type { RequestReply } from '../../src/ports/request.js';
import type { Store } from '../../src/ports/store.js';
import { type SagaConfig, sagaSchema } from '../../src/saga/config.js';
import { Coordinator } from '../../src/saga/engine.js';
import { SAGA_MIGRATIONS } from '../../src/saga/migrations.js';
import { planTransaction } from '../../src/saga/spec.js';
import { createTransport } from '../../src/saga/transport.js';
import { captureLogs } from '../helpers/logs.js';

/** Fast settings for tests: short retries, lease and poll; targets given per test. */
export function sagaConfig(over: Record<string, unknown> = {}): SagaConfig {
  return sagaSchema.parse({
    enabled: true,
    coordinatorTimeoutMs: 2000,
    transactionTimeoutMs: 20_000,
    retry: { baseMs: 20, maxMs: 200, maxAttempts: 5 },
    leaseMs: 1000,
    pollMs: 20,
    ...over,
  });
}

export interface Rig {
  store: Store;
  events: EventBus;
  dead: EventEnvelope[];
  coordinator: Coordinator;
  config: SagaConfig;
  logs: ReturnType<typeof captureLogs>;
  submit(body: unknown, headers?: Record<string, string>): Promise<{ created: boolean }>;
  close(): Promise<void>;
}

const made: string[] = [];
process.once('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A Store on a fresh SQLite file; its folder goes when the process exits (safe to call inside hooks). */
export async function sqliteStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'kapok-saga-'));
  made.push(dir);
  return createSqliteStore({ file: `${dir}/kapok.db` });
}

export async function rig(
  store: Store,
  config: SagaConfig,
  o: { events?: EventBus; nats?: RequestReply } = {},
): Promise<Rig> {
  await store.migrate(SAGA_MIGRATIONS);
  const events = o.events ?? (await createMemoryEventBus({ instanceId: 'test' }));
  const dead: EventEnvelope[] = [];
  events.subscribe(['saga.dlq.added'], (e) => {
    dead.push(e);
  });
  const logs = captureLogs();
  const transport = createTransport({ maxResponseBytes: 4096, nats: o.nats ?? null });
  const coordinator = new Coordinator({
    store,
    config,
    transport,
    events,
    logger: createLogger({ level: 'warn', destination: logs }),
  });
  coordinator.start();
  return {
    store,
    events,
    dead,
    coordinator,
    config,
    logs,
    submit: (body, headers = {}) => coordinator.submit(planTransaction(body, config), headers),
    close: async () => {
      await coordinator.stop(1000);
      await transport.close();
      if (!o.events) await events.close();
    },
  };
}

export async function opsOf(store: Store, gid: string) {
  return store.query<{
    branch: string;
    op: string;
    state: string;
    attempts: number;
    last_error: string | null;
  }>('SELECT branch, op, state, attempts, last_error FROM saga_op WHERE gid = ? ORDER BY stage, branch, op', [
    gid,
  ]);
}
