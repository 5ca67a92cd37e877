import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { createSqliteSpoolStore } from '../../src/adapters/sqlite/spool.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { createDecoder } from '../../src/edge/decode/index.js';
import { compileTopicPattern } from '../../src/edge/decode/topic.js';
import { Ingest } from '../../src/edge/ingest.js';
import type { MqttAuthenticate } from '../../src/edge/intake/auth.js';
import { EmbeddedBroker } from '../../src/edge/intake/embedded.js';
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
    username && password?.toString() === `token-${username}` ? { device: username } : null;

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
    const parts = compileTopicPattern(pattern);
    broker = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      topics: ['telemetry/#'],
      ingest,
      authenticate,
      deviceOf: (t) => parts(t).device,
      logger,
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

  it("a device may publish to its own topic and is cut off (no PUBACK) on another device's", async () => {
    const c = await client('dev-a', 'token-dev-a');
    await c.publishAsync('telemetry/dev-a/env', '{"v":1}', { qos: 1 });
    assert.equal(spool.read('a', 10).length, 1);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('telemetry/dev-b/env', '{"v":2}', { qos: 1 });
    await closed;
    c.end(true);
    assert.equal(spool.read('a', 10).length, 1, 'nothing stored for the foreign topic');
  });
});
