import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { request } from 'undici';
import { loadScenarios } from '../../src/v2x/sim/scenario.js';
import { World } from '../../src/v2x/sim/world.js';
import { kapokUp, type Running } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const DIR = new URL('../../src/v2x/sim/scenarios/', import.meta.url).pathname;
const TTL_MS = 6000;

const env = (dataDir: string) => ({
  KAPOK_DATA_DIR: dataDir,
  KAPOK_LOG__LEVEL: 'info',
  KAPOK_LOG__REQUESTS: 'false',
  KAPOK_EDGE__ENABLED: 'true',
  KAPOK_EDGE__AUTH__ANONYMOUS: 'true',
  // Since issue 13 nothing is allowed by default: an explicit grant for this test's anonymous clients.
  KAPOK_EDGE__ACL__GRANTS: '[{who: anonymous, publish: ["#"], subscribe: ["#"]}]',
  KAPOK_EDGE__MQTT__HOST: '127.0.0.1',
  KAPOK_EDGE__MQTT__PORT: '0',
  KAPOK_V2X__ENABLED: 'true',
  KAPOK_V2X__STRATEGY__TTL_MS: String(TTL_MS),
  KAPOK_V2X__STRATEGY__RETRY_MS: '100',
});
const mqttPort = (k: Running) => Number(k.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);

async function post(k: Running, path: string, body?: unknown) {
  const res = await request(`http://127.0.0.1:${k.port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return (await res.body.json()) as Record<string, unknown>;
}

/** Raises one FCW per world (a fresh pair of vehicles each) through the HTTP batch API. */
async function raise(k: Running, runIds: number[]): Promise<void> {
  const [fcw] = loadScenarios(`${DIR}fcw-slower-lead.json`);
  for (const runId of runIds) {
    const world = new World({ scenarios: [fcw as never], background: 0, runId, offsetNorthM: runId * 500 });
    for (let t = 0.1; t <= 1 + 1e-9; t += 0.1) world.step(t, 0.1);
    const now = Date.now();
    const r = await post(k, '/api/v2x/messages', {
      messages: world.vehicles.map((_, i) => world.bsm(i, now)),
    });
    assert.equal((r.warnings as unknown[]).length, 1, JSON.stringify(r));
  }
}

describe('v2x: strategies survive SIGKILL (kapok up child process)', () => {
  it('after a restart every unexpired unacknowledged strategy is delivered, and no expired one', async () => {
    const dataDir = tmpDir();
    const first = await kapokUp(env(dataDir));
    const t0 = Date.now();
    await raise(first, [11, 12, 13]);
    await new Promise((r) => setTimeout(r, 3500));
    await raise(first, [21, 22, 23]);
    const pending = (await post(first, '/api/v2x/strategies')).strategies as Array<{
      id: string;
      expiresAt: number;
    }>;
    assert.equal(pending.length, 6, 'nobody acknowledged: all pending');
    const early = pending.filter((s) => s.expiresAt < t0 + TTL_MS + 1000).map((s) => s.id);
    const late = pending.filter((s) => !early.includes(s.id)).map((s) => s.id);
    assert.equal(early.length, 3);
    await new Promise((r) => setTimeout(r, 150)); // one WAL fsync interval
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed by a signal');

    const second = await kapokUp(env(dataDir));
    try {
      // Connect the OBU only once the first batch has expired.
      const wait = t0 + TTL_MS + 300 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const obu = mqtt.connect(`mqtt://127.0.0.1:${mqttPort(second)}`, { reconnectPeriod: 0, clean: true });
      await new Promise((r) => obu.once('connect', r));
      const got = new Map<string, { expiresAt: number; at: number }>();
      obu.on('message', (_t, p) => {
        const s = JSON.parse(p.toString()) as { id: string; expiresAt: number };
        got.set(s.id, { expiresAt: s.expiresAt, at: Date.now() });
      });
      await obu.subscribeAsync('v2x/+/strategy', { qos: 1 });
      const end = Date.now() + 3000;
      while (Date.now() < end && late.some((id) => !got.has(id))) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(
        late.filter((id) => !got.has(id)),
        [],
        'every unexpired strategy delivered',
      );
      assert.deepEqual(
        early.filter((id) => got.has(id)),
        [],
        'no expired strategy delivered',
      );
      for (const g of got.values()) assert.ok(g.at < g.expiresAt + 50, 'received before its expiry');
      // Issue 13: this anonymous OBU is not the vehicles' own session, so its PUBACKs settle nothing
      // (test/v2x/device-acl.test.ts has the vehicle's own); the replayed ones stay until expiry.
      const st = (await post(second, '/api/v2x/stats')).strategies as { acked: number; pending: number };
      await obu.endAsync();
      assert.equal(st.acked, 0, JSON.stringify(st));
      const replayed = second.lines.find((l) => l.msg === 'v2x strategies replayed from the WAL');
      assert.ok(replayed, 'replay logged');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
