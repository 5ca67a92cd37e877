import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { type RunningApp, startApp } from '../../src/app.js';
import { encodeFrame } from '../../src/v2x/frames.js';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';
import { until } from '../edge/setup.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { serviceAvailable } from '../helpers/services.js';

const MOSQ = process.env.KAPOK_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const { skip } = await serviceAvailable('mosquitto', async () => {
  const u = new URL(MOSQ);
  await new Promise<void>((resolve, reject) => {
    const s = connect(Number(u.port || 1883), u.hostname, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
});

describe('v2x with edge consuming an external broker (Mosquitto)', { skip }, () => {
  const tag = `kt${Math.random().toString(36).slice(2, 8)}`;
  let app: RunningApp;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kapok-v2x-ext-'));
    const config = testConfig({
      dataDir: dir,
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'warn', requests: false },
      edge: { enabled: true, mqtt: { mode: 'external', url: MOSQ, clientId: `kapok-${tag}` } },
      v2x: { enabled: true, topics: [`${tag}/+/bsm`], strategy: { ackTopic: `${tag}/+/strategy/ack` } },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: captureLogs() });
  });
  after(async () => {
    await app.stop('test');
    rmSync(dir, { recursive: true, force: true });
  });

  it('BSMs through the broker raise FCW; the strategy reaches an OBU subscribed at the broker', async () => {
    const open = async () => {
      const c = mqtt.connect(MOSQ, { reconnectPeriod: 0 });
      await new Promise((r) => c.once('connect', r));
      return c;
    };
    const obu: MqttClient = await open();
    const rsu: MqttClient = await open();
    const world = new World({
      scenarios: loadScenarios(
        new URL('../../src/v2x/sim/scenarios/fcw-stopped-lead.json', import.meta.url).pathname,
      ),
      background: 0,
      runId: Math.floor(Math.random() * 60_000) + 100,
    });
    const a = world.ids.get('fcw-stopped-lead:A') as string;
    const got: Array<{ vehicleId: string; warningType: string }> = [];
    obu.on('message', (_t, p) => got.push(JSON.parse(p.toString())));
    await obu.subscribeAsync(`v2x/${a}/strategy`, { qos: 1 });
    // Wait until Kapok's client has subscribed the tapped filter at the broker.
    await new Promise((r) => setTimeout(r, 300));
    let t = 0;
    await until(
      async () => {
        t += 0.1;
        world.step(t, 0.1);
        for (let i = 0; i < world.vehicles.length; i++)
          await rsu.publishAsync(`${tag}/rsu/bsm`, encodeFrame(world.bsm(i, Date.now()), 'uper'));
        return got.length > 0;
      },
      10_000,
      'strategy through Mosquitto',
    );
    assert.equal(got[0]?.vehicleId, a);
    assert.equal(got[0]?.warningType, 'FCW');
    await obu.endAsync();
    await rsu.endAsync();
  });
});
