import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { request } from 'undici';
import { kapok, kapokUp, type Running } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const env = (dataDir: string, extra: Record<string, string> = {}) => ({
  KAPOK_DATA_DIR: dataDir,
  KAPOK_LOG__LEVEL: 'info',
  KAPOK_LOG__REQUESTS: 'false',
  KAPOK_EDGE__ENABLED: 'true',
  KAPOK_EDGE__AUTH__ANONYMOUS: 'true',
  // Since issue 13 nothing is allowed by default: an explicit grant for this test's anonymous clients.
  KAPOK_EDGE__ACL__GRANTS: '[{who: anonymous, publish: ["#"], subscribe: ["#"]}]',
  KAPOK_EDGE__MQTT__HOST: '127.0.0.1',
  KAPOK_EDGE__MQTT__PORT: '0',
  ...extra,
});
const mqttPort = (k: Running) => Number(k.lines.find((l) => l.msg === 'edge mqtt broker listening')?.port);

describe('edge: crash and restart (kapok up child process)', () => {
  // MQTT 3.1.1 and, since issue 15, MQTT 5: the same rule, a PUBACK only after the spool commit.
  for (const protocolVersion of [4, 5] as const)
    it(`loses nothing acknowledged when killed with SIGKILL mid-stream before the sink wrote (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'})`, async () => {
      const dataDir = tmpDir();
      // The sink waits for 100,000 messages or a minute, so nothing reaches it before the kill.
      const first = await kapokUp(
        env(dataDir, { KAPOK_EDGE__BATCH__SIZE: '100000', KAPOK_EDGE__BATCH__INTERVAL_MS: '60000' }),
      );
      const c = mqtt.connect(`mqtt://127.0.0.1:${mqttPort(first)}`, { reconnectPeriod: 0, protocolVersion });
      await new Promise((r) => c.once('connect', r));
      const acked = new Set<number>();
      c.on('error', () => {});
      let sent = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (sent < 3000 && sent - acked.size < 50) {
            const i = sent++;
            c.publish(
              `telemetry/crash-${protocolVersion}/env`,
              JSON.stringify({ ts: 1_700_000_000_000 + i, seq: i }),
              { qos: 1 },
              (err) => {
                if (err) return;
                acked.add(i);
                if (acked.size === 300) {
                  first.child.kill('SIGKILL');
                  resolve();
                } else pump();
              },
            );
          }
        };
        pump();
      });
      assert.equal(await first.exited, null, 'killed by a signal');
      c.end(true);
      assert.ok(acked.size >= 300);

      const second = await kapokUp(env(dataDir));
      try {
        const url = `http://127.0.0.1:${second.port}/api/edge/query?measurement=env&field=seq&device=crash-${protocolVersion}&from=1700000000000&to=1700000010000`;
        let stored = new Set<number>();
        const end = Date.now() + 15_000;
        while (Date.now() < end) {
          const body = (await (await request(url)).body.json()) as { points: { value: number }[] };
          stored = new Set(body.points.map((p) => p.value));
          if ([...acked].every((i) => stored.has(i))) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        const lost = [...acked].filter((i) => !stored.has(i));
        assert.deepEqual(lost, [], `acknowledged but lost: ${lost.length} of ${acked.size}`);
      } finally {
        second.child.kill('SIGTERM');
        assert.equal(await second.exited, 0, 'clean drain exits 0');
      }
    });

  it('exits 1 naming edge.mqtt.port and the fixes when the MQTT port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await kapok(['up'], {
        ...env(tmpDir()),
        KAPOK_HTTP__PORT: '0',
        KAPOK_EDGE__MQTT__PORT: String(port),
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`edge\\.mqtt\\.port ${port}`));
      assert.match(r.stderr, /KAPOK_EDGE__MQTT__PORT/);
      assert.match(r.stderr, /edge\.mqtt\.mode: external/);
      assert.match(r.stderr, /KAPOK_START_PORT_IN_USE/);
    } finally {
      blocker.close();
    }
  });
});
