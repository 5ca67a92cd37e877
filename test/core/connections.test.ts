import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { Health } from '../../src/core/health.js';
import { probeRoutes } from '../../src/core/http/probes.js';
import { createHttpServer, type FastifyInstance } from '../../src/core/http/server.js';
import { createUpgradeRouter } from '../../src/core/http/upgrade.js';
import { createLogger } from '../../src/core/log.js';
import { createMetrics, type Metrics } from '../../src/core/metrics.js';
import { createTracing } from '../../src/core/tracing.js';
import { testConfig } from '../helpers/config.js';
import { upgradeStatus } from '../helpers/ws.js';

const tracing = await createTracing({ serviceName: 'test', otlpEndpoint: null, sampleRatio: 0 });
const servers: FastifyInstance[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) await s.close();
});

const hold = { arrived: 0, gate: Promise.resolve(), open: () => {} };
function closeGate(): void {
  hold.arrived = 0;
  hold.gate = new Promise<void>((r) => {
    hold.open = r;
  });
}

async function serve(
  http: Record<string, unknown>,
): Promise<{ app: FastifyInstance; port: number; metrics: Metrics }> {
  const config = testConfig({ http: { host: '127.0.0.1', port: 0, ...http } });
  const metrics = createMetrics();
  const app = createHttpServer({ config, logger: createLogger({ level: 'silent' }), metrics, tracing });
  await app.register(probeRoutes, { region: 'r', health: new Health(), metrics });
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    return { done: true };
  });
  // Busy until the test opens the gate: a connection in flight for exactly as long as a test needs.
  app.get('/hold', async () => {
    hold.arrived++;
    await hold.gate;
    return { done: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  servers.push(app);
  return { app, port: (app.server.address() as AddressInfo).port, metrics };
}

/** Opens a TCP connection from `from` (any 127.0.0.0/8 address works on Linux) that sends nothing. */
async function silent(port: number, from: string): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', localAddress: from });
  s.on('error', () => {});
  sockets.push(s);
  await once(s, 'connect');
  return s;
}

async function healthz(port: number): Promise<number> {
  const agent = new Agent();
  try {
    return (await request(`http://127.0.0.1:${port}/healthz`, { dispatcher: agent })).statusCode;
  } finally {
    await agent.close();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 50));

describe('http connections: silent sockets never lock the port', () => {
  it('200 silent sockets from one address: the per-IP cap closes the longest idle, /healthz answers', async () => {
    const { app, port } = await serve({ maxConnections: 50, maxConnectionsPerIp: 20 });
    for (let i = 0; i < 200; i++) await silent(port, '127.0.0.2');
    await tick();
    assert.ok(app.connections.open <= 20, `held ${app.connections.open} connections, cap 20`);
    assert.equal(await healthz(port), 200);
    assert.equal(await healthz(port), 200, 'and again, from the same address as nothing else');
  });

  it('200 silent sockets from ten addresses: maxConnections closes the longest idle, /healthz answers', async () => {
    const { app, port } = await serve({ maxConnections: 50, maxConnectionsPerIp: 20 });
    for (let i = 0; i < 200; i++) await silent(port, `127.0.0.${10 + (i % 10)}`);
    await tick();
    assert.ok(app.connections.open <= 50, `held ${app.connections.open} connections, max 50`);
    assert.equal(await healthz(port), 200);
  });

  it('a connection that sends nothing is closed after http.firstByteTimeoutMs; a used one is not', async () => {
    const { port } = await serve({ firstByteTimeoutMs: 300 });
    const s = await silent(port, '127.0.0.1');
    const used = await silent(port, '127.0.0.1');
    used.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(used, 'data');
    await once(s, 'close');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(used.destroyed, false, 'a kept-alive connection waits for keepAliveTimeoutMs');
  });

  it('refuses a new connection only when every one of that address is busy, and counts it', async () => {
    const { port, metrics } = await serve({ maxConnectionsPerIp: 2 });
    const agent = new Agent({ connections: 2, localAddress: '127.0.0.3' } as Agent.Options);
    const busy = [1, 2].map(() => request(`http://127.0.0.1:${port}/slow`, { dispatcher: agent }));
    await new Promise((r) => setTimeout(r, 300));
    const third = await silent(port, '127.0.0.3');
    await once(third, 'close');
    assert.equal(await healthz(port), 200, 'other addresses are unaffected');
    for (const r of await Promise.all(busy)) assert.equal(r.statusCode, 200, 'busy connections were kept');
    assert.match(
      await metrics.render(),
      /kapok_http_connections_refused_total\{reason="max_connections_per_ip"\} 1/,
    );
    await agent.close();
  });

  it('never closes an upgraded socket (WebSocket) to make room', async () => {
    const { app, port } = await serve({ maxConnectionsPerIp: 2 });
    const wss = new WebSocketServer({ noServer: true });
    createUpgradeRouter(app.server).register('/ws/t', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, () => {}),
    );
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/ws/t`), 101);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/t`, { localAddress: '127.0.0.4' });
    await once(ws, 'open');
    for (let i = 0; i < 5; i++) await silent(port, '127.0.0.4');
    await tick();
    assert.equal(ws.readyState, WebSocket.OPEN, 'the WebSocket survived the silent ones');
    ws.close();
    wss.close();
  });
});

/** Sends `GET path` on a raw socket and resolves with the status line of the reply. */
function get(s: Socket, path: string): Promise<string> {
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      s.off('data', onData).off('close', onClose);
      resolve(text.split('\r\n')[0] as string);
    };
    const onClose = () => reject(new Error(`closed before a reply to GET ${path}`));
    s.on('data', onData).once('close', onClose);
  });
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !cond(); i++) await tick();
  assert.ok(cond(), what);
};

describe('http.maxConnections: the cap over all addresses', () => {
  it('with every connection busy the next is refused; the busy ones finish; a freed place is taken again', async () => {
    const { app, port, metrics } = await serve({ maxConnections: 3, maxConnectionsPerIp: 100 });
    closeGate();
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await silent(port, `127.0.1.${i + 1}`));
    const first = held.map((s) => get(s, '/hold'));
    await until(() => hold.arrived === 3, 'three requests in flight');

    // The fourth: none of the three is idle, so it is closed before any request is read.
    const extra = await silent(port, '127.0.1.9');
    await assert.rejects(get(extra, '/healthz'), /closed before a reply/);
    assert.match(
      await metrics.render(),
      /kapok_http_connections_refused_total\{reason="max_connections"\} 1/,
    );
    assert.equal(app.connections.open, 3);

    hold.open();
    assert.deepEqual(await Promise.all(first), Array(3).fill('HTTP/1.1 200 OK'));

    // Two busy again, the third closed by its client: its place goes to a newcomer.
    closeGate();
    const again = [get(held[0] as Socket, '/hold'), get(held[1] as Socket, '/hold')];
    await until(() => hold.arrived === 2, 'two requests in flight');
    (held[2] as Socket).destroy();
    await until(() => app.connections.open === 2, 'the closed connection is forgotten');
    const late = await silent(port, '127.0.1.10');
    assert.equal(await get(late, '/healthz'), 'HTTP/1.1 200 OK');
    hold.open();
    assert.deepEqual(await Promise.all(again), Array(2).fill('HTTP/1.1 200 OK'), 'the busy ones were kept');
    assert.match(
      await metrics.render(),
      /kapok_http_connections_refused_total\{reason="max_connections"\} 1/,
    );
  });
});
