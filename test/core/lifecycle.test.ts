import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { type RunningApp, startApp } from '../../src/app.js';
import { isKapokError } from '../../src/core/errors.js';
import { createUpgradeRouter } from '../../src/core/http/upgrade.js';
import { testConfig } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir } from '../helpers/tmp.js';

async function start(shutdownTimeoutMs: number, shutdownDelayMs = 0): Promise<RunningApp> {
  const config = testConfig({
    dataDir: tmpDir(),
    shutdownTimeoutMs,
    shutdownDelayMs,
    http: { host: '127.0.0.1', port: 0 },
  });
  return startApp(
    { config, file: null, envOverrides: new Map() },
    {
      logDestination: captureLogs(),
      extraRoutes: async (app) => {
        const wss = new WebSocketServer({ noServer: true });
        createUpgradeRouter(app.server).register('/ws/hold', (req, socket, head) =>
          wss.handleUpgrade(req, socket, head, () => {}),
        );
        app.get('/slow/:ms', async (req) => {
          await new Promise((r) => setTimeout(r, Number((req.params as { ms: string }).ms)));
          return { done: true };
        });
      },
    },
  );
}

describe('lifecycle: drain', () => {
  it('finishes in-flight requests, refuses new work, then closes backends', async () => {
    const app = await start(5000);
    const base = `http://127.0.0.1:${app.port}`;
    const keepAlive = new Agent({ connections: 1, pipelining: 0 });
    // Open a kept-alive connection first so we can send on it during the drain.
    assert.equal((await request(`${base}/healthz`, { dispatcher: keepAlive })).statusCode, 200);
    const inflight = request(`${base}/slow/400`).then(async (r) => ({
      status: r.statusCode,
      body: await r.body.json(),
    }));
    await new Promise((r) => setTimeout(r, 100));
    const stopping = app.stop('test');
    await new Promise((r) => setTimeout(r, 50));

    const ready = await request(`${base}/readyz`, { dispatcher: keepAlive }).then(
      async (r) => ({ status: r.statusCode, body: (await r.body.json()) as { error?: { code: string } } }),
      (err: Error) => ({ status: 0, body: { error: { code: err.message } } }),
    );
    // The kept-alive socket either got our 503 or was already closed as idle: never a 200.
    if (ready.status !== 0) {
      assert.equal(ready.status, 503);
      assert.equal(ready.body.error?.code, 'KAPOK_HTTP_SHUTTING_DOWN');
    }
    await assert.rejects(
      request(`${base}/healthz`, { dispatcher: new Agent() }),
      'new connections are refused',
    );

    assert.deepEqual(
      await inflight,
      { status: 200, body: { done: true } },
      'the in-flight request completed',
    );
    assert.deepEqual(await stopping, { clean: true });
    await assert.rejects(app.store.query('SELECT 1'), (e: unknown) => isKapokError(e, 'KAPOK_STORE_CLOSED'));
    await assert.rejects(app.kv.get('x'), (e: unknown) => isKapokError(e, 'KAPOK_KV_CLOSED'));
    await keepAlive.close();
  });

  it('shutdownDelayMs: /readyz answers 503 "stopping" on new connections while other work is still served', async () => {
    const app = await start(5000, 1500);
    const base = `http://127.0.0.1:${app.port}`;
    const stopping = app.stop('test');
    // Each request on a fresh connection: the listener must still be open during the delay.
    const fresh = () => new Agent({ connections: 1 });
    const ready = await request(`${base}/readyz`, { dispatcher: fresh() });
    assert.equal(ready.statusCode, 503);
    assert.equal(((await ready.body.json()) as { status: string }).status, 'stopping');
    const work = await request(`${base}/slow/10`, { dispatcher: fresh() });
    assert.equal(work.statusCode, 200, 'work is still served during the delay');
    assert.deepEqual(await work.body.json(), { done: true });
    const live = await request(`${base}/healthz`, { dispatcher: fresh() });
    assert.equal(live.statusCode, 200, 'still alive: a liveness probe must not restart it');
    await live.body.dump();
    assert.deepEqual(await stopping, { clean: true });
    await assert.rejects(request(`${base}/healthz`, { dispatcher: fresh() }), 'then the port closes');
  });

  it('cuts requests still running after shutdownTimeoutMs and reports an unclean stop', async () => {
    const app = await start(200);
    const base = `http://127.0.0.1:${app.port}`;
    const inflight = request(`${base}/slow/5000`).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    assert.deepEqual(await app.stop('test'), { clean: false });
    assert.ok(Date.now() - t0 < 3000, 'stop did not wait for the 5 s request');
    assert.equal(await inflight, 'cut');
  });

  it('stop() twice is one drain', async () => {
    const app = await start(1000);
    const [a, b] = await Promise.all([app.stop('one'), app.stop('two')]);
    assert.deepEqual(a, { clean: true });
    assert.equal(a, b);
  });

  it('idle keep-alive and silent connections do not delay a drain', async () => {
    const app = await start(5000);
    const keepAlive = new Agent({ connections: 4 });
    await Promise.all(
      [1, 2, 3, 4].map(async () =>
        (await request(`http://127.0.0.1:${app.port}/healthz`, { dispatcher: keepAlive })).body.text(),
      ),
    );
    const silent = await Promise.all(
      [1, 2, 3].map(async () => {
        const s = connect(app.port, '127.0.0.1');
        s.on('error', () => {});
        await once(s, 'connect');
        return s;
      }),
    );
    const t0 = Date.now();
    assert.deepEqual(await app.stop('test'), { clean: true });
    assert.ok(Date.now() - t0 < 2000, `drain took ${Date.now() - t0} ms of its 5000`);
    for (const s of silent) s.destroy();
    await keepAlive.close();
  });

  it('an open WebSocket is cut at shutdownTimeoutMs: stop() returns instead of waiting for it', async () => {
    const app = await start(300);
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws/hold`);
    await once(ws, 'open');
    const closed = once(ws, 'close');
    const t0 = Date.now();
    const stopped = await Promise.race([
      app.stop('test'),
      new Promise((r) => setTimeout(() => r('still waiting'), 5000)),
    ]);
    assert.deepEqual(stopped, { clean: false });
    assert.ok(Date.now() - t0 < 3000);
    await closed;
  });
});

describe('lifecycle: a failed start', () => {
  it('closes what the capabilities before it (and its own partial start) opened: the process exits', async () => {
    // edge's MQTT port is held here, so edge's start fails after gm, inference and the gateway have
    // started (timers, worker threads, a gRPC listener). The child must then end on its own.
    const held = createServer().listen(0, '127.0.0.1');
    await once(held, 'listening');
    const mqttPort = (held.address() as AddressInfo).port;
    const code = `
      import { startApp } from './src/app.ts';
      import { configSchema } from './src/config.ts';
      const config = configSchema.parse({
        dataDir: ${JSON.stringify(tmpDir())},
        http: { host: '127.0.0.1', port: 0 },
        grpc: { port: 0 },
        log: { level: 'fatal' },
        edge: { mqtt: { host: '127.0.0.1', port: ${mqttPort} } },
      });
      await startApp({ config, file: null, envOverrides: new Map() }).then(
        () => process.stdout.write('started\\n'),
        (e) => process.stdout.write(e.code + '\\n'),
      );
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [exitCode, signal] = (await once(child, 'exit')) as [number | null, string | null];
    clearTimeout(timer);
    held.close();
    assert.equal(out.trim(), 'KAPOK_START_PORT_IN_USE');
    assert.equal(signal, null, 'the child had to be killed: something kept it alive after the failed start');
    assert.equal(exitCode, 0);
  });
});
