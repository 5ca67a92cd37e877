import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { type RunningApp, startApp } from '../../src/app.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { authenticateDevice, type DeviceCredentials } from '../../src/gm/client.js';
import { payloadKey, sealPayload } from '../../src/gm/payload.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { until } from '../edge/setup.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

const ADMIN = 'admin-token-for-tests-0001';
const FACTORY = 'factory-secret-for-tests';

/** mosquitto_pub (a client no one here wrote); resolves with its exit code and stderr. */
function mosquittoPub(port: number, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(port), '-q', '1', ...args],
      { timeout: 10_000 },
      (err, _o, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

/** The device side of a registration answer: its unwrapped SM9 key and the master public key. */
function credsOf(serial: string, body: Record<string, unknown>): DeviceCredentials {
  const r = body as { signKey: Parameters<typeof unwrapDeviceKey>[0]; signMasterPublicKey: string };
  return {
    serial,
    signKey: unwrapDeviceKey(r.signKey, serial, { factorySecret: FACTORY }),
    signMasterPublicKey: fromHex(r.signMasterPublicKey, 'master'),
  };
}

/** An mqtt.js session (no reconnects) authenticated with a device token. */
async function mqttAs(port: number, serial: string, token: string): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    username: serial,
    password: token,
    reconnectPeriod: 0,
  });
  await new Promise((res, j) => c.once('connect', res).once('error', j));
  return c;
}

/** Publishes QoS 1: 'acked', or 'refused' when the broker closes the connection instead of acking. */
function publishOutcome(
  c: mqtt.MqttClient,
  topic: string,
  payload: string | Buffer,
): Promise<'acked' | 'refused' | 'timeout'> {
  return Promise.race([
    c.publishAsync(topic, payload, { qos: 1 }).then(
      () => 'acked' as const,
      () => 'refused' as const,
    ),
    new Promise<'refused'>((r) => c.once('close', () => r('refused'))),
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000)),
  ]);
}

// The whole chain across two capabilities: gm registers and authenticates a device, its SM2SM3 token
// is the MQTT password at the edge's embedded broker, and a revocation ends it.
describe('device identity chain: register → authenticate → MQTT publish with the token → revoke', () => {
  const logs = captureLogs();
  let app: RunningApp;
  let base: string;
  let mqttPort: number;
  let creds: DeviceCredentials;

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const stored = async (device: string) => {
    const r = await fetch(`${base}/api/edge/query?measurement=env&field=temp&device=${device}&from=0`);
    return ((await r.json()) as { points?: Array<{ value: number }> }).points ?? [];
  };

  before(async () => {
    const config = testConfig({
      dataDir: tmpDir('kapok-chain-'),
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info', requests: false },
      gm: {
        enabled: true,
        kek: '00112233445566778899aabbccddeeff',
        adminToken: ADMIN,
        keyWrap: 'pbkdf2',
        factorySecret: FACTORY,
        pbkdf2Iterations: 1000,
        verifyWorkers: 1,
        payloadProtection: { groups: ['sealed'] },
      },
      edge: {
        enabled: true,
        auth: { anonymous: false },
        batch: { size: 50, intervalMs: 10 },
        mqtt: { port: 0, host: '127.0.0.1', maxPayloadBytes: 4096 },
      },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
    mqttPort = Number(logs.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);
    for (const serial of ['SN-7', 'SN-8']) {
      const reg = await api('POST', '/api/gm/devices', { serial, group: 'pumps' });
      assert.equal(reg.status, 201);
      if (serial === 'SN-7') creds = credsOf(serial, reg.body);
    }
  });
  after(() => app?.stop());

  it('a device publishes with its token to its own topic; the point is stored', async () => {
    const { token } = await authenticateDevice(base, creds);
    const ok = await mosquittoPub(mqttPort, [
      '-u',
      'SN-7',
      '-P',
      token,
      '-t',
      'telemetry/SN-7/env',
      '-m',
      '{"temp":21.5}',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const points = await until(
      async () => (await stored('SN-7')).length > 0 && stored('SN-7'),
      5000,
      'point stored',
    );
    assert.equal(points[0]?.value, 21.5);
  });

  it('refuses a wrong token, a token presented for another serial, and a foreign topic', async () => {
    const { token } = await authenticateDevice(base, creds);
    const tampered = `${token.slice(0, -4)}AAAA`;
    assert.notEqual(
      (
        await mosquittoPub(mqttPort, [
          '-u',
          'SN-7',
          '-P',
          tampered,
          '-t',
          'telemetry/SN-7/env',
          '-m',
          '{"temp":1}',
        ])
      ).code,
      0,
    );
    assert.notEqual(
      (
        await mosquittoPub(mqttPort, [
          '-u',
          'SN-8',
          '-P',
          token,
          '-t',
          'telemetry/SN-8/env',
          '-m',
          '{"temp":2}',
        ])
      ).code,
      0,
    );
    assert.notEqual(
      (await mosquittoPub(mqttPort, ['-t', 'telemetry/SN-7/env', '-m', '{"temp":3}'])).code,
      0,
      'no anonymous access',
    );
    // Connected as SN-7, publishing as SN-8: the broker drops the message (issue 13: acknowledged and
    // dropped, as Mosquitto does, so a QoS 1 client does not resend it forever) and counts it.
    const c = await mqttAs(mqttPort, 'SN-7', token);
    assert.equal(await publishOutcome(c, 'telemetry/SN-8/env', '{"temp":4}'), 'acked');
    c.end(true);
    assert.match(await app.metrics.render(), /kapok_edge_mqtt_refused_total\{action="publish"[^}]*\} 1/);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await stored('SN-8'), [], 'nothing stored for the foreign topic');
  });

  it('revoking the device ends its open session at once and refuses its token afterwards', async () => {
    const { token } = await authenticateDevice(base, creds);
    const c = await mqttAs(mqttPort, 'SN-7', token);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    assert.equal((await api('DELETE', '/api/gm/devices/SN-7')).status, 200);
    await closed;
    assert.ok(logs.lines.some((l) => l.msg === 'revoked device disconnected' && l.device === 'SN-7'));
    const after = await mosquittoPub(mqttPort, [
      '-u',
      'SN-7',
      '-P',
      token,
      '-t',
      'telemetry/SN-7/env',
      '-m',
      '{"temp":9}',
    ]);
    assert.notEqual(after.code, 0);
    assert.equal((await stored('SN-7')).length, 1, 'only the point from before the revocation');
  });

  it('a revocation made by another process (straight in the store) ends the session within a second', async () => {
    // SN-8 connects and publishes while active.
    const reg = await api('POST', '/api/gm/devices/SN-8/reissue');
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    const c8 = credsOf('SN-8', reg.body);
    const { token } = await authenticateDevice(base, c8);
    const c = await mqttAs(mqttPort, 'SN-8', token);
    assert.equal(await publishOutcome(c, 'telemetry/SN-8/env', '{"temp":5}'), 'acked');
    await app.store.execute("UPDATE gm_devices SET status = 'revoked', revoked_at = ? WHERE serial = ?", [
      Date.now(),
      'SN-8',
    ]);
    const t0 = Date.now();
    await new Promise<void>((r) => c.once('close', () => r()));
    // Issue 13: gm polls the Store once a second; the session ends without waiting for a publish.
    assert.ok(Date.now() - t0 < 2000, `closed after ${Date.now() - t0} ms`);
    c.end(true);
    await until(async () => (await stored('SN-8')).length > 0, 5000, 'first point stored');
    assert.deepEqual(
      (await stored('SN-8')).map((p) => p.value),
      [5],
    );
  });

  it('a protected group must send SM4-GCM sealed payloads; tampered, moved or plain ones are refused', async () => {
    const reg = await api('POST', '/api/gm/devices', { serial: 'SN-9', group: 'sealed' });
    assert.equal(reg.status, 201);
    const c9 = credsOf('SN-9', reg.body);
    const key = payloadKey(c9.signKey); // the device derives it from its own SM9 key
    const { token } = await authenticateDevice(base, c9);
    const topic = 'telemetry/SN-9/env';
    const connect = () => mqttAs(mqttPort, 'SN-9', token);
    let c = await connect();
    assert.equal(
      await publishOutcome(c, topic, sealPayload(key, topic, Buffer.from('{"temp":42}'))),
      'acked',
    );
    const points = await until(
      async () => (await stored('SN-9')).length > 0 && stored('SN-9'),
      5000,
      'sealed point stored',
    );
    assert.equal(points[0]?.value, 42);
    c.end(true);

    const sealed = sealPayload(key, topic, Buffer.from('{"temp":43}'));
    const tampered = Buffer.from(sealed);
    tampered[20] = (tampered[20] as number) ^ 1;
    const moved = sealPayload(key, 'telemetry/SN-9/other', Buffer.from('{"temp":44}'));
    for (const bad of [tampered, moved, Buffer.from('{"temp":45}')]) {
      c = await connect();
      assert.equal(await publishOutcome(c, topic, bad), 'refused');
      c.end(true);
    }
    assert.deepEqual(
      (await stored('SN-9')).map((p) => p.value),
      [42],
    );
    assert.match(await app.metrics.render(), /kapok_gm_payload_rejected_total\{[^}]*\} 3/);

    // Over edge.mqtt.maxPayloadBytes: dead-lettered as too large without being decrypted first.
    c = await connect();
    // A forged one: decrypting it would fail and count; unopened, it is simply dead-lettered.
    const big = Buffer.concat([Buffer.from([0x4b, 0x47, 0x01]), Buffer.alloc(8192, 7)]);
    assert.equal(await publishOutcome(c, topic, big), 'acked');
    c.end(true);
    const dl = (await (await fetch(`${base}/api/edge/dead-letters`)).json()) as {
      deadLetters: Array<{ reason: string }>;
    };
    assert.ok(dl.deadLetters.some((d) => /maxPayloadBytes/.test(d.reason)));
    assert.match(await app.metrics.render(), /kapok_gm_payload_rejected_total\{[^}]*\} 3/, 'not decrypted');
  });
});
