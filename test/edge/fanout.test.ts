import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type Edge, startEdge, until } from './setup.js';

describe('edge: live fan-out on /ws/telemetry', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({ fanout: { maxQueue: 5, writeDeadlineMs: 200 } });
  });
  after(() => e.stop());

  const open = (topic: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(
        `ws://127.0.0.1:${e.app.port}/ws/telemetry?topic=${encodeURIComponent(topic)}`,
      );
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });

  it('pushes decoded points for matching topics only', async () => {
    const ws = await open('telemetry/+/env');
    const frames: { type: string; topic: string; points: { device: string; fields: { v: number } }[] }[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    const c = await e.client();
    await c.publishAsync('telemetry/fan-1/power', '{"v":0}', { qos: 1 });
    await c.publishAsync('telemetry/fan-1/env', '{"v":1}', { qos: 1 });
    await c.endAsync();
    await until(() => frames.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.topic, 'telemetry/fan-1/env');
    assert.equal(frames[0]?.points[0]?.device, 'fan-1');
    assert.equal(frames[0]?.points[0]?.fields.v, 1);
    ws.close();
  });

  it('refuses an invalid filter with 400', async () => {
    await assert.rejects(open('a/#/b'), /400/);
  });

  it('a client that never reads loses frames or is closed; intake and other clients go on', async () => {
    const slow = await open('telemetry/#');
    // Stop reading from the socket: frames pile up in its buffers, then in Kapok's bounded queue.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();
    const closed = new Promise<number>((r) => slow.once('close', (code) => r(code)));
    const fast = await open('telemetry/#');
    let fastFrames = 0;
    fast.on('message', () => fastFrames++);
    const c = await e.client();
    const big = JSON.stringify({ v: 1, pad: 'x'.repeat(100_000) });
    const n = 300;
    for (let i = 0; i < n; i++) await c.publishAsync(`telemetry/slow-${i % 3}/env`, big, { qos: 1 });
    await c.endAsync();
    await until(() => fastFrames === n, 10_000, 'fast client got every frame');
    const m = await until(async () => {
      const text = await e.app.metrics.render();
      return /kapok_edge_ws_dropped_total\{reason="queue_full"[^}]*\} [1-9]/.test(text) ? text : null;
    });
    assert.match(m, /kapok_edge_received_total\{region="guangzhou"\} \d+/);
    // Queue full past writeDeadlineMs: the server closes it as too slow.
    await until(async () =>
      /kapok_edge_ws_dropped_total\{reason="slow_client"[^}]*\} 1\b/.test(await e.app.metrics.render()),
    );
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    // 1013 when the paused client still reads the close frame; 1006 when it stayed paused past the
    // server's 1 s close grace (a slow machine) and the server cut the socket.
    assert.ok([1013, 1006].includes(await closed));
    fast.close();
  });
});

describe('edge: shutdown with WebSocket clients connected', () => {
  it('stops promptly and cleanly with MQTT-over-WebSocket and /ws/telemetry clients open', async () => {
    const e = await startEdge();
    const c = await e.client({ ws: true });
    c.on('error', () => {});
    const ws = new WebSocket(`ws://127.0.0.1:${e.app.port}/ws/telemetry?topic=%23`);
    await new Promise((r) => ws.once('open', r));
    const code = new Promise<number>((r) => ws.once('close', (n) => r(n)));
    const r = await e.app.stop('test');
    assert.equal(r.clean, true, 'drained within shutdownTimeoutMs');
    assert.equal(await code, 1001);
    c.end(true);
    await e.stop();
  });
});
