import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp } from '../../src/app.js';
import { isKapokError } from '../../src/core/errors.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';
import { upgradeStatus } from '../helpers/ws.js';
import { startV2x, type V2xApp } from './setup.js';

describe('WebSocket paths of edge and v2x on one upgrade router', () => {
  let k: V2xApp;
  before(async () => {
    k = await startV2x();
  });
  after(() => k.stop());

  it('serves /ws/telemetry, /ws/v2x and /mqtt, and answers 404 on any other path', async () => {
    const ws = k.base.replace('http', 'ws');
    assert.equal(await upgradeStatus(`${ws}/ws/telemetry?topic=%23`), 101);
    assert.equal(await upgradeStatus(`${ws}/ws/v2x`), 101);
    assert.equal(await upgradeStatus(`${ws}/mqtt`), 101);
    assert.equal(await upgradeStatus(`${ws}/ws/nope`), 404);
    assert.equal(await upgradeStatus(`${ws}/`), 404);
  });
});

describe('a WebSocket path wanted twice', () => {
  it('fails the start naming the path (edge.mqtt.wsPath on /ws/v2x)', async () => {
    const config = testConfig({
      dataDir: tmpDir(),
      http: { host: '127.0.0.1', port: 0 },
      edge: {
        enabled: true,
        auth: { anonymous: true },
        mqtt: { port: 0, host: '127.0.0.1', wsPath: '/ws/v2x' },
      },
      v2x: { enabled: true },
    });
    await assert.rejects(
      startApp({ config, file: null, envOverrides: new Map() }, { logDestination: captureLogs() }),
      (err) => isKapokError(err, 'KAPOK_START_FAILED') && err.message.includes('/ws/v2x'),
    );
  });
});
