import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { serviceAvailable } from '../helpers/services.js';
import { type Edge, startEdge, until } from './setup.js';

const run = promisify(execFile);
const MOSQ = process.env.KAPOK_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const tools = await run('mosquitto_pub', ['--help']).then(
  () => true,
  (e: { code?: unknown }) => e.code !== 'ENOENT',
);
const { skip } = await serviceAvailable('mosquitto', async () => {
  if (!tools) throw new Error('mosquitto_pub/mosquitto_sub not installed (Debian: mosquitto-clients)');
  const u = new URL(MOSQ);
  await new Promise<void>((resolve, reject) => {
    const s = connect(Number(u.port || 1883), u.hostname, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
});

describe('edge interop: Debian mosquitto clients against the embedded broker', { skip }, () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({
      auth: { anonymous: false, users: [{ username: 'dev', password: 's3cret-pass' }] },
      // Static users get rights only through grants (issue 13).
      acl: { grants: [{ who: 'user:dev', publish: ['telemetry/#'], subscribe: ['telemetry/#'] }] },
    });
  });
  after(() => e.stop());

  it('mosquitto_pub QoS 1 (line protocol and JSON) is stored; mosquitto_sub sees the relay', async () => {
    const sub = spawn('mosquitto_sub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(e.mqttPort),
      '-u',
      'dev',
      '-P',
      's3cret-pass',
      '-t',
      'telemetry/#',
      '-C',
      '2',
      '-v',
    ]);
    const subExit = once(sub, 'exit');
    let subOut = '';
    sub.stdout.on('data', (d) => {
      subOut += d;
    });
    await new Promise((r) => setTimeout(r, 300)); // let the subscription land
    const pub = (topic: string, m: string) =>
      run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        String(e.mqttPort),
        '-u',
        'dev',
        '-P',
        's3cret-pass',
        '-q',
        '1',
        '-t',
        topic,
        '-m',
        m,
      ]);
    await pub('telemetry/mq-1/x', 'volts,phase=b v=230.5 1767225600000000000');
    await pub('telemetry/mq-1/amps', '{"a":3,"ts":1767225600000}');
    const r = await until(async () => {
      const a = await e.get(
        '/api/edge/query?measurement=volts&field=v&device=mq-1&from=1767225600000&to=1767225601000',
      );
      const b = await e.get(
        '/api/edge/query?measurement=amps&field=a&device=mq-1&from=1767225600000&to=1767225601000',
      );
      return a.body.points?.length === 1 && b.body.points?.length === 1 ? [a, b] : null;
    });
    assert.equal(r[0]?.body.points[0].value, 230.5);
    assert.equal(r[1]?.body.points[0].value, 3);
    await subExit;
    assert.match(subOut, /telemetry\/mq-1\/x volts,phase=b v=230\.5/);
  });

  it('refuses wrong credentials and anonymous clients when anonymous is off', async () => {
    const bad = await run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(e.mqttPort),
      '-u',
      'dev',
      '-P',
      'wrong',
      '-q',
      '1',
      '-t',
      'telemetry/x/y',
      '-m',
      '{"v":1}',
    ]).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    assert.notEqual(bad, 0);
    const anon = await run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(e.mqttPort),
      '-q',
      '1',
      '-t',
      'telemetry/x/y',
      '-m',
      '{"v":1}',
    ]).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    assert.notEqual(anon, 0);
  });
});

describe('edge interop: external mode consuming from the local Mosquitto', { skip }, () => {
  let e: Edge;
  const id = `kapok-test-${process.pid}`;
  before(async () => {
    e = await startEdge({
      mqtt: { mode: 'external', url: MOSQ, clientId: id, topics: [`kapok-it-${process.pid}/#`] },
      topicPattern: `kapok-it-${process.pid}/{device}/{measurement}`,
    });
    await until(async () => (await e.get('/readyz')).status === 200, 10_000, 'external client connected');
  });
  after(async () => {
    await e.stop();
    // Remove the persistent session this test left on the shared broker.
    const c = mqtt.connect(MOSQ, { clientId: id, clean: true, reconnectPeriod: 0 });
    await new Promise((r) => c.once('connect', r));
    await c.endAsync();
  });

  it('stores what mosquitto_pub sends to Mosquitto', async () => {
    const u = new URL(MOSQ);
    const pub = (i: number) =>
      run('mosquitto_pub', [
        '-h',
        u.hostname,
        '-p',
        u.port || '1883',
        '-q',
        '1',
        '-t',
        `kapok-it-${process.pid}/ext-1/env`,
        '-m',
        `{"v":${i},"ts":${1767225600000 + i}}`,
      ]);
    await pub(1);
    await until(async () => (await e.get('/api/edge/devices')).body.devices.length === 1);
    const r = await e.get('/readyz');
    assert.equal(r.body.components.find((c: { name: string }) => c.name === 'edge').detail.connected, true);
    await pub(2);
    const q = await until(async () => {
      const q = await e.get(
        '/api/edge/query?measurement=env&field=v&device=ext-1&from=1767225600000&to=1767225601000',
      );
      return q.body.points?.length === 2 ? q : null;
    });
    assert.deepEqual(
      q.body.points.map((p: { value: number }) => p.value),
      [1, 2],
    );
  });
  it('gets what was published while Kapok was down (persistent session, clean: false)', async () => {
    const u = new URL(MOSQ);
    const dataDir = e.dataDir;
    await e.stop({ keepData: true });
    await run('mosquitto_pub', [
      '-h',
      u.hostname,
      '-p',
      u.port || '1883',
      '-q',
      '1',
      '-t',
      `kapok-it-${process.pid}/ext-2/env`,
      '-m',
      '{"v":9,"ts":1767225600000}',
    ]);
    e = await startEdge(
      {
        mqtt: { mode: 'external', url: MOSQ, clientId: id, topics: [`kapok-it-${process.pid}/#`] },
        topicPattern: `kapok-it-${process.pid}/{device}/{measurement}`,
      },
      dataDir,
    );
    const q = await until(async () => {
      const q = await e.get(
        '/api/edge/query?measurement=env&field=v&device=ext-2&from=1767225600000&to=1767225600001',
      );
      return q.body.points?.length === 1 ? q : null;
    });
    assert.equal(q.body.points[0].value, 9);
  });
});
