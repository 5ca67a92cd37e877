/**
 * The event bus as app.ts wires it: config validation, /readyz, metrics, the derived instance id,
 * and a start with NATS unreachable (a port where nothing listens: no NATS server needed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventsInstanceId, startApp } from '../../src/app.js';
import { configSchema } from '../../src/config.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { freePort } from '../helpers/ports.js';
import { tmpDir } from '../helpers/tmp.js';

const loaded = (extra: Record<string, unknown>) => ({
  config: testConfig({
    dataDir: tmpDir('kapok-events-app-'),
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    ...extra,
  }),
  file: null,
  envOverrides: new Map(),
});

describe('event bus wiring', () => {
  it('refuses events.adapter nats without events.nats.url', () => {
    const r = configSchema.safeParse({ events: { adapter: 'nats' } });
    assert.equal(r.success, false);
    assert.deepEqual(
      r.error?.issues.map((i) => i.path.join('.')),
      ['events.nats.url'],
    );
  });

  it('derives a stable instance id from the host name and dataDir unless events.instanceId is set', () => {
    const a = loaded({});
    assert.equal(eventsInstanceId(a, '/srv/a'), eventsInstanceId(a, '/srv/a'));
    assert.notEqual(eventsInstanceId(a, '/srv/a'), eventsInstanceId(a, '/srv/b'));
    assert.match(eventsInstanceId(a, '/srv/a'), /^[A-Za-z0-9_-]+-[0-9a-f]{8}$/);
    assert.equal(eventsInstanceId(loaded({ events: { instanceId: 'edge-7' } }), '/srv/a'), 'edge-7');
  });

  it('memory by default: /readyz lists events:memory, metrics count handled events', async () => {
    const app = await startApp(loaded({}), { logDestination: captureLogs() });
    try {
      app.events.subscribe(['control.config.applied'], () => {});
      await app.events.publish('control.config.applied', { version: 1 });
      const end = Date.now() + 5000;
      while (app.events.status().handled === 0 && Date.now() < end)
        await new Promise((r) => setTimeout(r, 10));
      const ready = await app.health.readiness();
      assert.equal(ready.components.find((c) => c.name === 'events:memory')?.state, 'ready');
      assert.match(await app.metrics.render(), /kapok_events_handled_total\{[^}]*\} 1\b/);
    } finally {
      await app.stop();
    }
  });

  it('starts with NATS unreachable: /readyz shows events:nats not ready, publish still resolves (outbox)', async () => {
    const port = await freePort();
    const app = await startApp(
      loaded({
        events: { adapter: 'nats', instanceId: 'down-test', nats: { url: `nats://127.0.0.1:${port}` } },
      }),
      { logDestination: captureLogs() },
    );
    try {
      const ready = await app.health.readiness();
      assert.equal(ready.status, 'not_ready');
      const ev = ready.components.find((c) => c.name === 'events:nats');
      assert.equal(ev?.state, 'not_ready');
      assert.equal(ready.components.find((c) => c.name === 'store:sqlite')?.state, 'ready');
      await app.events.publish('gateway.key.revoked', { id: 'k' });
      assert.equal(app.events.status().pending, 1);
      assert.match(await app.metrics.render(), /kapok_events_outbox_pending\{[^}]*\} 1\b/);
    } finally {
      await app.stop();
    }
  });
});
