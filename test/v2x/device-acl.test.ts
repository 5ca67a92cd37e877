import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { type RunningApp, startApp } from '../../src/app.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { authenticateDevice, type DeviceCredentials } from '../../src/gm/client.js';
import { Keyring } from '../../src/gm/keystore.js';
import { issueDeviceToken } from '../../src/gm/tokens.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { encodeFrame } from '../../src/v2x/frames.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';
import { until } from '../edge/setup.js';
import { kapok } from '../helpers/cli.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

// Issue 13 end to end: device tokens from the real gm flow at the embedded broker, the
// authorization table of docs/edge.md row by row, V2X spoofing, acknowledgement hijack, sessions
// bound to their token (expiry; revocation by `kapok device revoke` in another process).

const ADMIN = 'admin-token-for-tests-0013';
const FACTORY = 'factory-secret-for-tests';
const KEK = '00112233445566778899aabbccddeeff';
const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;
const PW = 'operator-pass-0013';

type Client = mqtt.MqttClient;

function connect(port: number, username?: string, password?: string): Promise<Client> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(username ? { username, password } : {}),
  });
  return new Promise((res, rej) => {
    c.once('connect', () => res(c));
    c.once('error', rej);
  });
}

/** The SUBACK return code of one filter (128 = refused). */
async function granted(c: Client, filter: string, qos: 0 | 1 = 1): Promise<number> {
  try {
    const g = await c.subscribeAsync(filter, { qos });
    return g[0]?.qos as number;
  } catch (err) {
    // mqtt.js rejects a SUBACK whose only code is the failure 0x80.
    const codes = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (codes?.[0] === 128) return 128;
    throw err;
  }
}

const closedWithin = (c: Client) =>
  new Promise<number>((r) => {
    if (!c.connected) return r(Date.now());
    c.once('close', () => r(Date.now()));
  });

describe('MQTT authorization with device tokens (issue 13)', () => {
  const logs = captureLogs();
  const dataDir = tmpDir('kapok-acl-');
  let app: RunningApp;
  let base: string;
  let port: number;
  const world = new World({
    scenarios: loadScenarios(`${DIR}fcw-stopped-lead.json`),
    background: 0,
    runId: 7,
  });
  const vA = world.ids.get('fcw-stopped-lead:A') as string;
  const vL = world.ids.get('fcw-stopped-lead:B') as string;
  const creds = new Map<string, DeviceCredentials>();

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    // biome-ignore lint/suspicious/noExplicitAny: tests read whatever JSON the API answers
    return { status: res.status, body: (await res.json()) as any };
  };
  const token = async (serial: string) =>
    (await authenticateDevice(base, creds.get(serial) as DeviceCredentials)).token;
  const asDevice = async (serial: string) => connect(port, serial, await token(serial));
  const metric = async (re: RegExp) => {
    const m = re.exec(await app.metrics.render());
    return m ? Number(m[1]) : 0;
  };
  const stats = async () => (await api('GET', '/api/v2x/stats')).body.strategies as { acked: number };

  before(async () => {
    const config = testConfig({
      dataDir,
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info', requests: false },
      gm: {
        enabled: true,
        kek: KEK,
        adminToken: ADMIN,
        keyWrap: 'pbkdf2',
        factorySecret: FACTORY,
        pbkdf2Iterations: 1000,
        verifyWorkers: 1,
      },
      edge: {
        enabled: true,
        auth: {
          anonymous: false,
          users: [
            { username: 'dash', password: PW },
            { username: 'ops', password: PW },
          ],
        },
        acl: {
          grants: [
            { who: 'user:dash', subscribe: ['telemetry/#', 'v2x/+/strategy'] },
            { who: 'user:ops', subscribe: ['$SYS/#'] },
            { who: 'group:rsu', publish: ['v2x/{vehicle}/spat', 'v2x/{vehicle}/map'] },
          ],
        },
        batch: { size: 50, intervalMs: 10 },
        mqtt: { port: 0, host: '127.0.0.1' },
      },
      v2x: { enabled: true, strategy: { ttlMs: 4000, retryMs: 100 } },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
    port = Number(logs.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);
    const devices: Array<[string, string, string]> = [
      ['OBU-A', 'obu', vA],
      ['OBU-L', 'obu', vL],
      ['OBU-B', 'obu', '00000000000000bb'],
      ['RSU-1', 'rsu', 'rsu1'],
      ['OBU-X', 'obu', 'OBU-X'],
    ];
    for (const [serial, group, vehicle] of devices) {
      const r = await api('POST', '/api/gm/devices', { serial, group, vehicle });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.vehicle, vehicle);
      creds.set(serial, {
        serial,
        signKey: unwrapDeviceKey(r.body.signKey, serial, { factorySecret: FACTORY }),
        signMasterPublicKey: fromHex(r.body.signMasterPublicKey, 'master'),
      });
    }
  });
  after(() => app?.stop());

  it('a vehicle id is bound to one active device: a second registration for it is refused', async () => {
    const r = await api('POST', '/api/gm/devices', { serial: 'OBU-A2', vehicle: vA });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'KAPOK_GM_VEHICLE_TAKEN');
    const bad = await api('POST', '/api/gm/devices', { serial: 'OBU-A3', vehicle: 'no/slash' });
    assert.equal(bad.body.error.code, 'KAPOK_GM_INVALID_INPUT');
  });

  it('subscriptions: a device gets its own command and strategy topics, nothing else; users only their grants', async () => {
    const a = await asDevice('OBU-A');
    assert.equal(await granted(a, `cmd/OBU-A/#`), 1);
    assert.equal(await granted(a, `v2x/${vA}/strategy`), 1);
    for (const f of [
      '#',
      'telemetry/#',
      'v2x/+/strategy',
      `v2x/${vL}/strategy`,
      'cmd/OBU-B/#',
      '$SYS/#',
      'cmd/+/x',
    ])
      assert.equal(await granted(a, f), 128, f);
    a.end(true);
    const dash = await connect(port, 'dash', PW);
    assert.equal(await granted(dash, 'telemetry/#'), 1);
    assert.equal(await granted(dash, 'telemetry/OBU-A/env'), 1, 'a narrower filter than the grant');
    assert.equal(await granted(dash, '#'), 128);
    assert.equal(await granted(dash, '$SYS/#'), 128, '$SYS only for users granted it');
    dash.end(true);
    const ops = await connect(port, 'ops', PW);
    assert.equal(await granted(ops, '$SYS/#'), 1);
    assert.equal(await granted(ops, 'telemetry/#'), 128);
    ops.end(true);
    assert.ok((await metric(/kapok_edge_mqtt_refused_total\{action="subscribe"[^}]*\} (\d+)/)) >= 10);
    assert.ok(
      logs.lines.some(
        (l) => l.msg === 'mqtt subscribe refused: not authorized (edge.acl)' && l.topic === '#',
      ),
    );
  });

  it('publishing: own telemetry and BSM topics only; foreign, command and strategy topics are dropped and counted', async () => {
    const b = await asDevice('OBU-B');
    const heard: string[] = [];
    b.on('message', (t) => heard.push(t));
    await b.subscribeAsync('cmd/OBU-B/#', { qos: 1 });
    await b.subscribeAsync('v2x/00000000000000bb/strategy', { qos: 1 });
    // mosquitto_sub as the dashboard user: sees telemetry it was granted.
    const sub = execFile('mosquitto_sub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-u',
      'dash',
      '-P',
      PW,
      '-t',
      'telemetry/#',
      '-v',
      '-W',
      '5',
    ]);
    let subOut = '';
    sub.stdout?.on('data', (d) => {
      subOut += d;
    });
    await new Promise((r) => setTimeout(r, 400));
    const refused0 = await metric(/kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} (\d+)/);
    const a = await asDevice('OBU-A');
    await a.publishAsync('telemetry/OBU-A/env', '{"temp":1}', { qos: 1 });
    for (const t of [
      'telemetry/OBU-B/env',
      'cmd/OBU-B/reboot',
      'v2x/00000000000000bb/strategy',
      `v2x/${vL}/bsm`,
      '$SYS/x',
    ])
      await a.publishAsync(t, '{"temp":2}', { qos: 1 });
    await until(() => subOut.includes('telemetry/OBU-A/env'), 5000, 'dashboard sees the device point');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(heard, [], 'no forged command or strategy reached OBU-B');
    assert.ok(!subOut.includes('OBU-B'), subOut);
    assert.equal(
      (await metric(/kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} (\d+)/)) - refused0,
      5,
    );
    assert.ok(a.connected, 'a refused publish does not end the session');
    // A static user publishes nothing it was not granted.
    const dash = await connect(port, 'dash', PW);
    await dash.publishAsync('telemetry/OBU-A/env', '{"temp":3}', { qos: 1 });
    assert.equal(
      (await metric(/kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} (\d+)/)) - refused0,
      6,
    );
    sub.kill();
    for (const c of [a, b, dash]) c.end(true);
    const pts = (await (
      await fetch(`${base}/api/edge/query?measurement=env&field=temp&device=OBU-B&from=0`)
    ).json()) as {
      points: unknown[];
    };
    assert.deepEqual(pts.points, []);
  });

  it('an RSU group granted SPAT/MAP publishes them for its own id only', async () => {
    const rsu = await asDevice('RSU-1');
    const r0 = await metric(/kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} (\d+)/);
    const spat0 = await metric(/kapok_v2x_messages_total\{[^}]*type="spat"[^}]*\} (\d+)/);
    const red = new World({ scenarios: loadScenarios(`${DIR}rlvw-red.json`), background: 0, runId: 8 });
    await rsu.publishAsync('v2x/rsu1/spat', encodeFrame(red.spat(Date.now(), 0) as never, 'uper'), {
      qos: 1,
    });
    await rsu.publishAsync('v2x/rsu2/spat', encodeFrame(red.spat(Date.now(), 0) as never, 'uper'), {
      qos: 1,
    });
    rsu.end(true);
    assert.equal((await metric(/kapok_v2x_messages_total\{[^}]*type="spat"[^}]*\} (\d+)/)) - spat0, 1);
    assert.equal((await metric(/kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} (\d+)/)) - r0, 1);
  });

  it("BSMs with another vehicle's id raise nothing; the vehicles' own BSMs raise FCW; the hijacker's PUBACK and ack are ignored", async () => {
    const b = await asDevice('OBU-B');
    const dash = await connect(port, 'dash', PW);
    const seen: Array<{ id: string; vehicleId: string }> = [];
    dash.on('message', (_t, p) => seen.push(JSON.parse(p.toString())));
    assert.equal(await granted(dash, 'v2x/+/strategy'), 1);
    const warnings0 = (await api('GET', '/api/v2x/warnings')).body.warnings.length;
    const spoofed0 = await metric(/kapok_v2x_dropped_total\{[^}]*reason="spoofed"[^}]*\} (\d+)/);
    // OBU-B sends every vehicle's BSM on its own topic: all dropped as spoofed, no warning.
    let t = 0;
    for (let k = 0; k < 8; k++) {
      t += 0.1;
      world.step(t, 0.1);
      for (let i = 0; i < 2; i++)
        await b.publishAsync('v2x/00000000000000bb/bsm', encodeFrame(world.bsm(i, Date.now()), 'uper'));
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      (await metric(/kapok_v2x_dropped_total\{[^}]*reason="spoofed"[^}]*\} (\d+)/)) - spoofed0,
      16,
    );
    assert.equal(
      (await api('GET', '/api/v2x/warnings')).body.warnings.length,
      warnings0,
      'no warning from spoofed BSMs',
    );
    // The vehicles themselves: FCW for A, its strategy reaches the dashboard (granted), whose
    // QoS 1 PUBACK must not count as A's confirmation.
    const a = await asDevice('OBU-A');
    const l = await asDevice('OBU-L');
    const acked0 = (await stats()).acked;
    const ignored0 = await metric(/kapok_v2x_acks_ignored_total\{[^}]*\} (\d+)/);
    await until(
      async () => {
        t += 0.1;
        world.step(t, 0.1);
        for (let i = 0; i < 2; i++) {
          const f = world.bsm(i, Date.now());
          const id = 'bsmFrame' in f ? f.bsmFrame.id : '';
          await (id === vA ? a : l).publishAsync(`v2x/${id}/bsm`, encodeFrame(f, 'uper'));
        }
        return seen.some((s) => s.vehicleId === vA);
      },
      10_000,
      'strategy for A',
    );
    const s = seen.find((x) => x.vehicleId === vA) as { id: string };
    await until(
      () => seen.filter((x) => x.id === s.id).length >= 3,
      5000,
      'strategy retried: the PUBACK did not count',
    );
    assert.equal((await stats()).acked, acked0);
    assert.ok((await metric(/kapok_v2x_acks_ignored_total\{[^}]*\} (\d+)/)) > ignored0);
    // An app-level ack by another device (on its own ack topic) is ignored too; on A's, refused.
    await b.publishAsync('v2x/00000000000000bb/strategy/ack', s.id, { qos: 1 });
    await b.publishAsync(`v2x/${vA}/strategy/ack`, s.id, { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    const pending = (await api('GET', '/api/v2x/strategies')).body.strategies as Array<{ id: string }>;
    assert.ok(
      pending.some((p) => p.id === s.id),
      'still pending',
    );
    // The vehicle's own session acknowledges it: settled.
    const mine: string[] = [];
    a.on('message', (_t, p) => mine.push(JSON.parse(p.toString()).id));
    await a.subscribeAsync(`v2x/${vA}/strategy`, { qos: 1 });
    await until(async () => (await stats()).acked > acked0, 5000, "settled by the vehicle's PUBACK");
    assert.ok(mine.includes(s.id));
    for (const c of [a, l, b, dash]) c.end(true);
  });

  it('a session ends within a second of its token expiring, publisher and subscribe-only alike', async () => {
    // A 2 s token from the KGC's own token key (gm.tokenTtlSeconds is at least 60).
    const keys = await (await Keyring.open(app.store, fromHex(KEK, 'kek'))).current();
    const { token, claims } = issueDeviceToken(
      keys.token.privateKey,
      keys.token.publicKey,
      keys.tokenId,
      { sub: 'OBU-X', grp: 'obu', veh: 'OBU-X' },
      2,
    );
    const pub = await connect(port, 'OBU-X', token);
    const sub = await connect(port, 'OBU-X', token);
    await sub.subscribeAsync('cmd/OBU-X/#', { qos: 1 });
    await pub.publishAsync('telemetry/OBU-X/env', '{"temp":5}', { qos: 1 });
    const [p, s] = await Promise.all([closedWithin(pub), closedWithin(sub)]);
    const exp = claims.exp * 1000;
    for (const at of [p, s]) {
      assert.ok(at >= exp - 50, `closed ${exp - at} ms before expiry`);
      assert.ok(at <= exp + 1000, `closed ${at - exp} ms after expiry`);
    }
    assert.ok((await metric(/kapok_edge_mqtt_sessions_ended_total\{reason="expired"[^}]*\} (\d+)/)) >= 2);
  });

  it('`kapok device revoke` in another process ends open sessions within a second', async () => {
    const tok = await token('OBU-L');
    const pub = await connect(port, 'OBU-L', tok);
    const sub = await connect(port, 'OBU-L', tok);
    await sub.subscribeAsync(`v2x/${vL}/strategy`, { qos: 1 });
    const closes = Promise.all([closedWithin(pub), closedWithin(sub)]);
    const r = await kapok(['device', 'revoke', 'OBU-L'], {
      KAPOK_DATA_DIR: dataDir,
      KAPOK_GM__KEK: KEK,
      KAPOK_GM__KEY_WRAP: 'pbkdf2',
      KAPOK_GM__FACTORY_SECRET: FACTORY,
    });
    const done = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const [p, s] = await closes;
    // The CLI's exit follows its commit by its own shutdown, so this bound is generous to us.
    for (const at of [p, s]) assert.ok(at - done <= 1000, `closed ${at - done} ms after the CLI exited`);
    assert.ok((await metric(/kapok_edge_mqtt_sessions_ended_total\{reason="revoked"[^}]*\} (\d+)/)) >= 2);
    await assert.rejects(connect(port, 'OBU-L', tok));
  });
});
