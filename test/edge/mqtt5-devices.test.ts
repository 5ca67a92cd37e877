import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { type RunningApp, startApp } from '../../src/app.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { authenticateDevice, type DeviceCredentials } from '../../src/gm/client.js';
import { Keyring } from '../../src/gm/keystore.js';
import { issueDeviceToken } from '../../src/gm/tokens.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { until } from './setup.js';

// Issue 15: the authorization tests at MQTT 5 with device tokens from the real gm flow. The same
// ACL as 3.1.1 (a device publishes and subscribes its own topics only), refusals as reason codes,
// shared subscriptions checked against the ACL, and sessions ended with a DISCONNECT that says why.

const ADMIN = 'admin-token-for-tests-0015';
const FACTORY = 'factory-secret-for-tests';
const KEK = '00112233445566778899aabbccddeeff';

interface Conn {
  c: mqtt.MqttClient;
  /** The server's DISCONNECT (reason code, reason string), or null if the connection just closed. */
  ended: Promise<{ code: number; reason?: string } | null>;
}

function connect(
  port: number,
  username: string,
  password: string,
  protocolVersion: 4 | 5 = 5,
): Promise<Conn> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion,
    username,
    password,
    clientId: `${username}-${Math.random().toString(36).slice(2, 8)}`,
  });
  const ended = new Promise<{ code: number; reason?: string } | null>((r) => {
    c.once('disconnect', (p) => r({ code: p.reasonCode ?? 0, reason: p.properties?.reasonString }));
    c.once('close', () => setTimeout(() => r(null), 50));
  });
  return new Promise((res, rej) => {
    c.once('connect', () => res({ c, ended }));
    c.once('error', rej);
  });
}

async function codes(c: mqtt.MqttClient, subs: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  try {
    return (await c.subscribeAsync(subs)).map((g) => g.qos);
  } catch (err) {
    const g = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!g) throw err;
    return g;
  }
}

describe('MQTT 5 authorization with device tokens', () => {
  const logs = captureLogs();
  let app: RunningApp;
  let base: string;
  let port: number;
  const creds = new Map<string, DeviceCredentials>();
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const token = async (serial: string) =>
    (await authenticateDevice(base, creds.get(serial) as DeviceCredentials)).token;
  const stored = async (device: string) => {
    const r = await fetch(`${base}/api/edge/query?measurement=env&field=temp&device=${device}&from=0`);
    return ((await r.json()) as { points?: Array<{ value: number }> }).points ?? [];
  };

  before(async () => {
    const config = testConfig({
      dataDir: tmpDir('kapok-mqtt5-dev-'),
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
        auth: { anonymous: false, users: [{ username: 'ops', password: 'ops-pass-0015' }] },
        acl: { grants: [{ who: 'user:ops', publish: ['cmd/#'] }] },
        batch: { size: 50, intervalMs: 10 },
        mqtt: { port: 0, host: '127.0.0.1' },
      },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
    port = Number(logs.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);
    for (const serial of ['D-1', 'D-2', 'D-3']) {
      const r = await api('POST', '/api/gm/devices', { serial, group: 'pumps' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const b = r.body as { signKey: Parameters<typeof unwrapDeviceKey>[0]; signMasterPublicKey: string };
      creds.set(serial, {
        serial,
        signKey: unwrapDeviceKey(b.signKey, serial, { factorySecret: FACTORY }),
        signMasterPublicKey: fromHex(b.signMasterPublicKey, 'master'),
      });
    }
  });
  after(() => app?.stop());

  it("a device publishes its own telemetry; another device's topic gets PUBACK 0x87 and is not stored", async () => {
    const { c } = await connect(port, 'D-1', await token('D-1'));
    await c.publishAsync('telemetry/D-1/env', '{"temp":20.5}', { qos: 1 });
    for (const t of ['telemetry/D-2/env', 'v2x/D-1/strategy', '$kapok/share/1/x'])
      await assert.rejects(
        c.publishAsync(t, '{"temp":99}', { qos: 1 }),
        (err: Error & { code?: number }) => err.code === 0x87,
        t,
      );
    assert.equal(c.connected, true, 'v5: the connection stays after a refused publish');
    await until(async () => (await stored('D-1')).length === 1, 5000, 'own point stored');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await stored('D-2'), []);
    assert.match(await app.metrics.render(), /kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} 3/);
    c.end(true);
  });

  it('subscriptions, shared ones included: own command topics only', async () => {
    const { c } = await connect(port, 'D-1', await token('D-1'));
    assert.deepEqual(
      await codes(c, {
        'cmd/D-1/#': { qos: 1 },
        '$share/pool/cmd/D-1/#': { qos: 1 },
        'cmd/D-2/#': { qos: 1 },
        '$share/pool/cmd/D-2/#': { qos: 1 },
        '$share/pool/cmd/+/reboot': { qos: 1 },
        '$share/pool/#': { qos: 1 },
        '$share/pool/telemetry/#': { qos: 1 },
      }),
      [1, 1, 0x87, 0x87, 0x87, 0x87, 0x87],
    );
    // D-2 in the same share group name on its own topic: a different group (other filter).
    const { c: c2 } = await connect(port, 'D-2', await token('D-2'));
    assert.deepEqual(await codes(c2, { '$share/pool/cmd/D-2/#': { qos: 1 } }), [1]);
    const got1: string[] = [];
    const got2: string[] = [];
    c.on('message', (t) => got1.push(t));
    c2.on('message', (t) => got2.push(t));
    const { c: ops } = await connect(port, 'ops', 'ops-pass-0015');
    await ops.publishAsync('cmd/D-1/reboot', '1', { qos: 1 });
    await ops.publishAsync('cmd/D-2/reboot', '2', { qos: 1 });
    ops.end(true);
    await until(() => got1.length >= 2 && got2.length >= 1, 3000, 'commands delivered');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got1, ['cmd/D-1/reboot', 'cmd/D-1/reboot'], 'plain + shared: own topic only');
    assert.deepEqual(got2, ['cmd/D-2/reboot']);
    c.end(true);
    c2.end(true);
  });

  it('revocation: DISCONNECT 0x87 with a reason to v5, a close to 3.1.1; the token is then refused (0x86, logged)', async () => {
    const tok = await token('D-2');
    const v5 = await connect(port, 'D-2', tok);
    const v4 = await connect(port, 'D-2', tok, 4);
    assert.equal((await api('DELETE', '/api/gm/devices/D-2')).status, 200);
    assert.deepEqual(await v5.ended, { code: 0x87, reason: 'device revoked' });
    assert.equal(await v4.ended, null);
    const ended = /kapok_edge_mqtt_sessions_ended_total\{reason="revoked"[^}]*\} (\d+)/.exec(
      await app.metrics.render(),
    );
    assert.equal(ended?.[1], '2', 'two sessions ended, each counted once');
    await assert.rejects(connect(port, 'D-2', tok), (err: Error & { code?: number }) => err.code === 0x86);
    const line = await until(
      () =>
        logs.lines.find((l) => l.msg === 'mqtt connection refused' && String(l.client).startsWith('D-2-')),
      3000,
      'refusal logged',
    );
    assert.equal(line.level, 'info');
    assert.equal(line.protocol, 'mqtt5');
    assert.ok(!JSON.stringify(logs.lines).includes(tok), 'the token is not logged');
  });

  it('token expiry: DISCONNECT 0xA0 (Maximum connect time) within a second of the expiry', async () => {
    const keys = await (await Keyring.open(app.store, fromHex(KEK, 'kek'))).current();
    const { token: tok, claims } = issueDeviceToken(
      keys.token.privateKey,
      keys.token.publicKey,
      keys.tokenId,
      { sub: 'D-3', grp: 'pumps', veh: 'D-3' },
      2,
    );
    const s = await connect(port, 'D-3', tok);
    await s.c.publishAsync('telemetry/D-3/env', '{"temp":1}', { qos: 1 });
    assert.deepEqual(await s.ended, { code: 0xa0, reason: 'token expired' });
    const late = Date.now() - claims.exp * 1000;
    assert.ok(late >= -50 && late <= 1000, `ended ${late} ms after the expiry`);
  });
});
