import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { createSqliteSpoolStore } from '../../src/adapters/sqlite/spool.js';
import { type ErrorCode, isKapokError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { edgeSchema } from '../../src/edge/config.js';
import { createDecoder } from '../../src/edge/decode/index.js';
import { Ingest } from '../../src/edge/ingest.js';
import { Acl } from '../../src/edge/intake/acl.js';
import type { MqttAuthenticate } from '../../src/edge/intake/auth.js';
import { EmbeddedBroker } from '../../src/edge/intake/embedded.js';
import { createEdgeMetrics } from '../../src/edge/metrics.js';
import { DecodedCache } from '../../src/edge/spool/decoded-cache.js';
import { Spool } from '../../src/edge/spool/spool.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

const pattern = 'telemetry/{device}/{measurement}';

/** An address on no interface of this machine (TEST-NET-3, RFC 5737), so listening on it fails. */
function foreignAddress(): string {
  const mine = new Set(
    Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address),
  );
  const a = ['203.0.113.77', '198.51.100.77', '192.0.2.250'].find((x) => !mine.has(x));
  if (!a) throw new Error('every TEST-NET candidate is assigned here');
  return a;
}

const rejectsWith = (p: Promise<unknown>, code: ErrorCode, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(isKapokError(e, code), String(e));
    assert.match((e as Error).message, re);
    return true;
  });

// The embedded broker's own failures: KAPOK_EDGE_MQTT (cannot listen, no PUBACK for a port
// publish, broker stopped with publishes pending) and KAPOK_EDGE_NOT_AUTHORIZED (a session whose
// device is no longer valid publishes: the connection is closed, the code logged).
describe('edge embedded broker: KAPOK_EDGE_MQTT and KAPOK_EDGE_NOT_AUTHORIZED', () => {
  const logs = captureLogs();
  const logger = createLogger({ level: 'debug', destination: logs });
  let spool: Spool;
  let ingest: Ingest;
  /** Per device: what the identity's recheck answers (true: still valid; 'throw': the check fails). */
  const valid = new Map<string, boolean | 'throw'>();
  // Stand-in for gm device tokens: password "token-<device>" authenticates as that device, and the
  // periodic recheck reads `valid` (a revocation the broker learns of only through the recheck).
  const authenticate: MqttAuthenticate = async (username, password) =>
    username && password?.toString() === `token-${username}`
      ? {
          subject: { kind: 'device', device: username, vehicle: username, group: 'default' },
          recheck: async () => {
            const v = valid.get(username) ?? true;
            if (v === 'throw') throw new Error('store down');
            return v;
          },
        }
      : null;
  const broker = (host = '127.0.0.1') =>
    new EmbeddedBroker({
      host,
      port: 0,
      topics: ['telemetry/#'],
      ingest,
      authenticate,
      acl: new Acl(edgeSchema.parse({}).acl, pattern),
      logger,
    });

  before(() => {
    spool = new Spool({
      store: createSqliteSpoolStore({ file: join(tmpDir(), 's.db'), fsync: 'normal' }),
      maxBytes: 1 << 20,
      onFull: 'reject',
      sinks: ['a'],
      deadLetterMax: 10,
    });
    ingest = new Ingest({
      spool,
      cache: new DecodedCache(100),
      decode: createDecoder({ topicPattern: pattern, format: 'auto' }),
      maxPayloadBytes: 1 << 20,
      metrics: createEdgeMetrics(createMetrics().registry),
      logger,
    });
  });
  after(() => spool.close());

  it('cannot listen on the address: start fails with KAPOK_EDGE_MQTT naming host and port', async () => {
    const host = foreignAddress();
    const b = broker(host);
    await rejectsWith(
      b.start(),
      'KAPOK_EDGE_MQTT',
      new RegExp(`cannot listen on ${host.replace(/\./g, '\\.')}:0`),
    );
    await b.stop();
  });

  it('a QoS 1 port publish nobody acknowledges rejects with KAPOK_EDGE_MQTT; so do those pending at stop', async () => {
    const b = broker();
    await b.start();
    await rejectsWith(
      b.publish('cmd/dev-x/reboot', Buffer.from('{}'), 1, 200),
      'KAPOK_EDGE_MQTT',
      /no PUBACK for cmd\/dev-x\/reboot within 200 ms/,
    );
    const pending = b.publish('cmd/dev-x/reboot', Buffer.from('{"n":2}'), 1, 60_000);
    const settled = rejectsWith(pending, 'KAPOK_EDGE_MQTT', /edge MQTT broker stopped/);
    await b.stop();
    await settled;
  });

  it('a session whose device is no longer valid is closed at its next publish, logged as KAPOK_EDGE_NOT_AUTHORIZED', async () => {
    const b = broker();
    await b.start();
    const connect = (device: string) =>
      new Promise<mqtt.MqttClient>((resolve, reject) => {
        const c = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, {
          clientId: device,
          username: device,
          password: `token-${device}`,
          reconnectPeriod: 0,
        });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      });
    const revoked = await connect('dev-r');
    const failing = await connect('dev-f');
    const fine = await connect('dev-ok');
    // The broker rechecks a session at most once a second: let that second pass.
    await new Promise((r) => setTimeout(r, 1100));
    valid.set('dev-r', false);
    valid.set('dev-f', 'throw');
    const closed = (c: mqtt.MqttClient) => new Promise<void>((r) => c.once('close', () => r()));
    const closes = Promise.all([closed(revoked), closed(failing)]);
    // No PUBACK will come for these: the promises are left; the close is what is awaited.
    revoked.publish('telemetry/dev-r/env', '{"v":1}', { qos: 1 });
    failing.publish('telemetry/dev-f/env', '{"v":1}', { qos: 1 });
    await fine.publishAsync('telemetry/dev-ok/env', '{"v":1}', { qos: 1 });
    await closes;
    assert.equal(fine.connected, true, 'a still-valid device keeps its session');
    const stored = spool.read('a', 10).map((r) => JSON.stringify(r));
    assert.equal(stored.length, 1, 'only the valid device’s point is stored');
    assert.match(stored[0] as string, /dev-ok/);
    const refused = logs.lines
      .filter((l) => l.msg === 'mqtt client error' && l.code === 'KAPOK_EDGE_NOT_AUTHORIZED')
      .map((l) => `${l.client}: ${l.reason}`)
      .sort();
    assert.equal(refused.length, 2, refused.join('\n'));
    assert.match(
      refused[0] as string,
      /^dev-f: client dev-f: token check failed; reconnect with a fresh token$/,
    );
    assert.match(refused[1] as string, /^dev-r: client dev-r: token or device no longer valid; reconnect/);
    fine.end(true);
    for (const c of [revoked, failing]) c.end(true);
    await b.stop();
  });

  it('MQTT 5: a revoked session gets DISCONNECT 0x87, a full spool DISCONNECT 0x97; neither publish is acknowledged', async () => {
    // A spool with room for a few messages only, refusing the rest (edge.spool.onFull: reject).
    const small = new Spool({
      store: createSqliteSpoolStore({ file: join(tmpDir(), 'small.db'), fsync: 'normal' }),
      maxBytes: 600,
      onFull: 'reject',
      sinks: ['a'],
      deadLetterMax: 10,
    });
    const smallIngest = new Ingest({
      spool: small,
      cache: new DecodedCache(100),
      decode: createDecoder({ topicPattern: pattern, format: 'auto' }),
      maxPayloadBytes: 1 << 20,
      metrics: createEdgeMetrics(createMetrics().registry),
      logger,
    });
    const b = new EmbeddedBroker({
      host: '127.0.0.1',
      port: 0,
      topics: ['telemetry/#'],
      ingest: smallIngest,
      authenticate,
      acl: new Acl(edgeSchema.parse({}).acl, pattern),
      logger,
    });
    await b.start();
    const connect = (device: string) =>
      new Promise<mqtt.MqttClient>((resolve, reject) => {
        const c = mqtt.connect(`mqtt://127.0.0.1:${b.port}`, {
          protocolVersion: 5,
          clientId: device,
          username: device,
          password: `token-${device}`,
          reconnectPeriod: 0,
        });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      });
    const reasonOf = (c: mqtt.MqttClient) =>
      new Promise<number | undefined>((r) => c.once('disconnect', (p) => r(p.reasonCode)));
    const revoked = await connect('dev-r5');
    await new Promise((r) => setTimeout(r, 1100));
    valid.set('dev-r5', false);
    const r5 = reasonOf(revoked);
    let acked = false;
    revoked.publish('telemetry/dev-r5/env', '{"v":1}', { qos: 1 }, (err) => {
      acked = !err;
    });
    assert.equal(await r5, 0x87);
    const filler = await connect('dev-full');
    const full = reasonOf(filler);
    let stored = 0;
    for (let i = 0; i < 20 && filler.connected; i++)
      await Promise.race([
        filler
          .publishAsync('telemetry/dev-full/env', JSON.stringify({ v: i }), { qos: 1 })
          .then(() => stored++),
        full,
      ]);
    assert.equal(await full, 0x97, 'Quota exceeded');
    assert.ok(stored > 0 && stored < 20, `stored ${stored} before the spool was full`);
    assert.equal(small.read('a', 100).length, stored, 'every acknowledged message is in the spool, no other');
    assert.equal(acked, false, 'the revoked session’s publish was not acknowledged');
    for (const c of [revoked, filler]) c.end(true);
    await b.stop();
    small.close();
  });
});
