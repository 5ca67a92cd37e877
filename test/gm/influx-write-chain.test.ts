import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { type RunningApp, startApp } from '../../src/app.js';
import { fromHex } from '../../src/crypto/bytes.js';
import { authenticateDevice, type DeviceCredentials } from '../../src/gm/client.js';
import { payloadKey, sealPayload } from '../../src/gm/payload.js';
import { unwrapDeviceKey } from '../../src/gm/wrap.js';
import { until } from '../edge/setup.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The InfluxDB write API with gm device tokens (the chain of mqtt-chain.test.ts, over HTTP): a device
 * writes its own points with `Authorization: Token <token>` (the official client's only form), is
 * refused another device's points, a tampered or revoked token, and in a protected group must seal
 * the body as it seals MQTT payloads.
 */

const ADMIN = 'admin-token-for-tests-0002';
const FACTORY = 'factory-secret-for-tests';

describe('InfluxDB write API with gm device tokens', () => {
  const logs = captureLogs();
  let app: RunningApp;
  let base: string;
  const creds: Record<string, DeviceCredentials> = {};

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const stored = async (device: string, m = 'env') => {
    const r = await fetch(`${base}/api/edge/query?measurement=${m}&field=temp&device=${device}&from=0`);
    return ((await r.json()) as { points?: Array<{ value: number }> }).points ?? [];
  };
  const write = (token: string, body: string | Buffer) =>
    fetch(`${base}/api/v2/write?org=o&bucket=b&precision=s`, {
      method: 'POST',
      headers: { authorization: `Token ${token}` },
      body,
    });

  before(async () => {
    const config = testConfig({
      dataDir: tmpDir('kapok-write-chain-'),
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
      edge: { enabled: true, batch: { size: 50, intervalMs: 10 }, mqtt: { port: 0, host: '127.0.0.1' } },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: logs });
    base = `http://127.0.0.1:${app.port}`;
    for (const [serial, group] of [
      ['W-1', 'pumps'],
      ['W-2', 'pumps'],
      ['W-3', 'sealed'],
    ] as const) {
      const reg = await api('POST', '/api/gm/devices', { serial, group });
      assert.equal(reg.status, 201);
      const r = reg.body as { signKey: Parameters<typeof unwrapDeviceKey>[0]; signMasterPublicKey: string };
      creds[serial] = {
        serial,
        signKey: unwrapDeviceKey(r.signKey, serial, { factorySecret: FACTORY }),
        signMasterPublicKey: fromHex(r.signMasterPublicKey, 'master'),
      };
    }
  });
  after(() => app?.stop());

  it('the official client with a device token writes the device own points (device = the token)', async () => {
    const { token } = await authenticateDevice(base, creds['W-1'] as DeviceCredentials);
    const w = new InfluxDB({ url: base, token }).getWriteApi('o', 'b', 's', { maxRetries: 0 });
    w.writePoint(new Point('env').floatField('temp', 20.5).timestamp(1_700_000_000));
    await w.close();
    const p = await until(async () => (await stored('W-1')).length > 0 && stored('W-1'), 5000, 'stored');
    assert.equal(p[0]?.value, 20.5);
  });

  it("refuses another device's points (403), a tampered token and a revoked device (401)", async () => {
    const { token } = await authenticateDevice(base, creds['W-1'] as DeviceCredentials);
    const foreign = await write(token, 'env,device=W-2 temp=1 1700000000');
    assert.equal(foreign.status, 403);
    assert.match(
      ((await foreign.json()) as { message: string }).message,
      /device W-1 may not write .* device W-2/,
    );
    const tampered = await write(`${token.slice(0, -4)}AAAA`, 'env temp=2 1700000000');
    assert.equal(tampered.status, 401);
    const { token: t2 } = await authenticateDevice(base, creds['W-2'] as DeviceCredentials);
    assert.equal((await api('DELETE', '/api/gm/devices/W-2')).status, 200);
    const revoked = await write(t2, 'env temp=3 1700000000');
    assert.equal(revoked.status, 401);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await stored('W-2'), []);
  });

  it('a protected group must seal the body for topic $write; plain or tampered bodies are refused', async () => {
    const c = creds['W-3'] as DeviceCredentials;
    const { token } = await authenticateDevice(base, c);
    const key = payloadKey(c.signKey);
    const plain = await write(token, 'env temp=4 1700000000');
    assert.equal(plain.status, 403);
    assert.equal(((await plain.json()) as { kapokCode: string }).kapokCode, 'KAPOK_EDGE_WRITE_FORBIDDEN');
    const sealed = sealPayload(key, '$write', Buffer.from('env temp=42 1700000000'));
    const tampered = Buffer.from(sealed);
    tampered[20] = (tampered[20] as number) ^ 1;
    assert.equal((await write(token, tampered)).status, 403);
    assert.equal((await write(token, sealed)).status, 204);
    const p = await until(
      async () => (await stored('W-3')).length > 0 && stored('W-3'),
      5000,
      'sealed stored',
    );
    assert.deepEqual(
      p.map((x) => x.value),
      [42],
    );
  });
});
