import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { serviceAvailable } from '../helpers/services.js';
import { tmpDir } from '../helpers/tmp.js';

const MOSQ = new URL(process.env.KAPOK_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883');
const MOSQ_PORT = Number(MOSQ.port || 1883);
const { skip } = await serviceAvailable('mosquitto', async () => {
  await new Promise<void>((resolve, reject) => {
    const s = connect(MOSQ_PORT, MOSQ.hostname, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
});

interface Component {
  name: string;
  state: string;
  detail?: { mqtt?: string };
}

/** A TCP relay to Mosquitto on a fixed port, opened and cut by the test: the broker "comes and goes". */
function relay(port: number) {
  let server: Server | null = null;
  const sockets = new Set<Socket>();
  return {
    async open() {
      server = createServer((c) => {
        const up = connect(MOSQ_PORT, MOSQ.hostname);
        for (const s of [c, up]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        c.pipe(up).pipe(c);
      }).listen(port, '127.0.0.1');
      await once(server, 'listening');
    },
    async cut() {
      const s = server;
      server = null;
      for (const sock of sockets) sock.destroy();
      if (s) await new Promise((r) => s.close(r));
    },
  };
}

// v2x is not ready while its strategies cannot reach vehicles: here the external broker is gone.
describe('v2x and edge: /readyz follows the MQTT port (external broker)', { skip }, () => {
  let app: RunningApp;
  let base: string;
  let port: number;
  let broker: ReturnType<typeof relay>;

  before(async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    broker = relay(port);
    const tag = `kr${Math.random().toString(36).slice(2, 8)}`;
    const config = testConfig({
      dataDir: tmpDir('kapok-v2x-ready-'),
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'warn', requests: false },
      edge: {
        enabled: true,
        mqtt: {
          mode: 'external',
          url: `mqtt://127.0.0.1:${port}`,
          clientId: `kapok-${tag}`,
          reconnectMinMs: 100,
          reconnectMaxMs: 200,
        },
      },
      v2x: { enabled: true, topics: [`${tag}/+/bsm`], strategy: { ackTopic: `${tag}/+/strategy/ack` } },
    });
    app = await startApp({ config, file: null, envOverrides: new Map() }, { logDestination: captureLogs() });
    base = `http://127.0.0.1:${app.port}`;
  });
  after(async () => {
    await app.stop('test');
    await broker.cut();
  });

  const ready = async () => {
    const r = await fetch(`${base}/readyz`);
    const body = (await r.json()) as { components: Component[] };
    const byName = (n: string) => body.components.find((c) => c.name === n);
    return { status: r.status, v2x: byName('v2x'), edge: byName('edge') };
  };
  const until = async (status: number) => {
    for (let i = 0; i < 100; i++) {
      const r = await ready();
      if (r.status === status) return r;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`/readyz never answered ${status}`);
  };

  it('503 while the broker is unreachable, 200 once it is, 503 again when it goes', async () => {
    const down = await ready();
    assert.equal(down.status, 503);
    assert.equal(down.v2x?.state, 'not_ready');
    assert.equal(down.v2x?.detail?.mqtt, 'disconnected');
    assert.equal(down.edge?.state, 'not_ready');

    await broker.open();
    const up = await until(200);
    assert.equal(up.v2x?.state, 'ready');
    assert.equal(up.v2x?.detail?.mqtt, 'connected');

    await broker.cut();
    const gone = await until(503);
    assert.equal(gone.v2x?.state, 'not_ready');
  });
});
