/**
 * Two Kapok instances sharing one PostgreSQL store (own schema per run) and one NATS (own subject
 * prefix per run): a change made on A takes effect on B through the event bus, not through B's
 * cache expiry or Store poll, which are set far beyond the test's life. Upstream LLM: the fake of
 * helpers/fake-llm.ts (only GET /v1/models is called here, answered by Kapok itself).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import OpenAI from 'openai';
import { createNatsEventBus } from '../../src/adapters/nats/events.js';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { keyAdmin } from '../../src/gateway/index.js';
import { authenticateDevice } from '../../src/gm/client.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { until } from '../edge/setup.js';
import { testConfig } from '../helpers/config.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { captureLogs } from '../helpers/logs.js';
import { deleteRunStreams, NATS_URL, natsAvailable, runPrefix } from '../helpers/nats.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { tmpDir } from '../helpers/tmp.js';

const ADMIN = 'fleet-admin-token-0123456789';
const FACTORY = 'factory-secret-for-tests';
const pg = await postgresGate();
const nats = await natsAvailable();
const skip = pg.skip || nats.skip;
const { schema, url } = pgSchema('kapok_events');
const prefix = runPrefix();

interface Instance {
  app: RunningApp;
  base: string;
  mqttPort: number;
  logs: ReturnType<typeof captureLogs>;
}

// Made here, not in before(): tmpDir registers its removal with after() at the file's level.
const dataDirs = { a: tmpDir('kapok-fleet-a-'), b: tmpDir('kapok-fleet-b-') };

async function start(name: 'a' | 'b', llm: FakeLlm): Promise<Instance> {
  const config = testConfig({
    dataDir: dataDirs[name],
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info', requests: false },
    store: { driver: 'postgres', url },
    events: {
      adapter: 'nats',
      instanceId: `${prefix}-${name}`,
      nats: { url: NATS_URL, subjectPrefix: prefix },
    },
    gateway: {
      enabled: true,
      auth: { adminToken: ADMIN, keyCacheMs: 300_000 }, // a cache that outlives the test (its maximum)
      providers: [{ name: 'up', type: 'openai', baseUrl: llm.url }],
      models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
    },
    gm: {
      enabled: true,
      kek: '00112233445566778899aabbccddeeff',
      adminToken: ADMIN,
      keyWrap: 'pbkdf2',
      factorySecret: FACTORY,
      pbkdf2Iterations: 1000,
      verifyWorkers: 0,
      revocationPollMs: 3_600_000, // the Store poll cannot be what ends the session here
    },
    edge: {
      enabled: true,
      auth: { anonymous: false },
      mqtt: { port: 0, host: '127.0.0.1' },
    },
    v2x: { enabled: true, adminToken: ADMIN },
  });
  const logs = captureLogs();
  const app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
  const mqttPort = Number(logs.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);
  await until(() => app.events.status().connected, 10_000, `${name} connected to NATS`);
  return { app, base: `http://127.0.0.1:${app.port}`, mqttPort, logs };
}

async function api(i: Instance, method: string, path: string, body?: unknown) {
  const res = await fetch(`${i.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the admin API answers
  return { status: res.status, body: (text ? JSON.parse(text) : null) as any };
}

const models = (i: Instance, key: string) =>
  new OpenAI({ apiKey: key, baseURL: `${i.base}/v1`, maxRetries: 0 }).models.list().then(
    () => 'ok' as const,
    (e: { status?: number }) => e.status,
  );

describe('fleet events across two instances (needs PostgreSQL and NATS)', { skip }, () => {
  let llm: FakeLlm;
  let a: Instance;
  let b: Instance;
  before(async () => {
    await pgAdmin(`CREATE SCHEMA ${schema}`);
    llm = await startFakeLlm('up');
    a = await start('a', llm);
    b = await start('b', llm);
  });
  after(async () => {
    await b?.app.stop();
    await a?.app.stop();
    await llm?.close();
    await pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await deleteRunStreams(prefix);
  });

  it('a key revoked on A (HTTP) is refused by B on the first request after B handled the event', async () => {
    const created = await api(a, 'POST', '/api/gateway/keys', { name: 'fleet-http' });
    assert.equal(created.status, 201);
    assert.equal(await models(b, created.body.key), 'ok', 'B accepts it and caches it');
    const handled = b.app.events.status().handled;
    assert.equal((await api(a, 'DELETE', `/api/gateway/keys/${created.body.id}`)).status, 200);
    await until(() => b.app.events.status().handled > handled, 10_000, 'B handled the event');
    assert.equal(await models(b, created.body.key), 401);
  });

  it('a key revoked by `kapok keys revoke` (keyAdmin with a publish-only bus) is refused by B the same way', async () => {
    const created = await api(a, 'POST', '/api/gateway/keys', { name: 'fleet-cli' });
    assert.equal(await models(b, created.body.key), 'ok');
    const store = await createPostgresStore({ url });
    const cli = await createNatsEventBus({
      url: NATS_URL,
      store,
      instanceId: `${prefix}-cli`,
      subjectPrefix: prefix,
      consume: false,
    });
    try {
      const handled = b.app.events.status().handled;
      const gw = testConfig({ gateway: { models: [] } }).gateway;
      assert.equal(await keyAdmin(store, gw, cli).revoke('fleet-cli'), created.body.id);
      await until(() => b.app.events.status().handled > handled, 10_000, 'B handled the event');
      assert.equal(await models(b, created.body.key), 401);
    } finally {
      await cli.close();
      await store.close();
    }
  });

  it("a device revoked on A has its MQTT session on B's broker closed by the event", async () => {
    const reg = await api(a, 'POST', '/api/gm/devices', { serial: 'FLEET-1', group: 'pumps' });
    assert.equal(reg.status, 201);
    const creds = {
      serial: 'FLEET-1',
      signKey: unwrapDeviceKey(reg.body.signKey, 'FLEET-1', { factorySecret: FACTORY }),
      signMasterPublicKey: fromHex(reg.body.signMasterPublicKey, 'master'),
    };
    const { token } = await authenticateDevice(b.base, creds);
    const c = mqtt.connect(`mqtt://127.0.0.1:${b.mqttPort}`, {
      username: 'FLEET-1',
      password: token,
      reconnectPeriod: 0,
    });
    await new Promise((res, j) => c.once('connect', res).once('error', j));
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    assert.equal((await api(a, 'DELETE', '/api/gm/devices/FLEET-1')).status, 200);
    await closed;
    assert.ok(b.logs.lines.some((l) => l.msg === 'revoked device disconnected' && l.device === 'FLEET-1'));
  });

  it('a zone put on A is applied on B from the event (zones are per-instance files), and a delete follows', async () => {
    const poly = {
      type: 'Polygon',
      coordinates: [
        [
          [113.3, 23.1],
          [113.4, 23.1],
          [113.4, 23.2],
          [113.3, 23.2],
          [113.3, 23.1],
        ],
      ],
    };
    const zoneIds = async (i: Instance) =>
      ((await api(i, 'GET', '/api/v2x/zones')).body.zones as Array<{ id: string }>).map((z) => z.id);
    assert.deepEqual(await zoneIds(b), []);
    assert.equal((await api(a, 'PUT', '/api/v2x/zones/fleet-z1', poly)).status, 201);
    await until(async () => (await zoneIds(b)).includes('fleet-z1'), 10_000, 'zone on B');
    const onB = (await api(b, 'GET', '/api/v2x/zones')).body.zones[0];
    assert.deepEqual(onB.geometry, poly);
    assert.equal((await api(a, 'DELETE', '/api/v2x/zones/fleet-z1')).status, 204);
    await until(async () => (await zoneIds(b)).length === 0, 10_000, 'zone deleted on B');
  });
});
