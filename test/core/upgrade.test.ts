import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { isKapokError } from '../../src/core/errors.js';
import { createUpgradeRouter } from '../../src/core/http/upgrade.js';
import { upgradeStatus } from '../helpers/ws.js';

/** Sends a raw upgrade request; resolves with everything the server wrote before it closed. */
function rawUpgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () =>
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error(`no close within 5 s; got ${JSON.stringify(out)}`)));
  });
}

describe('upgrade router', () => {
  let server: Server;
  let port = 0;
  const errors: string[] = [];
  const wss = new WebSocketServer({ noServer: true });
  before(async () => {
    server = createServer((_req, res) => res.end('plain'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    wss.close();
    server.closeAllConnections();
    server.close();
  });

  it('adds no upgrade listener until a path is registered (plain requests stay plain)', async () => {
    createUpgradeRouter(server);
    assert.equal(server.listenerCount('upgrade'), 0);
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({
        port,
        host: '127.0.0.1',
        path: '/x',
        headers: { connection: 'upgrade', upgrade: 'h2c' },
      });
      req.on('response', (res) => {
        let b = '';
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'plain');
  });

  const router = () =>
    createUpgradeRouter(server, (err, path) => errors.push(`${path}: ${(err as Error).message}`));
  let r: ReturnType<typeof router>;

  it('hands a registered path (any query string) to its handler, once', async () => {
    r = router();
    let calls = 0;
    r.register('/ws/a', (req, socket, head) => {
      calls++;
      wss.handleUpgrade(req, socket, head, (ws) => ws.close());
    });
    assert.equal(server.listenerCount('upgrade'), 1);
    r.register('/ws/b', () => {});
    assert.equal(server.listenerCount('upgrade'), 1, 'one listener for every path');
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/ws/a?topic=%23`), 101);
    assert.equal(calls, 1);
  });

  it('answers an unknown path with a 404 in the catalogue shape and closes the socket', async () => {
    const out = await rawUpgrade(port, '/ws/nope?x=1');
    assert.match(out, /^HTTP\/1\.1 404 Not Found\r\n/);
    const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    assert.deepEqual(body, {
      error: { code: 'KAPOK_HTTP_NOT_FOUND', message: 'no WebSocket endpoint at /ws/nope' },
    });
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/ws/a/deeper`), 404, 'exact paths only');
  });

  it('refuses a second handler for a taken path; a removed path is unknown again', async () => {
    assert.throws(
      () => r.register('/ws/a', () => {}),
      (err) => isKapokError(err, 'KAPOK_START_FAILED') && err.message.includes('/ws/a'),
    );
    assert.throws(() => r.register('ws/relative', () => {}), TypeError);
    const off = r.register('/ws/c', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => ws.close()),
    );
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/ws/c`), 101);
    off();
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${port}/ws/c`), 404);
  });

  it('destroys the socket of a handler that throws and reports it', async () => {
    r.register('/ws/throws', () => {
      throw new Error('handler bug');
    });
    assert.equal(await rawUpgrade(port, '/ws/throws'), '');
    assert.deepEqual(errors, ['/ws/throws: handler bug']);
  });
});
