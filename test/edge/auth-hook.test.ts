import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { createSqliteSpoolStore } from '../../src/adapters/sqlite/spool.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { edgeSchema } from '../../src/edge/config.js';
import { createDecoder } from '../../src/edge/decode/index.js';
import { Ingest } from '../../src/edge/ingest.js';
import { Acl } from '../../src/edge/intake/acl.js';
import type { MqttAuthenticate } from '../../src/edge/intake/auth.js';
import { type BrokerEvent, EmbeddedBroker } from '../../src/edge/intake/embedded.js';
import { createEdgeMetrics } from '../../src/edge/metrics.js';
import { DecodedCache } from '../../src/edge/spool/decoded-cache.js';
import { Spool } from '../../src/edge/spool/spool.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

describe('edge: injected authenticate hook (the port for gm device tokens)', () => {
  const pattern = 'telemetry/{device}/{measurement}';
  let spool: Spool;
  let broker: EmbeddedBroker;
  // Stand-in for a device-token check: password "token-<device>" authenticates as that device.
  const authenticate: MqttAuthenticate = async (username, password) =>
    username && password?.toString() === `token-${username}`
      ? { subject: { kind: 'device', device: username, vehicle: username, group: 'default' } }
      : null;
  const events: BrokerEvent[] = [];

  before(async () => {
    spool = new Spool({
      store: createSqliteSpoolStore({ file: join(tmpDir(), 's.db'), fsync: 'normal' }),
      maxBytes: 1 << 20,
      onFull: 'reject',
      sinks: ['a'],
      deadLetterMax: 10,
    });
    const logger = createLogger({ level: 'warn', destination: captureLogs() });
    const ingest = new Ingest({
      spool,
      cache: new DecodedCache(100),
      decode: createDecoder({ topicPattern: pattern, format: 'auto' }),
      maxPayloadBytes: 1 << 20,
      metrics: createEdgeMetrics(createMetrics().registry),
      logger,
    });
    broker = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      topics: ['telemetry/#'],
      ingest,
      authenticate,
      acl: new Acl(edgeSchema.parse({}).acl, pattern),
      logger,
      onEvent: (e) => events.push(e),
    });
    await broker.start();
  });
  after(async () => {
    await broker.stop();
    spool.close();
  });

  const client = (username: string, password: string) =>
    new Promise<mqtt.MqttClient>((resolve, reject) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { username, password, reconnectPeriod: 0 });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });

  it('refuses a bad token at CONNECT', async () => {
    await assert.rejects(client('dev-a', 'token-dev-b'), /Bad username or password|Connection refused/i);
  });

  // A refused PUBLISH is acknowledged and dropped (as Mosquitto does; issue 13: a closed connection
  // made QoS 1 clients resend it forever), counted, and never stored.
  it("a device may publish to its own topic; on another device's the message is dropped and counted", async () => {
    const c = await client('dev-a', 'token-dev-a');
    await c.publishAsync('telemetry/dev-a/env', '{"v":1}', { qos: 1 });
    assert.equal(spool.read('a', 10).length, 1);
    await c.publishAsync('telemetry/dev-b/env', '{"v":2}', { qos: 1 });
    assert.equal(c.connected, true);
    c.end(true);
    assert.equal(spool.read('a', 10).length, 1, 'nothing stored for the foreign topic');
    assert.deepEqual(events, ['publish_refused']);
  });

  it("a device's payload naming another device is dead-lettered, not stored as that device", async () => {
    const c = await client('dev-a', 'token-dev-a');
    await c.publishAsync('telemetry/dev-a/env', '{"v":3,"device":"dev-b"}', { qos: 1 });
    await c.publishAsync('telemetry/dev-a/env', 'env,device=dev-b v=4', { qos: 1 });
    c.end(true);
    assert.equal(spool.read('a', 10).length, 1, 'only the first test’s point');
    const dl = spool.deadLetters(10);
    assert.equal(dl.length, 2);
    for (const d of dl) assert.match(d.reason, /names device dev-b but the publisher is device dev-a/);
  });
});
